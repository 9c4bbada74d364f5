// `shunt rds`: tools for reliable datagrams over N TCP lanes (rds-tools counterparts):
//   stress  the rds-stress workload (rds_stress.cpp)
//   ping    rds-ping: zero-copy-free pings to port 0 of a host, answered by its node
//   info    rds-info: the nodes running on this host (this network namespace), their peers,
//           lanes, RX queues, unacked messages and retransmits, read from each node's UNIX
//           socket in <rundir>/rds/
#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/rds_stress.hpp"
#include "core/unique_fd.hpp"
#include "rds/node_state.hpp"
#include "shunt/rds.hpp"

namespace shunt::cli {
namespace {

using namespace shunt::rds;
using namespace std::chrono_literals;

struct PingOptions {
    std::string local, peer;
    int count = 5;
    double interval = 1.0;
    uint16_t lane_port = kDefaultLanePort;
    size_t size = 8;
};

int ping(const PingOptions& o) {
    NodeOptions no;
    no.ip = o.local;
    no.lane_port = o.lane_port;
    no.lanes = 1;
    no.state_dir = "-";
    no.listen = false;
    auto node = Node::start(no);
    auto s = node->bind(0);
    const auto peer = Endpoint::parse(o.peer, 0);
    if (!peer) throw std::invalid_argument("bad peer address " + o.peer);
    s->set_timeout(std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, o.interval) * 1000 + 1000)));
    int got = 0;
    for (int i = 0; i < o.count; ++i) {
        std::vector<uint8_t> payload(std::max<size_t>(o.size, 16));
        const auto t0 = std::chrono::steady_clock::now();
        const int64_t stamp = t0.time_since_epoch().count();
        std::memcpy(payload.data(), &stamp, 8);
        std::memcpy(payload.data() + 8, &i, sizeof i);
        if (int err = s->send(*peer, payload)) throw std::system_error(err, std::generic_category(), "send ping");
        Event e;
        while (true) {
            if (s->recv(e) != 0) {
                fmt::print("{}: no reply from {}\n", i + 1, o.peer);
                break;
            }
            int64_t back = 0;
            if (e.peer.port != 0 || e.data().size() < 16) continue;
            std::memcpy(&back, e.data().data(), 8);
            if (back != stamp) continue;
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
            fmt::print("{:>4}: {} usec\n", i + 1, us);
            ++got;
            break;
        }
        if (i + 1 < o.count) std::this_thread::sleep_for(std::chrono::duration<double>(o.interval));
    }
    return got == o.count ? 0 : 1;
}

std::string fetch(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) return {};
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return {};
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
}

