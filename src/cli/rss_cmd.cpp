// `shunt rss`: Toeplitz hash, RSS-aligned local ports, a NIC's RSS setup, and aligned connects.
// For people and scripts: `hash` and `ports` print plain lines that a shell can parse; the hash
// printed by `hash` is the bit-serial reference, so scripts can check the allocator with it.
// Defaults model a NIC with the Microsoft key and a RETA of 128 entries filled i % queues;
// --iface reads the real key and RETA instead (ethtool), --key/--reta-size/--queues override.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "shunt/rss.hpp"

namespace shunt::cli {
namespace {

using namespace shunt::rss;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what);
}

struct ModelOptions {
    std::string key;
    uint32_t queues = 8;
    size_t reta_size = 128;
    std::string iface;
};

void add_model_options(CLI::App* cmd, ModelOptions& m) {
    cmd->add_option("--key", m.key, "Toeplitz key, 40..60 bytes of hex (':' separators allowed)")
        ->default_str("Microsoft verification key");
    cmd->add_option("--queues", m.queues, "RX queues; the RETA is filled i % queues")
        ->capture_default_str();
    cmd->add_option("--reta-size", m.reta_size, "RETA entries, a power of two in 4..65536")
        ->capture_default_str();
    cmd->add_option("--iface", m.iface, "use the key and RETA this interface reports (ethtool)");
}

IpAddress parse_ip(const std::string& text, const char* what) {
    auto a = IpAddress::parse(text);
    if (!a) fail(fmt::format("{}: '{}' is not an IPv4 or IPv6 address", what, text));
    return *a;
}

NicModel build_model(const ModelOptions& o) {
    if (!o.iface.empty()) {
        const NicRssInfo info = query_nic(o.iface);
        std::string why;
        auto m = info.model(&why);
        if (!m) fail(why);
        if (!o.key.empty()) {
            auto k = ToeplitzKey::parse_hex(o.key);
            if (!k) fail("--key: expected 40..60 bytes of hex");
            m->key = *k;
        }
        return *m;
    }
    NicModel m;
    if (!o.key.empty()) {
        auto k = ToeplitzKey::parse_hex(o.key);
        if (!k) fail("--key: expected 40..60 bytes of hex");
        m.key = *k;
    }
    try {
        m.reta = Reta::round_robin(o.reta_size, o.queues);
    } catch (const std::invalid_argument& e) {
        fail(e.what());
    }
    return m;
}

std::string join(const std::vector<uint32_t>& v) {
    if (v.empty()) return "none";
    std::string s;
    for (uint32_t q : v) s += (s.empty() ? "" : " ") + std::to_string(q);
    return s;
}

// ---------------------------------------------------------------------------------------------
struct HashOptions {
    ModelOptions model;
    std::string src, dst;
    std::optional<uint16_t> sport, dport;
};

void run_hash(const HashOptions& o) {
    if (o.sport.has_value() != o.dport.has_value())
        fail("give both --sport and --dport, or neither");
    const NicModel m = build_model(o.model);
    const FlowTuple t{parse_ip(o.src, "--src"), parse_ip(o.dst, "--dst"), o.sport.value_or(0),
                      o.dport.value_or(0)};
    if (t.src.family() != t.dst.family()) fail("--src and --dst must be of the same family");
    const uint32_t h = hash_reference(m.key, t, o.sport.has_value());
    fmt::print("0x{:08x}\nindex {}\nqueue {}\n", h, m.reta.index_of(h), m.reta.queue_of_hash(h));
}

// ---------------------------------------------------------------------------------------------
struct PortsOptions {
    ModelOptions model;
    std::string local, remote;
    uint16_t remote_port = 0;
    uint32_t queue = 0;
    std::string range = "32768-60999";
    size_t count = 0;
    bool exclude_in_use = false;
};

struct Prepared {
    IpAddress local, remote;
    PortRange range;
    std::unique_ptr<PortAllocator> allocator;
};

Prepared prepare(const ModelOptions& mo, const std::string& local, const std::string& remote,
                 const std::string& range_text, uint32_t queue, bool shuffle, bool exclude_in_use) {
    Prepared p;
    p.local = parse_ip(local, "--local");
    p.remote = parse_ip(remote, "--remote");
    if (p.local.family() != p.remote.family())
        fail("--local and --remote must be of the same family");
    const auto range = PortRange::parse(range_text);
    if (!range || range->lo == 0)
        fail(fmt::format("--range: expected LO-HI with 1 <= LO <= HI <= 65535"));
    p.range = *range;
    PortAllocator::Config cfg;
    cfg.model = build_model(mo);
    if (queue >= cfg.model.reta.queue_count())
        fail(fmt::format("--queue {} is not in the RETA (queues 0..{})", queue,
                         cfg.model.reta.queue_count() - 1));
    cfg.local = p.local;
    cfg.range = p.range;
    cfg.shuffle = shuffle;
    if (exclude_in_use) cfg.excluded = tcp_ports_in_use(p.local);
    p.allocator = std::make_unique<PortAllocator>(std::move(cfg));
    return p;
}

