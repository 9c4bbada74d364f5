#include "rds/frame_reader.hpp"

namespace shunt::rds {

size_t FrameReader::parse_one(std::span<const uint8_t> data, const OnFrame& on_frame) {
    if (data.size() < kHeaderLen) return 0;
    auto f = decode_header(data.first<kHeaderLen>());
    if (!f) {
        error_ = f.error();
        return 0;
    }
    const size_t whole = kHeaderLen + f->len;
    if (data.size() < whole) return 0;
    on_frame(*f, data.subspan(kHeaderLen, f->len));
    return whole;
}

std::optional<FrameError> FrameReader::feed(std::span<const uint8_t> bytes, const OnFrame& on_frame) {
    if (error_) return error_;
    // Finish a frame begun in an earlier call: take only what it still needs, so the buffer
    // never holds more than one frame.
    while (!pending_.empty() && !bytes.empty() && !error_) {
        size_t need = kHeaderLen;
        if (pending_.size() >= kHeaderLen) {
            auto f = decode_header(std::span<const uint8_t, kHeaderLen>(pending_.data(), kHeaderLen));
            if (!f) {
                error_ = f.error();
                break;
            }
            need = kHeaderLen + f->len;
        }
        const size_t take = std::min(need - pending_.size(), bytes.size());
        pending_.insert(pending_.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(take));
        bytes = bytes.subspan(take);
        if (pending_.size() >= kHeaderLen) {
            const size_t used = parse_one(pending_, on_frame);
            if (used) pending_.clear();
        }
    }
    // Frames wholly inside this chunk are parsed where they lie, with no copy.
    while (pending_.empty() && !bytes.empty() && !error_) {
        const size_t used = parse_one(bytes, on_frame);
        if (!used) {
            if (!error_) pending_.assign(bytes.begin(), bytes.end());
            break;
        }
        bytes = bytes.subspan(used);
    }
    return error_;
}

}  // namespace shunt::rds