int info(const std::string& dir, bool json, bool all) {
    const std::string d = publish_dir(dir);
    const std::string mine = fmt::format("@{}.sock", netns_id());
    DIR* dp = ::opendir(d.c_str());
    if (!dp) throw std::system_error(errno, std::generic_category(), "opendir " + d);
    std::vector<std::string> docs;
    while (dirent* de = ::readdir(dp)) {
        const std::string name = de->d_name;
        if (name.size() < 5 || name.substr(name.size() - 5) != ".sock") continue;
        if (!all && (name.size() < mine.size() || name.substr(name.size() - mine.size()) != mine)) continue;
        std::string doc = fetch(d + "/" + name);
        if (!doc.empty()) docs.push_back(std::move(doc));
    }
    ::closedir(dp);
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& doc : docs) arr.push_back(nlohmann::json::parse(doc));
        fmt::print("{}\n", arr.dump(2));
        return 0;
    }
    if (docs.empty()) fmt::print("no shunt rds node in this network namespace ({})\n", d);
    for (const auto& doc : docs) {
        const auto j = nlohmann::json::parse(doc);
        fmt::print("node {}  lane port {}  incarnation {}  lanes {}\n", j["ip"].get<std::string>(), j["lane_port"].get<int>(),
                   j["incarnation"].get<std::string>(), j["lanes"].get<int>());
        fmt::print("  placement: {}\n  lane ports: {}\n  sockets: {}\n", j["placement"].get<std::string>(),
                   j["lane_ports"].get<std::string>(), j["sockets"].dump());
        for (const auto& p : j["peers"]) {
            fmt::print("  peer {}  incarnation {}  lanes {}  restarts {}  failed {}  duplicates {}  unreachable {}\n",
                       p["ip"].get<std::string>(), p["incarnation"].get<std::string>(), p["lanes"].get<int>(),
                       p["restarts"].get<uint64_t>(), p["failed"].get<uint64_t>(), p["duplicates"].get<uint64_t>(),
                       p["unreachable"].get<uint64_t>());
            fmt::print("    {:>4} {:>10} {:>6} {:>6} {:>6} {:>9} {:>10} {:>10} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8}\n", "lane", "state",
                       "opener", "lport", "rport", "rxq/peer", "tx frames", "rx frames", "tx MB", "rx MB", "unacked", "pairs",
                       "retrans", "failures");
            for (const auto& l : p["lane"])
                fmt::print("    {:>4} {:>10} {:>6} {:>6} {:>6} {:>9} {:>10} {:>10} {:>8.1f} {:>8.1f} {:>7} {:>7} {:>8} {:>8}\n",
                           l["index"].get<int>(), l["state"].get<std::string>(),
                           l["state"] == "down" ? "-" : l["opened_here"].get<bool>() ? "here" : "peer",
                           l["local_port"].get<int>(), l["remote_port"].get<int>(),
                           fmt::format("{}/{}", l["rx_queue"].get<int>() < 0 ? std::string("-") : std::to_string(l["rx_queue"].get<int>()),
                                       l["peer_rx_queue"].get<int>() < 0 ? std::string("-") : std::to_string(l["peer_rx_queue"].get<int>())),
                           l["tx_frames"].get<uint64_t>(), l["rx_frames"].get<uint64_t>(), l["tx_bytes"].get<uint64_t>() / 1e6,
                           l["rx_bytes"].get<uint64_t>() / 1e6, l["unacked"].get<uint64_t>(), l["pairs"].get<uint64_t>(),
                           l["retransmits"].get<uint64_t>(), l["failures"].get<uint64_t>());
        }
    }
    return 0;
}

}  // namespace

void add_rds_commands(CLI::App& app) {
    auto* rds = app.add_subcommand("rds", "reliable datagrams over N TCP lanes per peer (multipath RDS)");
    rds->require_subcommand(1);
    add_rds_stress(*rds);

    auto po = std::make_shared<PingOptions>();
    auto* p = rds->add_subcommand("ping", "ping a host's rds node (port 0), like rds-ping");
    p->add_option("peer", po->peer, "address of the host to ping")->required();
    p->add_option("-I,--local", po->local, "local address to send from (no other node may use it)")->required();
    p->add_option("-c,--count", po->count, "pings to send")->capture_default_str();
    p->add_option("-i,--interval", po->interval, "seconds between pings")->capture_default_str();
    p->add_option("-s,--size", po->size, "payload bytes (at least 16)")->capture_default_str();
    p->add_option("--lane-port", po->lane_port, "TCP port the peer accepts lanes on")->capture_default_str();
    p->callback([po] {
        if (const int rc = ping(*po)) throw CLI::RuntimeError(rc);
    });

    auto dir = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto all = std::make_shared<bool>(false);
    auto* i = rds->add_subcommand("info", "nodes, peers, lanes, queues and retransmits, like rds-info");
    i->add_option("--dir", *dir, "rundir the nodes publish in (default: the shunt rundir)");
    i->add_flag("--json", *json, "print JSON");
    i->add_flag("--all", *all, "nodes of every network namespace, not only this one");
    i->callback([dir, json, all] { info(*dir, *json, *all); });
}

}  // namespace shunt::cli
