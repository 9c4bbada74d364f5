// libFuzzer target for rds lane input: an arbitrary byte stream, cut into chunks whose sizes the
// input also chooses, through FrameReader. Every frame it accepts must re-encode to a header
// that decodes to the same frame, with exactly h_len payload bytes.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "rds/frame_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace shunt::rds;
    if (size < 1) return 0;
    const size_t chunk = 1 + data[0] * 7;
    std::span<const uint8_t> stream(data + 1, size - 1);
    FrameReader reader;
    auto check = [](const Frame& f, std::span<const uint8_t> payload) {
        if (payload.size() != f.len) std::abort();
        auto again = decode_header(encode_header(f));
        if (!again || !(*again == f)) std::abort();
    };
    while (!stream.empty()) {
        const size_t n = std::min(chunk, stream.size());
        if (reader.feed(stream.first(n), check)) break;
        if (reader.pending() > kHeaderLen + kMaxFragment) std::abort();
        stream = stream.subspan(n);
    }
    return 0;
}
