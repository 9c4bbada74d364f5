#pragma once
// Incoming alignment: one SO_REUSEPORT listener per shard, and a classic BPF program on the group
// that picks the listener of the shard running on the CPU that processed the SYN.
//
// The kernel numbers a reuseport group's sockets in the order they start listening, so the
// listeners are created here in shard order and the program maps CPU -> shard index. A SYN
// handled on a CPU without a shard falls through to `cpu % shards`. Each accepted socket's
// SO_INCOMING_CPU tells whether it worked (the shard counts aligned and misaligned accepts).
#include <linux/filter.h>

#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "proxy/config.hpp"

namespace shunt::proxy {

// The program: load the CPU number; compare with each shard's CPU; return its index; else
// return cpu % cpus.size().
std::vector<sock_filter> reuseport_cpu_program(const std::vector<int>& cpus);

// What the program returns for a SYN handled on `cpu` (the same mapping, for tests and docs).
unsigned reuseport_index_for_cpu(const std::vector<int>& cpus, int cpu);

// socket, SO_REUSEPORT, bind, listen for each CPU in order, then the program on the first.
// Throws std::system_error naming the address.
std::vector<UniqueFd> open_listener_group(const HostPort& listen, const std::vector<int>& cpus,
                                          int backlog);


}  // namespace shunt::proxy
