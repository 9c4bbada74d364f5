// Toeplitz hash (docs/rss-algebra.md): the key type, the packet-order input layout, a bit-serial
// reference that follows Microsoft's definition literally (used by the tests and by
// `shunt rss hash`), and a table-driven fast path. The table form uses linearity: the hash is the
// XOR of one 32-bit key window per set input bit, so all windows of one input byte can be
// pre-combined for the 256 byte values. 36 rows x 256 x 4 B = 36 KiB, L1/L2 resident; a 12-byte
// IPv4 tuple costs 12 loads. (GFNI/PCLMUL would save the table but not much time at these sizes.)
#include <cctype>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "shunt/rss.hpp"

namespace shunt::rss {
namespace {

constexpr std::array<uint8_t, 40> kMicrosoftKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void check_input(const ToeplitzKey& key, size_t n) {
    if (n > key.max_input_bytes())
        throw std::invalid_argument(
            fmt::format("Toeplitz input of {} bytes needs a key of {} bytes", n, n + 4));
}

}  // namespace

ToeplitzKey::ToeplitzKey() : size_(kMicrosoftKey.size()) {
    std::memcpy(bytes_.data(), kMicrosoftKey.data(), kMicrosoftKey.size());
}

std::optional<ToeplitzKey> ToeplitzKey::from_bytes(std::span<const uint8_t> bytes) {
    if (bytes.size() < kMinKeyBytes || bytes.size() > kMaxKeyBytes) return std::nullopt;
    ToeplitzKey k;
    k.bytes_.fill(0);
    std::memcpy(k.bytes_.data(), bytes.data(), bytes.size());
    k.size_ = bytes.size();
    return k;
}

std::optional<ToeplitzKey> ToeplitzKey::parse_hex(std::string_view text) {
    std::vector<uint8_t> out;
    int pending = -1;
    for (char c : text) {
        if (c == ':' || c == '-' || c == ' ') {
            if (pending >= 0) return std::nullopt;  // separators only between whole bytes
            continue;
        }
        const int v = hex_value(c);
        if (v < 0) return std::nullopt;
        if (pending < 0) {
            pending = v;
        } else {
            out.push_back(static_cast<uint8_t>(pending << 4 | v));
            pending = -1;
        }
    }
    if (pending >= 0) return std::nullopt;
    return from_bytes(out);
}

ToeplitzKey ToeplitzKey::microsoft() {
    return ToeplitzKey();
}

ToeplitzKey ToeplitzKey::symmetric() {
    std::array<uint8_t, 40> b{};
    for (size_t i = 0; i < b.size(); i += 2) {
        b[i] = 0x6d;
        b[i + 1] = 0x5a;
    }
    return *from_bytes(b);
}

uint32_t ToeplitzKey::window(size_t bit) const {
    const size_t byte = bit / 8;
    uint64_t v = 0;
    for (size_t i = 0; i < 5; ++i) {
        v <<= 8;
        if (byte + i < size_) v |= bytes_[byte + i];
    }
    return static_cast<uint32_t>(v >> (8 - bit % 8));
}

std::string ToeplitzKey::to_hex(char separator) const {
    std::string s;
    for (size_t i = 0; i < size_; ++i) {
        if (i && separator) s.push_back(separator);
        s += fmt::format("{:02x}", bytes_[i]);
    }
    return s;
}

size_t hash_input(const FlowTuple& t, bool with_ports, std::span<uint8_t, kMaxHashInput> out) {
    if (t.src.family() != t.dst.family())
        throw std::invalid_argument("source and destination address families differ");
    const auto s = t.src.bytes();
    const auto d = t.dst.bytes();
    size_t n = 0;
    std::memcpy(out.data(), s.data(), s.size());
    n += s.size();
    std::memcpy(out.data() + n, d.data(), d.size());
    n += d.size();
    if (with_ports) {
        out[n++] = static_cast<uint8_t>(t.sport >> 8);
        out[n++] = static_cast<uint8_t>(t.sport);
        out[n++] = static_cast<uint8_t>(t.dport >> 8);
        out[n++] = static_cast<uint8_t>(t.dport);
    }
    return n;
}

uint32_t toeplitz_reference(const ToeplitzKey& key, std::span<const uint8_t> input) {
    check_input(key, input.size());
    const auto k = key.bytes();
    auto key_bit = [&](size_t i) -> uint32_t {
        return i / 8 < k.size() ? (k[i / 8] >> (7 - i % 8)) & 1u : 0u;
    };
    // `left` is always the leftmost 32 bits of the key shifted left by `bit` positions.
    uint32_t left = 0;
    for (size_t i = 0; i < 32; ++i) left = left << 1 | key_bit(i);
    uint32_t result = 0;
    size_t bit = 0;
    for (uint8_t byte : input) {
        for (int b = 7; b >= 0; --b, ++bit) {
            if ((byte >> b) & 1) result ^= left;
            left = left << 1 | key_bit(bit + 32);
        }
    }
    return result;
}

uint32_t hash_reference(const ToeplitzKey& key, const FlowTuple& t, bool with_ports) {
    std::array<uint8_t, kMaxHashInput> buf{};
    const size_t n = hash_input(t, with_ports, buf);
    return toeplitz_reference(key, std::span<const uint8_t>(buf.data(), n));
}

ToeplitzHasher::ToeplitzHasher(const ToeplitzKey& key) : key_(key), table_(key.max_input_bytes()) {
    for (size_t pos = 0; pos < table_.size(); ++pos) {
        auto& row = table_[pos];
        // Windows of the 8 bits of this byte; value v is the XOR of those of its set bits.
        std::array<uint32_t, 8> w{};
        for (size_t b = 0; b < 8; ++b)
            w[b] = key.window(pos * 8 + (7 - b));  // w[b]: bit value 1<<b
        row[0] = 0;
        for (size_t v = 1; v < 256; ++v) {
            const size_t low = static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(v)));
            row[v] = row[v & (v - 1)] ^ w[low];
        }
    }
}

uint32_t ToeplitzHasher::hash(std::span<const uint8_t> input) const {
    check_input(key_, input.size());
    uint32_t h = 0;
    for (size_t i = 0; i < input.size(); ++i) h ^= table_[i][input[i]];
    return h;
}

uint32_t ToeplitzHasher::hash(const FlowTuple& t, bool with_ports) const {
    std::array<uint8_t, kMaxHashInput> buf{};
    const size_t n = hash_input(t, with_ports, buf);
    return hash(std::span<const uint8_t>(buf.data(), n));
}

}  // namespace shunt::rss
