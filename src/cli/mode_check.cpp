// Samples the shunt connection table of every process for one server port.
#include "cli/mode_check.hpp"

#include <fmt/format.h>

#include "lo/stats_region.hpp"
#include "shunt/decline.hpp"

namespace shunt::cli {

void ModeTally::add(const ModeTally& o) {
    smcd += o.smcd;
    tcp += o.tcp;
    for (const auto& [k, n] : o.fallbacks) fallbacks[k] += n;
}

std::string ModeTally::summary() const {
    if (smcd == 0 && tcp == 0) return "no shunt connection seen";
    if (tcp == 0) return "SMCD";
    std::string s = "TCP fallback:";
    for (const auto& [k, n] : fallbacks) s += fmt::format(" {} x{}", k, n);
    if (smcd) s += fmt::format(" (SMCD x{})", smcd);
    return s;
}

ModeTally sample_modes(uint16_t port) {
    ModeTally t;
    for (const lo::ProcessStats& p : lo::read_all_stats()) {
        for (const lo::ConnSnapshot& c : p.conns) {
            const bool ours = c.server ? c.local.port == port : c.peer.port == port;
            if (!ours) continue;
            if (c.smcd) {
                ++t.smcd;
            } else {
                ++t.tcp;
                ++t.fallbacks[fmt::format("{} {}", c.server ? "server" : "client", decline_name(c.reason))];
            }
        }
    }
    return t;
}

}  // namespace shunt::cli
