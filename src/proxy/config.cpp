// Configuration file parsing (toml++). Every error names file:line:column of the offending node;
// unknown keys are errors so that a misspelt option is never silently ignored.
#include "proxy/config.hpp"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace shunt::proxy {

std::string HostPort::to_string() const {
    if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
    return fmt::format("{}:{}", host, port);
}

std::optional<HostPort> parse_host_port(std::string_view text) {
    HostPort hp;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        hp.host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        hp.host = std::string(text.substr(0, colon));
        if (hp.host.find(':') != std::string::npos) return std::nullopt;  // v6 needs brackets
        port_text = text.substr(colon + 1);
    }
    if (hp.host.empty() || port_text.empty()) return std::nullopt;
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
        return std::nullopt;
    hp.port = static_cast<uint16_t>(port);
    return hp;
}

const char* to_string(Balance b) {
    return b == Balance::kRoundRobin ? "roundrobin" : "leastconn";
}

std::optional<Millis> parse_duration(std::string_view text) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end == text.data()) return std::nullopt;
    const std::string_view unit(end, text.data() + text.size() - end);
    if (unit.empty() || unit == "ms") return Millis(n);
    if (unit == "s") return Millis(n * 1000);
    if (unit == "m") return Millis(n * 60000);
    return std::nullopt;
}

std::optional<std::vector<int>> parse_cpu_list(std::string_view text) {
    std::vector<int> out;
    std::set<int> seen;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        const auto dash = item.find('-');
        auto num = [](std::string_view s) -> std::optional<int> {
            int v = 0;
            const auto [e, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (ec != std::errc{} || e != s.data() + s.size() || v < 0 || v > 4095) return std::nullopt;
            return v;
        };
        const auto lo = num(item.substr(0, dash));
        const auto hi = dash == std::string_view::npos ? lo : num(item.substr(dash + 1));
        if (!lo || !hi || *hi < *lo) return std::nullopt;
        for (int c = *lo; c <= *hi; ++c)
            if (seen.insert(c).second) out.push_back(c);
    }
    if (out.empty()) return std::nullopt;
    return out;
}

namespace {

[[noreturn]] void fail_at(const std::string& origin, const toml::source_region& where,
                          const std::string& what) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", origin, where.begin.line, where.begin.column, what));
}

// Walks one table, handing out its keys by name and complaining about the ones left over.
class Section {
  public:
    Section(const std::string& origin, const toml::table& t, std::string name)
        : origin_(origin), t_(t), name_(std::move(name)) {}

    const toml::node* get(std::string_view key) {
        used_.insert(std::string(key));
        return t_.get(key);
    }
    [[noreturn]] void fail(const toml::node& n, const std::string& what) const {
        fail_at(origin_, n.source(), what);
    }
    [[noreturn]] void fail_here(const std::string& what) const { fail_at(origin_, t_.source(), what); }

    std::optional<std::string> str(std::string_view key) {
        const auto* n = get(key);
        if (!n) return std::nullopt;
        if (!n->is_string()) fail(*n, fmt::format("{}.{}: expected a string", name_, key));
        return n->value<std::string>();
    }
    std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi) {
        const auto* n = get(key);
        if (!n) return std::nullopt;
        if (!n->is_integer()) fail(*n, fmt::format("{}.{}: expected an integer", name_, key));
        const int64_t v = *n->value<int64_t>();
        if (v < lo || v > hi)
            fail(*n, fmt::format("{}.{}: {} is out of range [{}, {}]", name_, key, v, lo, hi));
        return v;
    }
    std::optional<bool> boolean(std::string_view key) {
        const auto* n = get(key);
        if (!n) return std::nullopt;
        if (!n->is_boolean()) fail(*n, fmt::format("{}.{}: expected true or false", name_, key));
        return n->value<bool>();
    }
    std::optional<Millis> duration(std::string_view key) {
        const auto* n = get(key);
        if (!n) return std::nullopt;
        std::optional<Millis> d;
        if (n->is_integer() && *n->value<int64_t>() >= 0) d = Millis(*n->value<int64_t>());
        if (n->is_string()) d = parse_duration(*n->value<std::string>());
        if (!d)
            fail(*n, fmt::format("{}.{}: expected a duration (\"250ms\", \"5s\", \"2m\" or "
                                 "milliseconds)", name_, key));
        return d;
    }
    HostPort host_port(const toml::node& n, const std::string& what) const {
        if (!n.is_string()) fail(n, fmt::format("{}: expected \"host:port\"", what));
        const auto hp = parse_host_port(*n.value<std::string>());
        if (!hp)
            fail(n, fmt::format("{}: \"{}\" is not host:port (port 1-65535, IPv6 in brackets)",
                                what, *n.value<std::string>()));
        return *hp;
    }
    void finish() const {
        for (const auto& [k, v] : t_)
            if (!used_.count(std::string(k.str())))
                fail(v, fmt::format("unknown key \"{}\" in {}", k.str(), name_));
    }

  private:
    const std::string& origin_;
    const toml::table& t_;
    std::string name_;
    std::set<std::string> used_;
};

