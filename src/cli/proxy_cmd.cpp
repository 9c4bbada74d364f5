// `shunt proxy`: run the sharded RSS-aligned TCP proxy, check its configuration, query its admin
// socket, and write NIC model files. `run -c FILE` takes a TOML configuration; the flags cover the
// simple case of one frontend and one backend.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "proxy/admin.hpp"
#include "proxy/config.hpp"
#include "proxy/model.hpp"
#include "proxy/proxy.hpp"

namespace shunt::cli {
namespace {

struct RunOptions {
    std::string config_file;
    std::string listen;
    std::vector<std::string> servers;
    std::string balance = "roundrobin";
    std::string cpus;
    std::string model;
    std::string nic;
    std::string admin;
    std::string port_range;
    std::vector<std::string> sources;
    size_t max_connections = 10000;
    bool no_align = false;
    bool no_splice = false;
    bool no_health = false;
    bool proxy_protocol = false;
    std::string takeover, resolve_interval;
    std::string connect_timeout, client_idle, server_idle, health_interval, grace;
};

proxy::Millis duration_flag(const std::string& text, const char* flag) {
    const auto d = proxy::parse_duration(text);
    if (!d) throw proxy::ConfigError(fmt::format("{}: \"{}\" is not a duration (250ms, 5s, 2m)", flag, text));
    return *d;
}

proxy::Config config_from(const RunOptions& o) {
    proxy::Config c;
    if (!o.config_file.empty()) {
        if (!o.listen.empty() || !o.servers.empty())
            throw proxy::ConfigError("give either -c FILE or --listen/--server, not both");
        c = proxy::load_config(o.config_file);
    } else {
        c.origin = "command line";
        if (o.listen.empty() || o.servers.empty())
            throw proxy::ConfigError("need -c FILE, or --listen and at least one --server");
        proxy::FrontendConfig f;
        const auto l = proxy::parse_host_port(o.listen);
        if (!l) throw proxy::ConfigError(fmt::format("--listen: \"{}\" is not host:port", o.listen));
        f.listen = *l;
        f.name = "main";
        proxy::BackendConfig b;
        b.name = "main";
        if (o.balance == "roundrobin") b.balance = proxy::Balance::kRoundRobin;
        else if (o.balance == "leastconn") b.balance = proxy::Balance::kLeastConn;
        else throw proxy::ConfigError("--balance: roundrobin or leastconn");
        b.proxy_protocol = o.proxy_protocol;
        for (const auto& s : o.servers) {
            const auto hp = proxy::parse_host_port(s);
            if (!hp) throw proxy::ConfigError(fmt::format("--server: \"{}\" is not host:port", s));
            b.servers.push_back({hp->to_string(), *hp});
        }
        c.backends.push_back(std::move(b));
        c.frontends.push_back(std::move(f));
    }
    // Flags given together with a file override it.
    if (!o.cpus.empty()) {
        const auto cpus = proxy::parse_cpu_list(o.cpus);
        if (!cpus) throw proxy::ConfigError(fmt::format("--cpus: \"{}\" is not a CPU list", o.cpus));
        c.cpus = *cpus;
    }
    if (!o.model.empty()) c.model_file = o.model;
    if (!o.nic.empty()) c.nic = o.nic;
    if (!o.admin.empty()) c.admin_socket = o.admin;
    if (!o.port_range.empty()) {
        const auto r = rss::PortRange::parse(o.port_range);
        if (!r || r->lo == 0) throw proxy::ConfigError("--port-range: expected LO-HI");
        c.port_range = *r;
    }
    if (!o.sources.empty()) c.sources = o.sources;
    if (o.config_file.empty() || o.max_connections != 10000) c.max_connections = o.max_connections;
    if (o.no_align) c.align = false;
    if (o.no_splice) c.splice = false;
    if (o.no_health) c.health.enabled = false;
    if (!o.connect_timeout.empty()) c.connect_timeout = duration_flag(o.connect_timeout, "--connect-timeout");
    if (!o.client_idle.empty()) c.client_idle = duration_flag(o.client_idle, "--client-idle");
    if (!o.server_idle.empty()) c.server_idle = duration_flag(o.server_idle, "--server-idle");
    if (!o.health_interval.empty()) c.health.interval = duration_flag(o.health_interval, "--health-interval");
    if (!o.resolve_interval.empty()) c.resolve_interval = duration_flag(o.resolve_interval, "--resolve-interval");
    if (!o.grace.empty()) c.grace = duration_flag(o.grace, "--grace");
    proxy::validate(c);
    return c;
}

}  // namespace

void add_proxy_commands(CLI::App& app) {
    auto* proxy = app.add_subcommand("proxy", "shard-per-core TCP proxy with RSS-aligned sockets");
    proxy->require_subcommand(1);

    static RunOptions o;
    auto* run = proxy->add_subcommand("run", "run the proxy (until SIGINT/SIGTERM, then drain)");
    run->add_option("-c,--config", o.config_file, "TOML configuration file");
    run->add_option("--listen", o.listen, "frontend address host:port");
    run->add_option("--server", o.servers, "backend server host:port (repeat)");
    run->add_option("--balance", o.balance, "roundrobin or leastconn")->capture_default_str();
    run->add_option("--cpus", o.cpus, "CPUs to run one shard on each, e.g. 0-3 (default: all allowed)");
    run->add_option("--model", o.model, "NIC model file (key, RETA, queue CPUs)");
    run->add_option("--nic", o.nic, "read the NIC model from this interface (ethtool, IRQ affinity)");
    run->add_option("--admin", o.admin, "admin UNIX socket path");
    run->add_option("--port-range", o.port_range, "source ports for backend connections, LO-HI");
    run->add_option("--source", o.sources, "source address for backend connections (repeat)");
    run->add_option("--max-connections", o.max_connections, "client sessions, whole process")
        ->capture_default_str();
    run->add_flag("--no-align", o.no_align, "kernel-chosen source ports even with a model");
    run->add_flag("--no-splice", o.no_splice, "never splice(2): always forward through a buffer");
    run->add_flag("--no-health", o.no_health, "no active health checks");
    run->add_flag("--proxy-protocol", o.proxy_protocol, "send a PROXY protocol v2 header to servers");
    run->add_option("--takeover", o.takeover,
                    "graceful reload: take the listeners of the proxy with this admin socket");
    run->add_option("--resolve-interval", o.resolve_interval, "re-resolve DNS names this often, e.g. 30s (0 = never)");
    run->add_option("--connect-timeout", o.connect_timeout, "e.g. 5s");
    run->add_option("--client-idle", o.client_idle, "e.g. 60s");
    run->add_option("--server-idle", o.server_idle, "e.g. 60s");
    run->add_option("--health-interval", o.health_interval, "e.g. 1s");
    run->add_option("--grace", o.grace, "how long a stop lets sessions drain, e.g. 10s");
    run->callback([] {
        const int rc = proxy::run_proxy(config_from(o), o.takeover);
        if (rc != 0) throw CLI::RuntimeError(rc);
    });

    static std::string check_file;
    auto* check = proxy->add_subcommand("check", "parse a configuration file and report errors");
    check->add_option("config", check_file, "TOML configuration file")->required();
    check->callback([] {
        const auto c = proxy::load_config(check_file);
        fmt::print("{}: ok ({} frontend(s), {} backend(s))\n", check_file, c.frontends.size(), c.backends.size());
    });

    static std::string admin_path = "/run/shunt-proxy.sock";
    static bool json = false, prometheus = false;
    auto* stats = proxy->add_subcommand("stats", "per-shard counters from a running proxy");
    stats->add_option("--admin", admin_path, "admin UNIX socket")->capture_default_str();
    stats->add_flag("--json", json, "one JSON object");
    stats->add_flag("--prometheus", prometheus, "Prometheus text format");
    stats->callback([] {
        const std::string out =
            proxy::admin_request(admin_path, json ? "stats json" : prometheus ? "stats prometheus" : "stats");
        std::fwrite(out.data(), 1, out.size(), stdout);
        if (out.rfind("error:", 0) == 0) throw CLI::RuntimeError(1);
    });

    static std::string server_ref, server_addr;
    auto* set = proxy->add_subcommand("set-server", "move a server to a new address (retargets in O(1))");
    set->add_option("--admin", admin_path, "admin UNIX socket")->capture_default_str();
    set->add_option("server", server_ref, "BACKEND/SERVER")->required();
    set->add_option("address", server_addr, "host:port")->required();
    set->callback([] {
        const std::string out = proxy::admin_request(admin_path, fmt::format("set server {} addr {}", server_ref, server_addr));
        std::fwrite(out.data(), 1, out.size(), stdout);
        if (out.rfind("ok", 0) != 0) throw CLI::RuntimeError(1);
    });

    static std::string key;
    static uint32_t queues = 0;
    static size_t reta_size = 128;
    static std::string queue_cpus;
    auto* model = proxy->add_subcommand("model", "print a NIC model file (RETA filled i % queues)");
    model->add_option("--key", key, "Toeplitz key (hex); default: the Microsoft key");
    model->add_option("--queues", queues, "RX queues")->required();
    model->add_option("--reta-size", reta_size, "RETA entries")->capture_default_str();
    model->add_option("--queue-cpus", queue_cpus, "CPU of each queue, e.g. 0,1 (default: queue q on CPU q)");
    model->callback([] {
        proxy::RssModel m;
        if (!key.empty()) {
            const auto k = rss::ToeplitzKey::parse_hex(key);
            if (!k) throw std::runtime_error("--key: expected 40..60 bytes of hex");
            m.nic.key = *k;
        }
        m.nic.reta = rss::Reta::round_robin(reta_size, queues);
        if (!queue_cpus.empty()) {
            for (size_t at = 0; at <= queue_cpus.size();) {
                const auto comma = std::min(queue_cpus.find(',', at), queue_cpus.size());
                m.queue_cpu.push_back(std::stoi(queue_cpus.substr(at, comma - at)));
                at = comma + 1;
            }
            if (m.queue_cpu.size() != queues) throw std::runtime_error("--queue-cpus: one CPU per queue");
        } else {
            for (uint32_t q = 0; q < queues; ++q) m.queue_cpu.push_back(static_cast<int>(q));
        }
        fmt::print("{}", proxy::format_model(m));
    });
}

}  // namespace shunt::cli
