// Socket calls from application threads (shunt/rds.hpp): send admits a message only with room
// in the socket's send buffer (EAGAIN) and credit at the destination socket (ENOBUFS), then
// queues it on the pair's lane for the I/O thread to write; recv hands out whole
// messages and failure reports, and when it frees receive buffer it returns credit to the
// senders that were told they were short (the replacement for RDS's congestion map updates).
#include <arpa/inet.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <charconv>
#include <system_error>

#include <fmt/format.h>

#include "rds/node_state.hpp"

namespace shunt::rds {

std::optional<Endpoint> Endpoint::parse(std::string_view ip, uint16_t port) {
    in_addr a{};
    const std::string s(ip);
    if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
    return Endpoint{ntohl(a.s_addr), port};
}

std::optional<Endpoint> Endpoint::parse(std::string_view ip_port) {
    const auto colon = ip_port.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto ps = ip_port.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (ec != std::errc{} || end != ps.data() + ps.size() || port > 65535 || ps.empty()) return std::nullopt;
    return parse(ip_port.substr(0, colon), static_cast<uint16_t>(port));
}

std::string Endpoint::ip_string() const {
    return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

std::string Endpoint::to_string() const { return fmt::format("{}:{}", ip_string(), port); }

Socket::Socket(std::shared_ptr<NodeState> node, std::shared_ptr<SocketState> s) : node_(std::move(node)), s_(std::move(s)) {}

Socket::~Socket() {
    std::lock_guard lk(node_->mu);
    s_->closed = true;
    auto it = node_->sockets.find(s_->port);
    if (it != node_->sockets.end() && it->second == s_) node_->sockets.erase(it);
    node_->wake_senders_to({node_->ip, s_->port});  // they are refused now instead
}

Endpoint Socket::local() const { return {node_->ip, s_->port}; }
int Socket::fd() const { return s_->efd.get(); }

void Socket::set_nonblocking(bool on) {
    std::lock_guard lk(node_->mu);
    s_->nonblocking = on;
}

void Socket::set_timeout(std::chrono::milliseconds t) {
    std::lock_guard lk(node_->mu);
    s_->timeout = t;
}

int Socket::send(const Endpoint& to, std::span<const uint8_t> data, uint64_t* id) {
    if (data.size() > kMaxMessageSize) return EMSGSIZE;
    if (to.ip == 0) return EINVAL;
    NodeState& n = *node_;
    SocketState& s = *s_;
    std::unique_lock lk(n.mu);
    if (n.closing || n.stopped || s.closed) return ENOTCONN;
    if (to.port == 0) {  // rds-ping: the peer node answers with a Pong carrying the payload
        if (data.size() > kMaxFragment) return EMSGSIZE;
        ControlFrame ping;
        ping.frame.kind = Kind::Ping;
        ping.frame.sport = s.port;
        ping.frame.len = static_cast<uint32_t>(data.size());
        ping.payload.assign(data.begin(), data.end());
        n.queue_control(n.peer_for(to.ip), -1, std::move(ping));
        return 0;
    }
    const auto deadline = s.timeout.count() > 0 ? Clock::now() + s.timeout : Clock::time_point::max();
    while (!n.can_send(s, to, data.size())) {
        const int err = s.tx_bytes > 0 && s.tx_bytes + data.size() > n.opt.sndbuf ? EAGAIN : ENOBUFS;
        // Waiting for room, blocking or not: whatever makes room (acks of any socket's messages
        // to that destination, a window update, a local reader) notifies the blocked sockets,
        // which wakes a blocking one's wait and makes a non-blocking one's fd readable.
        s.blocked = true;
        s.blocked_dest = to;
        s.blocked_size = data.size();
        if (s.nonblocking) {
            n.notify(s);
            return err;
        }
        if (deadline == Clock::time_point::max())
            s.cv.wait(lk);
        else if (s.cv.wait_until(lk, deadline) == std::cv_status::timeout && !n.can_send(s, to, data.size()))
            return ETIMEDOUT;
        if (n.closing || n.stopped || s.closed) return ENOTCONN;
    }
    s.blocked = false;
    const uint64_t my_id = s.next_id++;
    if (id) *id = my_id;
    // The one copy of the payload: into a (reused) buffer the lane writes from.
    std::shared_ptr<std::vector<uint8_t>> buf = n.take_buffer(data.size());
    buf->assign(data.begin(), data.end());
    std::shared_ptr<const std::vector<uint8_t>> payload = std::move(buf);
    if (to.ip == n.ip) {
        // Same node: straight to the socket, as RDS's loop transport does.
        auto it = n.sockets.find(to.port);
        if (it == n.sockets.end()) {
            Message m;
            m.pair = {s.port, to.port};
            m.id = my_id;
            n.fail_to_sender(m, n.ip, ECONNREFUSED);
        } else {
            Event e;
            e.peer = {n.ip, s.port};
            e.payload = std::move(payload);
            it->second->rx_bytes += data.size();
            it->second->rxq.push_back(std::move(e));
            n.notify(*it->second);
        }
        n.notify(s);
        return 0;
    }
    Peer& p = n.peer_for(to.ip);
    Message m;
    m.pair = {s.port, to.port};
    m.seq = ++p.next_seq[m.pair];
    m.id = my_id;
    m.data = std::move(payload);
    s.tx_bytes += data.size();
    p.credit[to.port].unacked += data.size();
    n.enqueue(p, std::move(m));
    n.notify(s);
    return 0;
}

int Socket::recv(Event& out) {
    NodeState& n = *node_;
    SocketState& s = *s_;
    std::unique_lock lk(n.mu);
    const auto deadline = s.timeout.count() > 0 ? Clock::now() + s.timeout : Clock::time_point::max();
    while (s.rxq.empty()) {
        if (s.nonblocking) return EAGAIN;
        if (n.stopped || s.closed) return ENOTCONN;
        if (deadline == Clock::time_point::max())
            s.cv.wait(lk);
        else if (s.cv.wait_until(lk, deadline) == std::cv_status::timeout && s.rxq.empty())
            return ETIMEDOUT;
    }
    out = std::move(s.rxq.front());
    s.rxq.pop_front();
    if (out.type == Event::Type::Message && out.peer.port != 0) {
        s.rx_bytes -= std::min(s.rx_bytes, out.data().size());
        n.wake_senders_to({n.ip, s.port});  // local senders wait on this queue directly
    }
    if (!s.starved.empty() && s.rx_bytes < n.opt.rcvbuf / 2) {
        std::set<uint32_t> peers;
        for (const auto& [pip, pair] : s.starved) peers.insert(pip);
        for (uint32_t pip : peers) {
            auto it = n.peers.find(pip);
            if (it != n.peers.end()) n.send_window_updates(*it->second);
        }
    }
    n.notify(s);
    return 0;
}

std::unique_ptr<Socket> Node::bind(uint16_t port) {
    std::lock_guard lk(s_->mu);
    if (port == 0) {
        for (int i = 0; i < 16384 && (port == 0 || s_->sockets.count(port)); ++i) {
            port = s_->next_ephemeral;
            s_->next_ephemeral = static_cast<uint16_t>(s_->next_ephemeral == 65535 ? 49152 : s_->next_ephemeral + 1);
        }
    }
    if (s_->sockets.count(port))
        throw std::system_error(EADDRINUSE, std::generic_category(), fmt::format("rds: bind port {}", port));
    auto st = std::make_shared<SocketState>();
    st->port = port;
    st->efd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!st->efd) throw std::system_error(errno, std::generic_category(), "eventfd");
    s_->sockets[port] = st;
    return std::unique_ptr<Socket>(new Socket(s_, std::move(st)));
}

}  // namespace shunt::rds
