#pragma once
// Per-shard counters. Each shard is the only writer of its own block (relaxed stores on the
// shard's cache lines, no read-modify-write shared with anyone); the admin thread reads them all
// and sums. The names double as JSON keys and, prefixed with shunt_proxy_, Prometheus metrics.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace shunt::proxy {

#define SHUNT_PROXY_COUNTERS(X)                                                             \
    X(sessions_total, counter, "client connections accepted")                              \
    X(sessions_active, gauge, "client connections open")                                   \
    X(bytes_in, counter, "bytes from clients to servers")                                  \
    X(bytes_out, counter, "bytes from servers to clients")                                 \
    X(aligned_in, counter, "accepted sockets whose SYN was handled on the shard's CPU")    \
    X(misaligned_in, counter, "accepted sockets whose SYN was handled on another CPU")     \
    X(aligned_out, counter, "server connections whose SYN-ACK arrived on the shard's CPU") \
    X(misaligned_out, counter, "server connections whose SYN-ACK arrived on another CPU")  \
    X(aligned_ports, counter, "server connections from an RSS-aligned source port")        \
    X(kernel_ports, counter, "server connections from a kernel-chosen port (no model)")    \
    X(port_retries, counter, "aligned ports skipped because the 4-tuple was taken")        \
    X(port_exhausted, counter, "sessions refused: no aligned source port left")            \
    X(pool_ports, gauge, "aligned ports in the shard's pools (all servers)")               \
    X(ports_held, gauge, "aligned ports in use by the shard")                              \
    X(ports_cooling, gauge, "aligned ports set aside after a close or a conflict")          \
    X(retargets, counter, "server address changes applied to the shard's pools")           \
    X(toeplitz_hashes, counter, "Toeplitz hashes computed (targets, retargets)")           \
    X(connect_errors, counter, "failed connections to servers")                            \
    X(no_server, counter, "sessions refused: no server up")                                \
    X(redispatches, counter, "sessions retried on another server")                         \
    X(timeouts_connect, counter, "server connections that timed out")                      \
    X(timeouts_client, counter, "sessions closed: client idle")                            \
    X(timeouts_server, counter, "sessions closed: server idle")                            \
    X(errors, counter, "sessions closed on a socket error")                                \
    X(accept_errors, counter, "accept() failures")                                         \
    X(limit_reached, counter, "times the shard stopped accepting at max connections")

struct ShardCounters {
#define SHUNT_PROXY_FIELD(name, kind, help) std::atomic<uint64_t> name{0};
    SHUNT_PROXY_COUNTERS(SHUNT_PROXY_FIELD)
#undef SHUNT_PROXY_FIELD
};

// Single-writer increment: a load and a store, no locked instruction.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
inline void drop(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

struct ShardView {
    int cpu = 0;
    const ShardCounters* counters = nullptr;
};
struct ServerView {
    std::string backend, name, address;
    bool up = false;
    uint64_t checks_failed = 0;
};

// The admin socket's answers.
std::string stats_json(const std::vector<ShardView>& shards, const std::vector<ServerView>& servers,
                       const std::string& model);
std::string stats_prometheus(const std::vector<ShardView>& shards, const std::vector<ServerView>& servers);
std::string stats_table(const std::vector<ShardView>& shards, const std::vector<ServerView>& servers,
                        const std::string& model);

}  // namespace shunt::proxy
