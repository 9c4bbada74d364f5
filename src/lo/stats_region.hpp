#pragma once
// What `shunt stat` and `shunt stats` read: each process that uses lo keeps its counters and a
// table of its live connections in one memfd named "shunt-stats". The CLI finds these through
// /proc/<pid>/fd (so only the same user or root can read them) and maps them read-only. There
// is no file anywhere: the region disappears with the process, even on SIGKILL.
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cursor.hpp"
#include "core/inet.hpp"
#include "core/shared_memory.hpp"

namespace shunt::lo {

// Counters in the spirit of `smcd stats`.
struct Counters {
    std::atomic<uint64_t> client_smcd{0}, server_smcd{0};
    std::atomic<uint64_t> client_fallback{0}, server_fallback{0};
    std::atomic<uint64_t> handshake_errors{0};
    std::atomic<uint64_t> tx_bytes{0}, rx_bytes{0};
    std::atomic<uint64_t> tx_calls{0}, rx_calls{0};
    std::atomic<uint64_t> tx_buffer_full{0};
    std::atomic<uint64_t> wakeups_sent{0};
};

struct FallbackCount {
    std::atomic<uint32_t> code{0};  // 0: unused entry
    std::atomic<uint32_t> server{0};
    std::atomic<uint64_t> count{0};
};

// One live connection. `gen` is odd while the static part is being written (a seqlock), so a
// reader never mixes two connections that used the slot one after the other.
struct ConnSlot {
    std::atomic<uint32_t> gen{0};
    std::atomic<uint32_t> in_use{0};
    // Static, written once when the connection starts.
    uint8_t local_addr[16], peer_addr[16];
    uint16_t local_port, peer_port;
    uint8_t smcd, server;
    uint32_t reason, peer_reason;
    uint32_t rx_ring, tx_ring;
    uint64_t local_token, peer_token;
    // Dynamic, updated by the connection as it runs.
    std::atomic<uint64_t> rx_consumed{0}, rx_peer_produced{0}, tx_produced{0}, tx_peer_consumed{0};
    std::atomic<uint8_t> sent_flags{0}, got_flags{0}, peer_died{0}, closed{0};
};

inline constexpr uint64_t kStatsMagic = 0x4154535453554853ULL;  // "SHUSTSTA"
inline constexpr uint32_t kStatsVersion = 1;
inline constexpr size_t kConnSlots = 4096;
inline constexpr size_t kFallbackEntries = 64;

struct StatsLayout {
    uint64_t magic;
    uint32_t version;
    uint32_t slots;
    int32_t pid;
    uint32_t uid;
    Counters counters;
    FallbackCount fallbacks[kFallbackEntries];
    ConnSlot conns[kConnSlots];
};

// The calling process's region, created on first use.
class StatsRegion {
public:
    static StatsRegion& instance();
    Counters& counters() { return layout_->counters; }
    void count_fallback(bool server, uint32_t reason);
    // A free slot for a new connection (nullptr if all are taken: the connection still works,
    // it is just not listed). release() gives it back.
    ConnSlot* acquire();
    void release(ConnSlot* s);
    // In a forked child: start a region of our own, so `shunt stat` shows our pid. The
    // parent's region stays mapped (slots of inherited connections point there until they
    // are rehomed) but its descriptor is closed.
    void reset_after_fork();

private:
    StatsRegion();
    void init();
    SharedMemory mem_;
    StatsLayout* layout_ = nullptr;
    std::atomic<size_t> next_hint_{0};
    std::atomic<bool> stale_{false};
};

// ---- the reading side (CLI) ----

struct ConnSnapshot {
    IpPort local, peer;
    bool smcd = false, server = false;
    uint32_t reason = 0, peer_reason = 0, rx_ring = 0, tx_ring = 0;
    uint64_t local_token = 0, peer_token = 0;
    Cursor rx_consumed, rx_peer_produced, tx_produced, tx_peer_consumed;
    uint8_t sent_flags = 0, got_flags = 0;
    bool peer_died = false, closed = false;
};

struct ProcessStats {
    pid_t pid = 0;
    uid_t uid = 0;
    std::string comm;
    uint64_t counters[11] = {};  // in the order of Counters
    std::vector<std::pair<uint32_t, bool>> fallback_codes;  // (code, server) per entry below
    std::vector<uint64_t> fallback_counts;
    std::vector<ConnSnapshot> conns;
};

// Every process on this host (that we may look at) with a shunt-stats region.
std::vector<ProcessStats> read_all_stats();

}  // namespace shunt::lo