const toml::table& as_table(const std::string& origin, const toml::node& n, const std::string& what) {
    if (!n.is_table()) fail_at(origin, n.source(), fmt::format("{}: expected a table", what));
    return *n.as_table();
}

const toml::array& as_array(const std::string& origin, const toml::node& n, const std::string& what) {
    if (!n.is_array()) fail_at(origin, n.source(), fmt::format("{}: expected an array", what));
    return *n.as_array();
}

void parse_global(const std::string& origin, const toml::table& t, Config& c) {
    Section s(origin, t, "global");
    if (const auto* n = s.get("cpus")) {
        std::optional<std::vector<int>> cpus;
        if (n->is_string()) cpus = parse_cpu_list(*n->value<std::string>());
        if (!cpus) s.fail(*n, "global.cpus: expected a CPU list such as \"0-3,6\"");
        c.cpus = *cpus;
    }
    if (auto v = s.integer("max_connections", 1, 10'000'000)) c.max_connections = static_cast<size_t>(*v);
    if (auto v = s.integer("backlog", 1, 65535)) c.backlog = static_cast<size_t>(*v);
    if (auto v = s.str("admin")) c.admin_socket = *v;
    if (auto v = s.boolean("splice")) c.splice = *v;
    if (auto v = s.integer("retries", 0, 16)) c.retries = static_cast<int>(*v);
    if (auto v = s.duration("grace")) c.grace = *v;
    if (auto v = s.duration("resolve_interval")) c.resolve_interval = *v;
    s.finish();
}

void parse_rss(const std::string& origin, const toml::table& t, Config& c) {
    Section s(origin, t, "rss");
    if (auto v = s.str("model")) c.model_file = *v;
    if (auto v = s.str("nic")) c.nic = *v;
    if (auto v = s.boolean("align")) c.align = *v;
    if (const auto* n = s.get("port_range")) {
        std::optional<rss::PortRange> r;
        if (n->is_string()) r = rss::PortRange::parse(*n->value<std::string>());
        if (!r || r->lo == 0) s.fail(*n, "rss.port_range: expected \"LO-HI\" with 1 <= LO <= HI <= 65535");
        c.port_range = *r;
    }
    if (const auto* n = s.get("sources")) {
        for (const auto& e : as_array(origin, *n, "rss.sources")) {
            if (!e.is_string() || !rss::IpAddress::parse(*e.value<std::string>()))
                s.fail(e, "rss.sources: expected IP addresses");
            c.sources.push_back(*e.value<std::string>());
        }
    }
    if (!c.model_file.empty() && !c.nic.empty())
        s.fail_here("rss: give either model or nic, not both");
    s.finish();
}

void parse_timeouts(const std::string& origin, const toml::table& t, Config& c) {
    Section s(origin, t, "timeouts");
    if (auto v = s.duration("connect")) c.connect_timeout = *v;
    if (auto v = s.duration("client_idle")) c.client_idle = *v;
    if (auto v = s.duration("server_idle")) c.server_idle = *v;
    s.finish();
}

void parse_health(const std::string& origin, const toml::table& t, Config& c) {
    Section s(origin, t, "health");
    if (auto v = s.boolean("enabled")) c.health.enabled = *v;
    if (auto v = s.duration("interval")) c.health.interval = *v;
    if (auto v = s.duration("timeout")) c.health.timeout = *v;
    if (auto v = s.integer("rise", 1, 100)) c.health.rise = static_cast<int>(*v);
    if (auto v = s.integer("fall", 1, 100)) c.health.fall = static_cast<int>(*v);
    s.finish();
}

