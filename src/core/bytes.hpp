#pragma once
// Big-endian field access for wire formats. ByteReader never reads past its span:
// a read beyond the end yields zero and latches overrun(), so a decoder can check once.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace shunt {

class ByteReader {
public:
    explicit ByteReader(std::span<const uint8_t> data, size_t pos = 0) : data_(data), pos_(pos) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return pos_ <= data_.size() ? data_.size() - pos_ : 0; }
    bool overrun() const { return overrun_; }
    void seek(size_t pos) { pos_ = pos; }
    void skip(size_t n) { take(n); }

    uint8_t u8() {
        const uint8_t* p = take(1);
        return p ? p[0] : 0;
    }
    uint16_t be16() { return static_cast<uint16_t>(be(2)); }
    uint32_t be32() { return static_cast<uint32_t>(be(4)); }
    uint64_t be64() { return be(8); }

    template <class Elem, size_t N>
    std::array<Elem, N> array() {
        static_assert(sizeof(Elem) == 1);
        std::array<Elem, N> out{};
        if (const uint8_t* p = take(N)) std::memcpy(out.data(), p, N);
        return out;
    }

private:
    const uint8_t* take(size_t n) {
        if (overrun_ || n > remaining()) {
            overrun_ = true;
            return nullptr;
        }
        const uint8_t* p = data_.data() + pos_;
        pos_ += n;
        return p;
    }
    uint64_t be(size_t n) {
        const uint8_t* p = take(n);
        uint64_t v = 0;
        for (size_t i = 0; p && i < n; ++i) v = (v << 8) | p[i];
        return v;
    }

    std::span<const uint8_t> data_;
    size_t pos_;
    bool overrun_ = false;
};

class ByteWriter {
public:
    explicit ByteWriter(std::vector<uint8_t>& out) : out_(out) {}

    size_t pos() const { return out_.size(); }
    void u8(uint8_t v) { out_.push_back(v); }
    void be16(uint16_t v) { be(v, 2); }
    void be32(uint32_t v) { be(v, 4); }
    void be64(uint64_t v) { be(v, 8); }
    void zeros(size_t n) { out_.insert(out_.end(), n, 0); }
    template <class Elem, size_t N>
    void bytes(const std::array<Elem, N>& a) {
        static_assert(sizeof(Elem) == 1);
        const auto* p = reinterpret_cast<const uint8_t*>(a.data());
        out_.insert(out_.end(), p, p + N);
    }
    void patch_be16(size_t at, uint16_t v) {
        out_[at] = static_cast<uint8_t>(v >> 8);
        out_[at + 1] = static_cast<uint8_t>(v);
    }

private:
    void be(uint64_t v, size_t n) {
        for (size_t i = n; i-- > 0;) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    std::vector<uint8_t>& out_;
};

}  // namespace shunt
