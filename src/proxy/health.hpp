#pragma once
// Active TCP health checks: every interval, one non-blocking connect to each server, all in
// parallel; `fall` consecutive failures take a server out (shards stop choosing it), `rise`
// consecutive successes bring it back. Runs on its own thread, off the shards' path. The same
// thread re-resolves servers given by DNS name every global.resolve_interval.
#include <atomic>

#include "proxy/runtime.hpp"

namespace shunt::proxy {

// Runs until `stop` is set; checks within one interval of it.
void run_health_checks(Runtime& rt, const std::atomic<bool>& stop);

}  // namespace shunt::proxy