BackendConfig parse_backend(const std::string& origin, const toml::table& t) {
    Section s(origin, t, "backend");
    BackendConfig b;
    const auto name = s.str("name");
    if (!name || name->empty()) s.fail_here("backend: needs a name");
    b.name = *name;
    if (const auto* n = s.get("balance")) {
        const auto v = n->value<std::string>();
        if (v == "roundrobin" || v == "round-robin") b.balance = Balance::kRoundRobin;
        else if (v == "leastconn" || v == "least-connections") b.balance = Balance::kLeastConn;
        else s.fail(*n, "backend.balance: expected \"roundrobin\" or \"leastconn\"");
    }
    if (auto v = s.boolean("proxy_protocol")) b.proxy_protocol = *v;
    const auto* servers = s.get("servers");
    if (!servers) s.fail_here(fmt::format("backend \"{}\": needs servers", b.name));
    std::set<std::string> names;
    for (const auto& e : as_array(origin, *servers, "backend.servers")) {
        ServerConfig sc;
        if (e.is_table()) {
            Section ss(origin, *e.as_table(), "server");
            const auto* addr = ss.get("address");
            if (!addr) ss.fail_here("server: needs an address");
            sc.address = ss.host_port(*addr, "server.address");
            sc.name = ss.str("name").value_or(sc.address.to_string());
            ss.finish();
        } else {
            sc.address = s.host_port(e, "backend.servers");
            sc.name = sc.address.to_string();
        }
        if (!names.insert(sc.name).second)
            fail_at(origin, e.source(), fmt::format("backend \"{}\": two servers named \"{}\"", b.name, sc.name));
        b.servers.push_back(std::move(sc));
    }
    if (b.servers.empty()) fail_at(origin, servers->source(), fmt::format("backend \"{}\": no servers", b.name));
    s.finish();
    return b;
}

}  // namespace

Config parse_config(std::string_view text, const std::string& origin) {
    toml::table root;
    try {
        root = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        fail_at(origin, e.source(), std::string(e.description()));
    }
    Config c;
    c.origin = origin;
    Section top(origin, root, "the top level");
    if (const auto* n = top.get("global")) parse_global(origin, as_table(origin, *n, "global"), c);
    if (const auto* n = top.get("rss")) parse_rss(origin, as_table(origin, *n, "rss"), c);
    if (const auto* n = top.get("timeouts")) parse_timeouts(origin, as_table(origin, *n, "timeouts"), c);
    if (const auto* n = top.get("health")) parse_health(origin, as_table(origin, *n, "health"), c);
    if (const auto* n = top.get("backend")) {
        for (const auto& e : as_array(origin, *n, "backend")) {
            auto b = parse_backend(origin, as_table(origin, e, "backend"));
            for (const auto& other : c.backends)
                if (other.name == b.name)
                    fail_at(origin, e.source(), fmt::format("two backends named \"{}\"", b.name));
            c.backends.push_back(std::move(b));
        }
    }
    const auto* fronts = top.get("frontend");
    if (!fronts) top.fail_here("no [[frontend]]: nothing to listen on");
    for (const auto& e : as_array(origin, *fronts, "frontend")) {
        Section s(origin, as_table(origin, e, "frontend"), "frontend");
        FrontendConfig f;
        const auto* listen = s.get("listen");
        if (!listen) s.fail_here("frontend: needs listen = \"address:port\"");
        f.listen = s.host_port(*listen, "frontend.listen");
        f.name = s.str("name").value_or(f.listen.to_string());
        const auto* backend = s.get("backend");
        if (!backend) s.fail_here("frontend: needs backend = \"name\"");
        const auto bname = backend->value<std::string>();
        size_t i = 0;
        while (i < c.backends.size() && (!bname || c.backends[i].name != *bname)) ++i;
        if (i == c.backends.size())
            s.fail(*backend, fmt::format("frontend \"{}\": no backend named \"{}\"", f.name,
                                         bname.value_or("?")));
        f.backend = i;
        s.finish();
        c.frontends.push_back(std::move(f));
    }
    top.finish();
    validate(c);
    return c;
}

Config load_config(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw ConfigError(fmt::format("{}: cannot open", path));
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config(ss.str(), path);
}

void validate(const Config& c) {
    if (c.frontends.empty()) throw ConfigError(fmt::format("{}: no frontend", c.origin));
    for (const auto& b : c.backends)
        if (b.servers.empty())
            throw ConfigError(fmt::format("{}: backend \"{}\" has no servers", c.origin, b.name));
    for (const auto& f : c.frontends)
        if (f.backend >= c.backends.size())
            throw ConfigError(fmt::format("{}: frontend \"{}\" has no backend", c.origin, f.name));
    if (c.health.timeout.count() == 0 || c.health.interval.count() == 0)
        throw ConfigError(fmt::format("{}: health interval and timeout must be > 0", c.origin));
    if (c.connect_timeout.count() == 0)
        throw ConfigError(fmt::format("{}: connect timeout must be > 0", c.origin));
}

}  // namespace shunt::proxy
