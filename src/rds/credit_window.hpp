#pragma once
// What a sending node knows of one destination socket's flow-control window. The receiver
// numbers every window it sends about one socket to one peer (1, 2, ...); windows travel on
// several lanes (acks on the data lane, updates on the first lane up) and may arrive out of
// order, so only a window with a higher number than the last one applied replaces it: an old
// "0" arriving last would otherwise stall the sender for good, an old large one would let it
// overrun the receiver.
#include <cstddef>
#include <cstdint>

namespace shunt::rds {

// Credit a destination socket is assumed to grant before its first ack says otherwise.
inline constexpr size_t kInitialWindow = 4 << 20;

struct Credit {
    size_t window = kInitialWindow;
    size_t unacked = 0;       // payload bytes sent to this destination socket and not acked
    uint64_t window_seq = 0;  // ordering number of `window` (0: the initial assumption)
    void update(uint32_t w, uint64_t seq) {
        if (seq <= window_seq) return;
        window = w;
        window_seq = seq;
    }
};

}  // namespace shunt::rds
