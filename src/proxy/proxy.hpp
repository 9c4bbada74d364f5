#pragma once
// shunt proxy: the process. Loads the NIC model, opens one reuseport listener group per frontend,
// starts one pinned shard per CPU, the health checker and the admin socket, and on SIGINT/SIGTERM
// stops accepting and lets the sessions drain (graceful stop, bounded by global.grace).
#include "proxy/config.hpp"
#include "proxy/model.hpp"

namespace shunt::proxy {

// The CPUs this process may run on (sched_getaffinity), in order.
std::vector<int> allowed_cpus();

// Loads the model named by the configuration (file or NIC); nullopt if none is configured.
std::optional<RssModel> load_model(const Config& config);

// Runs the proxy until a stop signal; returns the exit code.
int run_proxy(Config config);

}  // namespace shunt::proxy
