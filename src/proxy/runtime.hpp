#pragma once
// What the shards share, all of it read-mostly: the configuration, the NIC model, each server's
// state (address, health) and the port allocators.
//
// Nothing here is written on the per-connection path. Health checks and the admin socket change
// a server's `up` flag or address; a shard notices an address change by comparing one global
// generation number per loop iteration, then copies the new address and retargets its own port
// pools (one Toeplitz hash per target). The allocators are shared, but for one destination the
// shards of different CPUs pop disjoint per-syndrome free lists (lock-free), so they do not
// contend.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/model.hpp"
#include "proxy/sockaddr.hpp"
#include "shunt/rss.hpp"

namespace shunt::proxy {

struct ServerState {
    std::string backend;
    std::string name;
    HostPort configured;
    std::atomic<bool> up{true};
    std::atomic<uint64_t> checks_failed{0};

    SockAddr address() const {
        std::lock_guard lock(mu_);
        return addr_;
    }
    void set_address(const SockAddr& a) {
        std::lock_guard lock(mu_);
        addr_ = a;
    }

  private:
    mutable std::mutex mu_;
    SockAddr addr_;
};

class Runtime {
  public:
    Runtime(Config config, std::optional<RssModel> model);

    const Config& config() const { return config_; }
    const std::optional<RssModel>& model() const { return model_; }
    bool aligned() const { return model_.has_value() && config_.align; }
    std::string model_description() const;

    std::vector<std::unique_ptr<ServerState>>& servers() { return servers_; }
    // Indices into servers() for backend b.
    const std::vector<size_t>& backend_servers(size_t b) const { return backend_servers_[b]; }

    // The allocators to draw source ports from towards `remote`: one per configured source
    // address of the remote's family, or the route's source address. Created on first use.
    std::vector<rss::PortAllocator*> allocators_for(const SockAddr& remote);

    // Bumped whenever a server's address changes; shards compare it once per loop iteration.
    std::atomic<uint64_t> address_generation{0};
    std::atomic<bool> stopping{false};

    // "set server addr": resolves and applies; returns an error text or "".
    std::string set_server_address(const std::string& backend, const std::string& server,
                                   const std::string& host_port);

  private:
    rss::PortAllocator* allocator(const rss::IpAddress& local);

    Config config_;
    std::optional<RssModel> model_;
    std::vector<std::unique_ptr<ServerState>> servers_;
    std::vector<std::vector<size_t>> backend_servers_;
    std::mutex alloc_mu_;
    std::map<std::string, std::unique_ptr<rss::PortAllocator>> allocators_;
};

}  // namespace shunt::proxy