// Explains an empty pool (rank-deficient key, or a queue the destination cannot reach).
[[noreturn]] void fail_empty_pool(const Prepared& p, const Target& t) {
    const PortMatrix& m = p.allocator->index().matrix();
    const auto reach = reachable_queues(p.allocator->model(), m, t.fixed_hash());
    fail(fmt::format(
        "no port in {}-{} sends replies from {}:{} to queue {} (port matrix rank {}/{}; queues "
        "reachable from this destination: {})",
        p.range.lo, p.range.hi, p.remote.to_string(), t.remote_port(), t.queue(), m.rank(),
        m.rows(), join(reach)));
}

void run_ports(const PortsOptions& o) {
    Prepared p = prepare(o.model, o.local, o.remote, o.range, o.queue, false, o.exclude_in_use);
    const Target t = p.allocator->target(p.remote, o.remote_port, o.queue);
    std::vector<uint16_t> ports;
    p.allocator->pool(t, ports);
    if (ports.empty()) fail_empty_pool(p, t);
    std::sort(ports.begin(), ports.end());
    const size_t n = o.count ? std::min(o.count, ports.size()) : ports.size();
    std::string out;
    for (size_t i = 0; i < n; ++i) out += fmt::format("{}\n", ports[i]);
    fmt::print("{}", out);
}

// ---------------------------------------------------------------------------------------------
struct ConnectCmdOptions {
    ModelOptions model;
    std::string local, remote;
    uint16_t remote_port = 0;
    uint32_t queue = 0;
    std::string range = "32768-60999";
    size_t count = 1;
    double hold = 0;
    bool no_port_range = false;
    bool exclude_in_use = false;
};

void run_connect(const ConnectCmdOptions& o) {
    Prepared p = prepare(o.model, o.local, o.remote, o.range, o.queue, true, o.exclude_in_use);
    Target t = p.allocator->target(p.remote, o.remote_port, o.queue);
    if (p.allocator->pool_size(t) == 0) fail_empty_pool(p, t);
    ConnectOptions copt;
    copt.prefer_local_port_range = !o.no_port_range;
    std::vector<AlignedSocket> conns;
    for (size_t i = 0; i < o.count; ++i) {
        try {
            conns.push_back(connect_aligned(*p.allocator, t, copt));
        } catch (const std::system_error& e) {
            fail(fmt::format("connection {} of {}: {}", i + 1, o.count, e.what()));
        }
        const AlignedSocket& s = conns.back();
        fmt::print("{} {} {} {} queue {} attempts {} {}\n", p.local.to_string(), s.local_port(),
                   p.remote.to_string(), o.remote_port, o.queue, s.attempts(),
                   to_string(s.method()));
    }
    std::fflush(stdout);
    if (o.hold > 0) std::this_thread::sleep_for(std::chrono::duration<double>(o.hold));
}

// ---------------------------------------------------------------------------------------------
struct NicOptions {
    std::string iface;
    std::optional<uint32_t> queues;
};

void print_reta(std::span<const uint32_t> reta) {
    for (size_t i = 0; i < reta.size(); i += 16) {
        std::string row = fmt::format("  {:5}:", i);
        for (size_t j = i; j < std::min(reta.size(), i + 16); ++j)
            row += fmt::format(" {:3}", reta[j]);
        fmt::print("{}\n", row);
    }
}

void print_checks(const NicModel& m) {
    for (Family f : {Family::kV4, Family::kV6}) {
        const Reachability r = analyze_reachability(m, f);
        const char* fam = f == Family::kV4 ? "IPv4" : "IPv6";
        const bool ok = r.rank == r.r;
        fmt::print("check: {} local-port matrix rank {}/{}: {}\n", fam, r.rank, r.r,
                   ok ? "ok, every RETA index is reachable by the port alone"
                      : fmt::format("DEFICIENT, a port reaches only {} of {} RETA indices per "
                                    "destination",
                                    r.reachable_indices, size_t{1} << r.r));
        fmt::print("       queues reachable from every destination: {}\n", join(r.always));
        if (!r.sometimes.empty())
            fmt::print("       queues reachable from some destinations only: {}\n",
                       join(r.sometimes));
        if (!r.never.empty()) fmt::print("       queues without a RETA entry: {}\n", join(r.never));
    }
}

