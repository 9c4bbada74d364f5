#pragma once
// Pieces the files of lo::Connection share: memory orders, the iovec walk that copies between
// the application's buffers and a ring, and cursor packing.
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "lo/dmb.hpp"

namespace shunt::lo {
inline namespace connection_internal {

using Clock = std::chrono::steady_clock;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelaxed = std::memory_order_relaxed;
// Publish-then-look pairs (Dekker) use seq_cst store and load on both sides, so of two sides
// that each publish and then look, at least one sees the other. It is what a fence would give
// (an xchg on x86) and, unlike a fence, ThreadSanitizer understands it.
constexpr auto kSeqCst = std::memory_order_seq_cst;
// Linux smc_rmb_wnd_update_limit: max(ring/10, SOCK_MIN_SNDBUF/2).
constexpr uint32_t kMinWindowUpdate = 2304;

inline size_t iov_total(const iovec* iov, int iovcnt) {
    size_t n = 0;
    for (int i = 0; i < iovcnt; ++i) n += iov[i].iov_len;
    return n;
}

struct IovPos {
    int index = 0;
    size_t offset = 0;
};

// Copies up to `max` bytes between a ring (from `pos`, wrapping at `size`) and the iovecs
// (from `at`, which advances). A message that wraps around the ring comes out whole.
template <bool ToRing>
size_t ring_copy(uint8_t* ring, uint32_t size, uint32_t pos, const iovec* iov, int iovcnt, IovPos& at, size_t max) {
    size_t done = 0;
    while (done < max && at.index < iovcnt) {
        const iovec& v = iov[at.index];
        const size_t seg = v.iov_len - at.offset;
        if (seg == 0) {
            ++at.index;
            at.offset = 0;
            continue;
        }
        const size_t n = std::min({seg, max - done, size_t{size - pos}});
        auto* app = static_cast<uint8_t*>(v.iov_base) + at.offset;
        if constexpr (ToRing) std::memcpy(ring + pos, app, n);
        else std::memcpy(app, ring + pos, n);
        done += n;
        at.offset += n;
        pos += static_cast<uint32_t>(n);
        if (pos == size) pos = 0;
    }
    return done;
}

inline uint64_t pack_cursor(Cursor c) { return CdcWord{c, 0, 0}.pack(); }

}  // namespace connection_internal
}  // namespace shunt::lo
