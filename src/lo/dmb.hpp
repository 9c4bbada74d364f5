#pragma once
// A DMB (receive buffer) as shunt lays it out in a memfd:
//
//   [ meta page, 4 KiB ][ SMC-D DMB: 32-byte CDC header | ring of (dmb_size - 32) bytes ]
//
// The DMB part is the Linux SMC-D layout (docs/wire-format.md): the *peer* writes payload into the
// ring and its cursors and flags into the CDC header; the owner only reads them. The meta page
// is shunt's own: a magic and the DMB token so an attach can be verified (a wrong buffer is
// never used), and the owner's "wake me" flag that the writer reads before signalling.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/cursor.hpp"
#include "core/result.hpp"
#include "core/shared_memory.hpp"

namespace shunt::lo {

inline constexpr uint8_t kCdcType = 0xFE;
inline constexpr size_t kCdcHeaderLen = 32;
inline constexpr size_t kMetaLen = 4096;
inline constexpr uint64_t kDmbMagic = 0x424D44544E554853ULL;  // "SHUNTDMB" little endian
inline constexpr uint32_t kDmbVersion = 1;

// Producer flags (carried in the cons slot) and connection-state flags, docs/wire-format.md
namespace prod_flag {
inline constexpr uint8_t kWriteBlocked = 0x80;
inline constexpr uint8_t kConsCursorUpdateRequest = 0x10;
}  // namespace prod_flag
namespace conn_flag {
inline constexpr uint8_t kPeerDoneWriting = 0x80;
inline constexpr uint8_t kPeerConnClosed = 0x40;
inline constexpr uint8_t kPeerConnAbort = 0x20;
// shunt's own, in a bit RFC 7609 reserves: this side left shared memory and carries on over the
// TCP socket (a process exec'd with the connection open). Its cursor is then its exact
// consumer cursor, and the peer resends over TCP what lies beyond it (Connection::take_over).
inline constexpr uint8_t kMovedToTcp = 0x01;
}  // namespace conn_flag

// The 8-byte cursor slots of the CDC header, as one little-endian word each so they are read
// and written with single 64-bit atomic accesses (Linux smcd_curs_copy does the same):
//   prod slot: wrap u16 | count u32 | unused u16
//   cons slot: wrap u16 | count u32 | producer flags u8 | connection-state flags u8
struct CdcWord {
    Cursor cursor;
    uint8_t prod_flags = 0;
    uint8_t conn_flags = 0;

    static constexpr CdcWord unpack(uint64_t w) {
        return {{static_cast<uint16_t>(w), static_cast<uint32_t>(w >> 16)},
                static_cast<uint8_t>(w >> 48), static_cast<uint8_t>(w >> 56)};
    }
    constexpr uint64_t pack() const {
        return uint64_t{cursor.wrap} | uint64_t{cursor.count} << 16 | uint64_t{prod_flags} << 48 |
               uint64_t{conn_flags} << 56;
    }
};

struct DmbMeta {
    uint64_t magic;
    uint32_t version;
    uint32_t dmb_size;
    uint64_t token;
    // Set by the owner when it waits; the peer clears the flag (exchange) and signals once.
    alignas(64) std::atomic<uint32_t> reader_wants_signal;  // owner waits for data or a close flag
    alignas(64) std::atomic<uint32_t> writer_wants_signal;  // owner waits for space in the peer's ring
    // Processes that hold this end of the connection (fork), by pid; 0 is a free entry. Only
    // the last live one to let go closes the connection.
    static constexpr int kMaxHolders = 8;
    alignas(64) std::atomic<int32_t> holder_pids[kMaxHolders];
    // Written by the peer before it sets kMovedToTcp: the cursor (packed as a prod slot) from
    // which it resent over TCP what it had written into this ring. We skip on TCP what of that
    // we had already read from the ring.
    alignas(64) std::atomic<uint64_t> resent_from;
    // The owner's exact consumer cursor (packed as a prod slot), stored on every read on a line
    // nobody else writes; the announced one in the CDC header lags by design (the 10% rule).
    // The peer reads it only when the owner died: had it read everything (a close) or not (an
    // abort)? A process that exits right after reading EOF has read everything.
    alignas(64) std::atomic<uint64_t> owner_consumed;
};
static_assert(sizeof(DmbMeta) <= kMetaLen);
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic_ref<uint64_t>::is_always_lock_free);

// A mapped DMB, either our own (we read it) or the peer's (we write into it).
class Dmb {
public:
    Dmb() = default;
    // A new DMB of `dmb_size` bytes (CDC header + ring) named by `token`. Error: errno.
    static Result<Dmb, int> create(size_t dmb_size, uint64_t token);
    // A DMB received from the peer: must be a sealed memfd of the right size whose meta page
    // names `token`. Error: errno (EINVAL for a wrong buffer).
    static Result<Dmb, int> attach(UniqueFd fd, size_t dmb_size, uint64_t token);

    int fd() const { return mem_.fd(); }
    void close_fd() { mem_.close_fd(); }
    uint64_t token() const { return meta()->token; }
    uint32_t ring_size() const { return ring_size_; }
    DmbMeta* meta() const { return reinterpret_cast<DmbMeta*>(mem_.data()); }
    uint8_t* ring() const { return mem_.data() + kMetaLen + kCdcHeaderLen; }

    std::atomic_ref<uint64_t> prod_slot() const { return slot(8); }
    std::atomic_ref<uint64_t> cons_slot() const { return slot(16); }

private:
    explicit Dmb(SharedMemory mem);
    std::atomic_ref<uint64_t> slot(size_t off) const {
        return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(mem_.data() + kMetaLen + off));
    }

    SharedMemory mem_;
    uint32_t ring_size_ = 0;
};

}  // namespace shunt::lo
