// What a node reports about itself (Node::info, `shunt rds info`): peers, lanes and their
// connections, RX queues, unacked messages and retransmits, as rds-info reports the kernel's
// connections. A running node publishes it on a UNIX socket in <rundir>/rds/ named
// "<ip>:<lane port>@<netns>.sock": each connection gets one JSON document. The namespace is in
// the name because test hosts in different namespaces may share an address.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lo/rundir.hpp"
#include "rds/node_state.hpp"

namespace shunt::rds {

uint64_t netns_id() {
    struct stat st{};
    return ::stat("/proc/self/ns/net", &st) < 0 ? 0 : static_cast<uint64_t>(st.st_ino);
}

std::string publish_dir(const std::string& dir) {
    const std::string base = dir.empty() ? lo::Rundir::default_path() : dir;
    ::mkdir(base.c_str(), 0700);
    const std::string d = base + "/rds";
    ::mkdir(d.c_str(), 0700);
    return d;
}

std::string publish_path(const std::string& dir, const std::string& ip, uint16_t lane_port) {
    return fmt::format("{}/{}:{}@{}.sock", publish_dir(dir), ip, lane_port, netns_id());
}

UniqueFd listen_info(const std::string& path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) return {};
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return {};
    ::unlink(path.c_str());  // a stale one from a node that died
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(fd.get(), 16) < 0) return {};
    return fd;
}

NodeInfo NodeState::snapshot() const {
    NodeInfo info;
    info.ip = opt.ip;
    info.lane_port = opt.lane_port;
    info.incarnation = incarnation;
    info.lanes = opt.lanes;
    info.placement = policy == PlacementPolicy::Hash ? "hash(src port, dst ip, dst port)" : "least-loaded, sticky while unacked";
    info.lane_ports = ports ? ports->describe() : "";
    for (const auto& [port, s] : sockets) info.sockets.push_back(port);
    for (const auto& [pip, p] : peers) {
        PeerInfo pi = p->stats;
        pi.lanes = p->nlanes;
        for (uint16_t i = 0; i < std::max<uint16_t>(p->nlanes, 1); ++i) {
            const Lane& l = p->lanes[i];
            LaneInfo li = l.stats;
            li.index = i;
            const Conn* c = l.conn.get();
            li.state = !c ? "down"
                       : c->state == Conn::State::Up ? "up"
                       : c->state == Conn::State::Connecting ? "connecting"
                                                             : "hello";
            if (c) {
                li.opened_here = c->outgoing;
                li.local_port = c->local_port;
                li.remote_port = c->remote_port;
                li.rx_queue = c->queue;
                li.peer_rx_queue = c->peer_queue;
            }
            li.unacked = l.sender.unacked_messages();
            li.queued_bytes = l.sender.queued_bytes();
            for (const ControlFrame& cf : l.control) li.control_bytes += cf.raw.empty() ? kHeaderLen + cf.payload.size() : cf.raw.size();
            li.pairs = i < p->placement.lanes() ? p->placement.active_pairs(i) : 0;
            pi.lane.push_back(std::move(li));
        }
        info.peers.push_back(std::move(pi));
    }
    return info;
}

void NodeState::on_info() {
    while (true) {
        UniqueFd c(::accept4(info_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        const std::string doc = to_json(snapshot());
        size_t off = 0;
        while (off < doc.size()) {
            const ssize_t n = ::send(c.get(), doc.data() + off, doc.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<size_t>(n);
        }
    }
}

NodeInfo Node::info() const {
    std::lock_guard lk(s_->mu);
    return s_->snapshot();
}

std::string to_json(const NodeInfo& info) {
    nlohmann::json j;
    j["ip"] = info.ip;
    j["lane_port"] = info.lane_port;
    j["incarnation"] = fmt::format("{:016x}", info.incarnation);
    j["lanes"] = info.lanes;
    j["placement"] = info.placement;
    j["lane_ports"] = info.lane_ports;
    j["sockets"] = info.sockets;
    j["peers"] = nlohmann::json::array();
    for (const PeerInfo& p : info.peers) {
        nlohmann::json pj{{"ip", p.ip},
                          {"incarnation", fmt::format("{:016x}", p.incarnation)},
                          {"lanes", p.lanes},
                          {"restarts", p.restarts},
                          {"failed", p.failed},
                          {"duplicates", p.duplicates},
                          {"unreachable", p.unreachable},
                          {"pings_dropped", p.pings_dropped}};
        pj["lane"] = nlohmann::json::array();
        for (const LaneInfo& l : p.lane)
            pj["lane"].push_back({{"index", l.index},
                                  {"state", l.state},
                                  {"opened_here", l.opened_here},
                                  {"local_port", l.local_port},
                                  {"remote_port", l.remote_port},
                                  {"rx_queue", l.rx_queue},
                                  {"peer_rx_queue", l.peer_rx_queue},
                                  {"tx_frames", l.tx_frames},
                                  {"rx_frames", l.rx_frames},
                                  {"tx_bytes", l.tx_bytes},
                                  {"rx_bytes", l.rx_bytes},
                                  {"retransmits", l.retransmits},
                                  {"connects", l.connects},
                                  {"failures", l.failures},
                                  {"unacked", l.unacked},
                                  {"queued_bytes", l.queued_bytes},
                                  {"control_bytes", l.control_bytes},
                                  {"pairs", l.pairs}});
        j["peers"].push_back(std::move(pj));
    }
    return j.dump(2);
}

}  // namespace shunt::rds
