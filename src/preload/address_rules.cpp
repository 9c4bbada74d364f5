#include "preload/address_rules.hpp"

#include <algorithm>

namespace shunt::preload {
namespace {

std::optional<uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 65535) return std::nullopt;
    return static_cast<uint16_t>(v);
}

std::optional<AddressRule> parse_rule(std::string_view item) {
    AddressRule r;
    // A port or a port range alone.
    if (const auto dash = item.find('-'); item.find_first_of(".:/[") == std::string_view::npos) {
        const auto lo = parse_port(item.substr(0, dash));
        const auto hi = dash == std::string_view::npos ? lo : parse_port(item.substr(dash + 1));
        if (!lo || !hi || *lo > *hi) return std::nullopt;
        r.port_lo = *lo;
        r.port_hi = *hi;
        return r;
    }
    std::string_view addr = item;
    std::optional<uint16_t> port;
    if (!addr.empty() && addr.front() == '[') {  // [v6]:port
        const auto close = addr.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        if (close + 1 < addr.size()) {
            if (addr[close + 1] != ':' || !(port = parse_port(addr.substr(close + 2)))) return std::nullopt;
        }
        addr = addr.substr(1, close - 1);
    } else if (std::count(addr.begin(), addr.end(), ':') == 1) {  // v4:port
        const auto colon = addr.find(':');
        if (!(port = parse_port(addr.substr(colon + 1)))) return std::nullopt;
        addr = addr.substr(0, colon);
    }
    if (const auto slash = addr.find('/'); slash != std::string_view::npos) {
        const auto bits = parse_port(addr.substr(slash + 1));
        addr = addr.substr(0, slash);
        const bool v4 = addr.find(':') == std::string_view::npos;
        if (!bits || *bits > (v4 ? 32 : 128)) return std::nullopt;
        r.prefix = v4 ? *bits + 96u : *bits;
    }
    r.addr = IpPort::parse(std::string(addr), 0);
    if (!r.addr) return std::nullopt;
    if (port) r.port_lo = r.port_hi = *port;
    return r;
}

}  // namespace

bool AddressRule::matches(const IpPort& ep, bool any_address) const {
    if (ep.port < port_lo || ep.port > port_hi) return false;
    if (!addr || any_address) return true;
    unsigned bits = prefix;
    for (size_t i = 0; i < 16 && bits > 0; ++i) {
        const unsigned take = bits >= 8 ? 8 : bits;
        const uint8_t mask = static_cast<uint8_t>(0xff00u >> take);
        if ((ep.addr[i] & mask) != (addr->addr[i] & mask)) return false;
        bits -= take;
    }
    return true;
}

std::optional<std::vector<AddressRule>> parse_rules(std::string_view spec, std::string* bad) {
    std::vector<AddressRule> rules;
    while (!spec.empty()) {
        const auto comma = spec.find(',');
        std::string_view item = spec.substr(0, comma);
        spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (item.empty()) continue;
        auto r = parse_rule(item);
        if (!r) {
            if (bad) *bad = std::string(item);
            return std::nullopt;
        }
        rules.push_back(*r);
    }
    return rules;
}

}  // namespace shunt::preload
