#pragma once
// What `shunt run` (or the environment) asks of the preload:
//   SHUNT_BUFFER_SIZE, SHUNT_SPIN_US, SHUNT_RUNDIR, SHUNT_UEID, SHUNT_CLC_TIMEOUT_MS  (as lo)
//   SHUNT_ALLOW / SHUNT_DENY  comma lists of ports (80), port ranges (8000-8100), addresses
//                             (127.0.0.1, ::1), prefixes (10.0.0.0/8) and address:port
//                             ([::1]:80, 127.0.0.1:6379): deny wins; a non-empty allow list
//                             accelerates only what it names. Like SMC's pnet/ueid tables,
//                             a connection outside them stays TCP (DECL NOSMCDEV).
//   SHUNT_DEBUG               1 (stderr) or a file path: one line per decision.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/inet.hpp"
#include "preload/address_rules.hpp"
#include "shunt/lo.hpp"

namespace shunt::preload {

struct Config {
    lo::Options lo;
    std::vector<AddressRule> allow, deny;
    bool allowed(const IpPort& ep, bool listener) const;

    static Config from_env();
};

const Config& config();

}  // namespace shunt::preload
