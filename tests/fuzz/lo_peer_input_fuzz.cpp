// libFuzzer target for everything lo reads from a peer besides CLC: the side-channel messages
// on the UNIX socket and the CDC cursor words the peer writes into shared memory. Decoded side
// messages must re-encode to the same bytes; a cursor accepted from a peer must never claim more
// than one ring of data.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "core/cursor.hpp"
#include "lo/dmb.hpp"
#include "lo/side_channel.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace shunt;
    const std::span<const uint8_t> bytes(data, size);
    if (auto h = lo::decode_hello(bytes)) {
        const auto again = lo::encode(*h);
        if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
    }
    if (auto b = lo::decode_buffers(bytes)) {
        const auto again = lo::encode(*b);
        if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
    }
    if (size >= 20) {
        uint64_t ours, theirs;
        uint32_t ring;
        std::memcpy(&ours, data, 8);
        std::memcpy(&theirs, data + 8, 8);
        std::memcpy(&ring, data + 16, 4);
        ring = ring % (1u << 20) + 1;
        const Cursor from = lo::CdcWord::unpack(ours).cursor;
        const Cursor to = lo::CdcWord::unpack(theirs).cursor;
        if (const auto d = cursor_distance(from, to, ring)) {
            if (*d > ring) std::abort();
            if (!(cursor_add(from, *d, ring) == to)) std::abort();  // the distance walks from -> to
        }
    }
    return 0;
}