void run_nic(const NicOptions& o) {
    const NicRssInfo info = query_nic(o.iface);
    fmt::print("interface {}\n", info.ifname);
    if (info.rx_rings)
        fmt::print("rx rings  {}\n", info.rx_rings);
    else
        fmt::print("rx rings  unknown ({})\n", info.rx_rings_error);

    std::string why;
    auto model = info.model(&why);
    if (info.has_rxfh) {
        fmt::print("hfunc     {} (0x{:x})\n",
                   info.hfunc_is_toeplitz() ? "toeplitz" : "not toeplitz", info.hfunc);
        fmt::print("key       {} ({} bytes)\n", fmt::format("{:02x}", fmt::join(info.key, ":")),
                   info.key.size());
        fmt::print("reta      {} entries\n", info.reta.size());
        print_reta(info.reta);
    }
    for (auto [name, fields] :
         {std::pair{"tcp4", info.tcp4_fields}, std::pair{"tcp6", info.tcp6_fields}}) {
        if (fields)
            fmt::print("{} hash {}\n", name, describe_hash_fields(*fields));
        else
            fmt::print("{} hash not reported ({})\n", name, std::strerror(info.rxfh_fields_errno));
    }

    if (!model) {
        const uint32_t queues = o.queues.value_or(info.rx_rings ? info.rx_rings : 8);
        fmt::print(
            "{}; using the default model: Microsoft key, RETA of 128 entries filled i % {}\n", why,
            queues);
        model = NicModel::make_default(queues);
    } else {
        fmt::print("check: hash function is Toeplitz: {}\n",
                   info.hfunc_is_toeplitz() ? "ok" : "NO, port alignment cannot work");
    }
    for (auto [name, fields] :
         {std::pair{"tcp4", info.tcp4_fields}, std::pair{"tcp6", info.tcp6_fields}}) {
        if (fields)
            fmt::print(
                "check: {} hash includes the ports: {}\n", name,
                NicRssInfo::ports_hashed(*fields) ? "ok" : "NO, the port cannot steer the flow");
        else
            fmt::print("check: {} hash fields unknown\n", name);
    }
    print_checks(*model);
}

}  // namespace

void add_rss_commands(CLI::App& app) {
    auto* rss = app.add_subcommand("rss", "RSS: Toeplitz hash, RX-queue-aligned local ports");
    rss->require_subcommand(1);

    {
        auto o = std::make_shared<HashOptions>();
        auto* cmd = rss->add_subcommand(
            "hash",
            "Toeplitz hash (bit-serial reference) of a received packet's tuple, RETA index, queue");
        cmd->add_option("--src", o->src, "source address of the received packet")->required();
        cmd->add_option("--dst", o->dst, "destination address of the received packet")->required();
        cmd->add_option("--sport", o->sport, "source port (with --dport: hash includes ports)");
        cmd->add_option("--dport", o->dport, "destination port");
        add_model_options(cmd, o->model);
        cmd->callback([o] { run_hash(*o); });
    }
    {
        auto o = std::make_shared<PortsOptions>();
        auto* cmd = rss->add_subcommand(
            "ports",
            "Local ports whose reply traffic from REMOTE:PORT lands on queue Q, ascending");
        cmd->add_option("--local", o->local, "local address of the outgoing connection")
            ->required();
        cmd->add_option("--remote", o->remote, "server address")->required();
        cmd->add_option("--remote-port", o->remote_port, "server port")->required();
        cmd->add_option("--queue", o->queue, "wanted RX queue")->required();
        cmd->add_option("--range", o->range, "local port range LO-HI")->capture_default_str();
        cmd->add_flag("--exclude-in-use", o->exclude_in_use,
                      "leave out ports of TCP sockets already bound to LOCAL (/proc/net/tcp)");
        cmd->add_option("--count", o->count, "print at most this many (0 = all)")
            ->capture_default_str();
        add_model_options(cmd, o->model);
        cmd->callback([o] { run_ports(*o); });
    }
    {
        auto o = std::make_shared<ConnectCmdOptions>();
        auto* cmd = rss->add_subcommand(
            "connect", "Open TCP connections from aligned local ports; print each 4-tuple");
        cmd->add_option("--local", o->local, "local address to connect from")->required();
        cmd->add_option("--remote", o->remote, "server address")->required();
        cmd->add_option("--remote-port", o->remote_port, "server port")->required();
        cmd->add_option("--queue", o->queue, "wanted RX queue")->required();
        cmd->add_option("--range", o->range, "local port range LO-HI")->capture_default_str();
        cmd->add_option("--count", o->count, "connections to open")->capture_default_str();
        cmd->add_option("--hold", o->hold, "seconds to keep the connections open")
            ->capture_default_str();
        cmd->add_flag("--exclude-in-use", o->exclude_in_use,
                      "leave out ports of TCP sockets already bound to LOCAL (/proc/net/tcp)");
        cmd->add_flag("--no-port-range", o->no_port_range,
                      "bind with SO_REUSEADDR instead of IP_LOCAL_PORT_RANGE");
        add_model_options(cmd, o->model);
        cmd->callback([o] { run_connect(*o); });
    }
    {
        auto o = std::make_shared<NicOptions>();
        auto* cmd = rss->add_subcommand(
            "nic", "Show an interface's RSS key, RETA, hash function and the alignment checks");
        cmd->add_option("iface", o->iface, "interface name")->required();
        cmd->add_option("--queues", o->queues,
                        "queues for the default model when the NIC has no RETA");
        cmd->callback([o] { run_nic(*o); });
    }
}

}  // namespace shunt::cli
