#pragma once
// Allow/deny lists for what shunt accelerates (SHUNT_ALLOW, SHUNT_DENY, `shunt run --allow`),
// in the spirit of SMC's pnet and UEID tables: comma lists of ports (80), port ranges
// (8000-8100), addresses (127.0.0.1, ::1), prefixes (10.0.0.0/8) and address:port pairs
// (127.0.0.1:6379, [::1]:80).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/inet.hpp"

namespace shunt::preload {

struct AddressRule {
    std::optional<IpPort> addr;  // nullopt: any address
    unsigned prefix = 128;       // in the v4-mapped v6 space
    uint16_t port_lo = 0, port_hi = 65535;

    // A listener bound to every address (0.0.0.0, ::) is matched on its port alone.
    bool matches(const IpPort& ep, bool any_address = false) const;
};

// Error: the offending item in *bad.
std::optional<std::vector<AddressRule>> parse_rules(std::string_view spec, std::string* bad = nullptr);

}  // namespace shunt::preload
