#include "preload/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "preload/log.hpp"

namespace shunt::preload {

bool Config::allowed(const IpPort& ep, bool listener) const {
    const bool any = listener && ep.is_wildcard();
    for (const auto& r : deny)
        if (r.matches(ep, any && !r.addr)) return false;
    if (allow.empty()) return true;
    for (const auto& r : allow)
        if (r.matches(ep, any)) return true;
    return false;
}

Config Config::from_env() {
    Config c;
    c.lo = lo::Options::from_env();
    for (auto [name, list] : {std::pair{"SHUNT_ALLOW", &c.allow}, std::pair{"SHUNT_DENY", &c.deny}}) {
        const char* v = std::getenv(name);
        if (!v || !*v) continue;
        std::string bad;
        if (auto rules = parse_rules(v, &bad)) {
            *list = std::move(*rules);
        } else {
            // Refusing everything is the safe reading of a list we cannot parse.
            log_always("%s: cannot parse '%s'; nothing will be accelerated", name, bad.c_str());
            c.deny = {AddressRule{}};  // matches every address and port
        }
    }
    return c;
}

const Config& config() {
    static const Config c = Config::from_env();
    return c;
}

}  // namespace shunt::preload
