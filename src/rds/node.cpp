// The Node API (shunt/rds.hpp): starting a node (lane listener, epoll, I/O thread), closing it
// gracefully, and the test hooks; plus the few NodeState helpers every part uses.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "core/random.hpp"
#include "lo/rundir.hpp"
#include "rds/node_state.hpp"
#include "rds/node_util.hpp"

namespace shunt::rds {

void NodeState::log(const std::string& line) const {
    if (opt.log)
        opt.log(line);
    else
        fmt::print(stderr, "shunt rds {}: {}\n", Endpoint{ip, 0}.ip_string(), line);
}

void NodeState::wake() {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd.get(), &one, sizeof one);
}

Peer& NodeState::peer_for(uint32_t peer_ip) {
    auto it = peers.find(peer_ip);
    if (it != peers.end()) return *it->second;
    auto p = std::make_unique<Peer>(peer_ip, opt.lanes, policy);
    p->stats.ip = ip_str(peer_ip);
    p->lanes.resize(opt.lanes);
    for (uint16_t i = 0; i < opt.lanes; ++i) {
        p->lanes[i].index = i;
        p->lanes[i].stats.index = i;
        p->lanes[i].backoff = opt.reconnect_min;
    }
    return *peers.emplace(peer_ip, std::move(p)).first->second;
}

Node::Node(std::shared_ptr<NodeState> s) : s_(std::move(s)) {}

std::unique_ptr<Node> Node::start(NodeOptions options) {
    auto s = std::make_shared<NodeState>();
    auto ep = Endpoint::parse(options.ip, 0);
    if (!ep) throw std::system_error(EINVAL, std::generic_category(), "rds: bad IPv4 address " + options.ip);
    if (options.lanes < 1 || options.lanes > kMaxLanes)
        throw std::system_error(EINVAL, std::generic_category(), "rds: lanes must be 1..255");
    s->ip = ep->ip;
    s->opt = std::move(options);
    s->policy = s->opt.hash_placement ? PlacementPolicy::Hash : PlacementPolicy::LeastLoaded;
    do s->incarnation = random_u64();
    while (s->incarnation == 0);
    s->rbuf.resize(kReadChunk);

    const rss::IpAddress local = *rss::IpAddress::parse(s->opt.ip);
    LanePorts::Config pc;
    pc.local = local;
    if (!s->opt.lane_ports.empty()) {
        pc.range = rss::PortRange::parse(s->opt.lane_ports);
        if (!pc.range) throw std::system_error(EINVAL, std::generic_category(), "rds: bad lane port range " + s->opt.lane_ports);
    }
    pc.model = nic_model_for(local, s->opt.nic, &pc.model_source);
    if (s->opt.peer_queues) pc.peer_model = rss::NicModel::make_default(s->opt.peer_queues);
    s->ports = std::make_unique<LanePorts>(std::move(pc));

    if (s->opt.listen) {
        s->listen_fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!s->listen_fd) throw_errno("socket");
        const int one = 1;
        ::setsockopt(s->listen_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(s->opt.lane_port);
        sa.sin_addr.s_addr = htonl(s->ip);
        if (::bind(s->listen_fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
            throw std::system_error(errno, std::generic_category(), fmt::format("rds: bind lane listener {}:{}", s->opt.ip, s->opt.lane_port));
        if (::listen(s->listen_fd.get(), 256) < 0) throw_errno("listen");
    }
    s->epfd.reset(::epoll_create1(EPOLL_CLOEXEC));
    s->wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!s->epfd || !s->wake_fd) throw_errno("epoll/eventfd");
    auto add = [&](int fd, uint64_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (::epoll_ctl(s->epfd.get(), EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl");
    };
    if (s->listen_fd) add(s->listen_fd.get(), kTagListen);
    add(s->wake_fd.get(), kTagWake);
    if (s->opt.state_dir != "-") {
        s->info_path = publish_path(s->opt.state_dir, s->opt.ip, s->opt.lane_port);
        s->info_fd = listen_info(s->info_path);
        if (s->info_fd) add(s->info_fd.get(), kTagInfo);
    }
    s->io = std::thread([st = s.get()] { st->run(); });
    return std::unique_ptr<Node>(new Node(std::move(s)));
}

void Node::close(std::chrono::milliseconds linger_for) {
    {
        std::lock_guard lk(s_->mu);
        if (!s_->closing && !s_->stopped && !s_->close_requested) {
            // The I/O thread flushes the acks owed and half-closes the lanes (begin_close): it
            // is the only writer of lanes.
            s_->close_requested = true;
            s_->close_linger = linger_for;
        }
        s_->wake();
    }
    if (s_->io.joinable()) s_->io.join();
    std::lock_guard lk(s_->mu);
    s_->stopped = true;
    for (auto& [pip, p] : s_->peers)
        for (Lane& l : p->lanes) l.conn.reset();
    s_->pending.clear();
    s_->graveyard.clear();
    for (auto& [port, sock] : s_->sockets) sock->cv.notify_all();
    if (!s_->info_path.empty()) ::unlink(s_->info_path.c_str());
    s_->info_fd.reset();
}

Node::~Node() { close(); }

uint64_t Node::incarnation() const { return s_->incarnation; }

bool Node::reset_lane(uint32_t peer_ip, int lane) {
    std::lock_guard lk(s_->mu);
    auto it = s_->peers.find(peer_ip);
    if (it == s_->peers.end() || s_->closing) return false;
    Peer& p = *it->second;
    std::vector<uint16_t> up;
    for (uint16_t i = 0; i < p.nlanes; ++i)
        if (p.lanes[i].conn && p.lanes[i].conn->state == Conn::State::Up && (lane < 0 || lane == i)) up.push_back(i);
    if (up.empty()) return false;
    const uint16_t pick = up[quick_random_u64() % up.size()];
    Lane& l = p.lanes[pick];
    linger lg{1, 0};
    ::setsockopt(l.conn->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    s_->lane_failed(p, l, "reset on request", false);
    s_->wake();
    return true;
}

bool Node::inject(uint32_t peer_ip, uint16_t lane, std::span<const uint8_t> bytes) {
    std::lock_guard lk(s_->mu);
    auto it = s_->peers.find(peer_ip);
    if (it == s_->peers.end() || lane >= it->second->nlanes) return false;
    Peer& p = *it->second;
    Lane& l = p.lanes[lane];
    if (!l.conn || l.conn->state != Conn::State::Up || bytes.empty()) return false;
    // Queued like a control frame, so it lands between whole frames in the lane's one writer.
    ControlFrame raw;
    raw.raw.assign(bytes.begin(), bytes.end());
    l.control.push_back(std::move(raw));
    s_->flush(p, l);
    return true;
}

bool Node::fault(uint32_t peer_ip, uint16_t lane) {
    std::lock_guard lk(s_->mu);
    auto it = s_->peers.find(peer_ip);
    if (it == s_->peers.end() || lane >= it->second->nlanes) return false;
    Lane& l = it->second->lanes[lane];
    if (!l.conn || l.conn->state != Conn::State::Up) return false;
    l.fault = true;
    return true;
}

}  // namespace shunt::rds
