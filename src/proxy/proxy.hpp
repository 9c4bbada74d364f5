#pragma once
// shunt proxy: the process. Loads the NIC model, opens one reuseport listener group per frontend,
// starts one pinned shard per CPU, the health checker and the admin socket, and on SIGINT/SIGTERM
// stops accepting and lets the sessions drain (graceful stop, bounded by global.grace).
// A reload is a new process taking over the listeners through the admin socket.
#include "proxy/config.hpp"
#include "proxy/model.hpp"

namespace shunt::proxy {

// The CPUs this process may run on (sched_getaffinity), in order.
std::vector<int> allowed_cpus();

// Loads the model named by the configuration (file or NIC); nullopt if none is configured.
std::optional<RssModel> load_model(const Config& config);

// Runs the proxy until a stop signal; returns the exit code. With `takeover_from` (the admin
// socket of a running proxy with the same frontends and CPUs) the listeners are taken from it
// instead of opened, and it drains and exits: a reload that refuses no connection.
int run_proxy(Config config, const std::string& takeover_from = "");

}  // namespace shunt::proxy
