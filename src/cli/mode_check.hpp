#pragma once
// Which transport the connections to a benchmark server really used, as `shunt stat --json`
// reports them (read here from the same per-process stats regions): a "shunt" figure measured
// on a TCP fallback would be a lie, so every run is checked while it runs.
#include <cstdint>
#include <map>
#include <string>

namespace shunt::cli {

struct ModeTally {
    int smcd = 0, tcp = 0;                // connections seen, over all samples
    std::map<std::string, int> fallbacks;  // reason name -> connections

    void add(const ModeTally& o);
    // "SMCD", "TCP fallback: PEERNOSMC x2", "no shunt connection seen"
    std::string summary() const;
    bool all_smcd() const { return smcd > 0 && tcp == 0; }
};

// Connections to or from TCP `port` on this host that shunt knows about, now.
ModeTally sample_modes(uint16_t port);

}  // namespace shunt::cli
