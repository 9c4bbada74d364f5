#pragma once
// One shard: an epoll event loop pinned to one CPU, owning its listeners (one per frontend, from
// the reuseport groups), its sessions, its balancing state and its view of the port pools.
//
// Nothing on the per-connection path is shared with other shards: accept, server choice, source
// port choice (the shard's own Targets into the shared lock-free allocator), forwarding and
// timeouts all happen here. Sockets are edge-triggered; each direction of a session is a pump
// (splice through a pipe, or a buffer) that runs until the source is empty or the destination
// full, and a session that still had work after a bounded number of rounds is run again after
// the current batch of events, so one busy session cannot starve the others.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "core/unique_fd.hpp"
#include "proxy/runtime.hpp"
#include "proxy/stats.hpp"

namespace shunt::proxy {

struct Session;
struct Dir;
struct Endpoint;
enum class Pump { kIdle, kMore, kError };

// A shard's targets towards one server: for each source-address allocator, one rss::Target per
// RX queue served by the shard's CPU.
struct ShardServer {
    ServerState* state = nullptr;
    SockAddr addr;
    std::vector<rss::PortAllocator*> allocators;
    std::vector<std::vector<rss::Target>> targets;  // [allocator][queue]
    size_t next_target = 0;
    uint32_t active = 0;  // sessions of this shard on this server (leastconn)
};

// The targets a shard on `cpu` uses towards `remote`: one per queue the CPU serves. Exposed for
// tests; each costs one Toeplitz hash.
std::vector<rss::Target> shard_targets(const RssModel& model, int cpu, rss::PortAllocator& alloc,
                                       const SockAddr& remote);

class Shard {
  public:
    Shard(size_t index, int cpu, Runtime& rt, std::vector<UniqueFd> listeners);
    ~Shard();
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;

    // The thread body: pins itself to the CPU, runs until the runtime is stopping and the
    // sessions have drained (or the grace period ran out).
    void run();

    int cpu() const { return cpu_; }
    const ShardCounters& counters() const { return counters_; }
    bool aligned() const { return aligned_; }

  private:
    friend struct Session;
    struct Listener;
    using Clock = std::chrono::steady_clock;

    void setup_servers();
    void refresh_addresses();
    void accept_from(Listener& l);
    void start_session(UniqueFd client, size_t frontend);
    bool connect_server(Session& s);
    void on_event(Session& s, bool server_side, uint32_t events);
    void on_connected(Session& s);
    void run_session(Session& s);
    Pump pump(Dir& d, Endpoint& from, Endpoint& to, std::atomic<uint64_t>& bytes);
    void start_splice(Dir& d);
    void close_session(Session& s, std::atomic<uint64_t>* reason);
    void sweep();
    void pause_listeners(bool pause);
    void log_exhausted(const ShardServer& srv);
    bool connect_from_pool(Session& s, rss::PortAllocator& alloc, rss::Target& t, const SockAddr& remote);
    void cool(rss::PortLease lease);
    void release_cooled();

    size_t index_;
    int cpu_;
    Runtime& rt_;
    ShardCounters counters_;
    UniqueFd epoll_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::vector<ShardServer> servers_;  // parallel to rt_.servers()
    std::vector<size_t> rr_;            // per backend
    uint64_t seen_generation_ = 0;
    size_t limit_ = 0;
    bool aligned_ = false;  // a model, alignment on, and the CPU serves at least one queue
    bool paused_ = false;
    Session* head_ = nullptr;           // all sessions (for timeouts)
    std::vector<Session*> again_;       // sessions with work left after their rounds
    std::vector<Session*> graveyard_;   // closed during this batch, freed after it
    std::vector<std::pair<int, int>> pipes_;  // spare empty pipes for splice
    std::unique_ptr<char[]> scratch_;         // buffer-mode reads
    std::deque<std::pair<Clock::time_point, rss::PortLease>> cooling_;  // ports set aside, by expiry
    bool use_port_range_ = true;
    Clock::time_point now_;
    Clock::time_point last_exhausted_log_{};
};

}  // namespace shunt::proxy
