#pragma once
// Where the proxy's NIC model comes from, and which RX queues each shard's CPU serves.
//
// An RSS NIC is described by its Toeplitz key, its indirection table (RETA) and which CPU handles
// each RX queue (IRQ affinity). The proxy takes that from a model file (TOML: key, reta,
// queue_cpus; the testbed writes one) or from a real interface (ethtool ioctl for key and RETA,
// /proc/irq/*/smp_affinity_list for the queue -> CPU map). Without a model the proxy forwards with
// kernel-chosen ports and says so.
#include <optional>
#include <string>
#include <vector>

#include "shunt/rss.hpp"

namespace shunt::proxy {

struct RssModel {
    rss::NicModel nic;
    std::vector<int> queue_cpu;  // queue q is served by CPU queue_cpu[q]
    std::string source;          // "file X", "nic eth0" (for messages and stats)

    // The queues whose interrupts (and so whose packets) go to `cpu`.
    std::vector<uint32_t> queues_of_cpu(int cpu) const;
};

// TOML: key = "6d:5a:..." (40..60 bytes); reta = [..] or reta_size + queues (i % queues);
// queue_cpus = [..] (default: queue q on CPU q). Throws ConfigError with file:line.
RssModel load_model_file(const std::string& path);
RssModel parse_model(const std::string& text, const std::string& origin);
// The model file for `m` (what the testbed exports and load_model_file reads back).
std::string format_model(const RssModel& m);

// Reads key, RETA and IRQ affinity of a real interface. Throws std::runtime_error if the device
// has no usable Toeplitz RSS (then run unaligned or give a model file).
RssModel model_from_nic(const std::string& ifname);

}  // namespace shunt::proxy
