// Events on the I/O thread: accepted connections, connects completing, bytes arriving (parsed
// into frames), and what each frame does: HELLO matching, data delivery (acked only once queued
// to the receiving socket), acks, unreachable reports, pings.
//
// Lanes are matched by HELLO (lane index, lane count, incarnation), never by arrival order or
// source port; either side may open a lane, and when both do at once the connection opened by
// the lower IP wins on both sides. An opener sends data only after the peer's HELLO came back,
// so no frame of the old sequence space reaches a restarted peer. A malformed frame, a sequence
// gap or an ack of something never sent closes that one lane with a logged error; the sender
// side retransmits and nothing else is disturbed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "rds/node_state.hpp"
#include "rds/node_util.hpp"

namespace shunt::rds {

void NodeState::on_accept() {
    while (true) {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        const int fd = ::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&a), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        auto c = std::make_unique<Conn>();
        c->sock.fd.reset(fd);
        c->remote_ip = ntohl(a.sin_addr.s_addr);
        c->remote_port = ntohs(a.sin_port);
        c->local_port = opt.lane_port;
        c->state = Conn::State::Pending;
        if (closing) continue;  // closes it
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = c.get();
        if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd, &ev) < 0) continue;
        pending.push_back(std::move(c));
    }
}

void NodeState::on_event(Conn* c, uint32_t events, Lock& lk) {
    if (c->dead) return;
    if (c->state == Conn::State::Connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        on_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, lk);
    if (c->dead) return;
    if ((events & EPOLLOUT) && c->peer && c->lane >= 0 && c->state == Conn::State::Up) {
        // The kernel has room again: the rest of the batch goes out with the lane's next write.
        c->want_out = false;
        set_events(c);
        flush(*c->peer, c->peer->lanes[static_cast<size_t>(c->lane)]);
    } else if ((events & EPOLLOUT) && c->state == Conn::State::HelloWait) {
        write_out(c);
    }
}

void NodeState::on_connected(Conn* c) {
    Peer& p = *c->peer;
    Lane& l = p.lanes[static_cast<size_t>(c->lane)];
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        close_conn(c);
        schedule(p, l, false);
        return;
    }
    c->state = Conn::State::HelloWait;
    Frame h;
    h.kind = Kind::Hello;
    h.hello = {l.index, opt.lanes, incarnation};
    append_frame(c->out, h);
    c->want_out = true;  // forces set_events to drop EPOLLOUT if the HELLO goes out at once
    write_out(c);
    set_events(c);
}

void NodeState::on_readable(Conn* c, Lock& lk) {
    // Everything available is read (a full buffer means there may be more), each chunk without
    // the lock; the acks owed for all of it go out together.
    Peer* p = nullptr;
    while (true) {
        lk.unlock();
        const ssize_t n = ::recv(c->fd(), rbuf.data(), rbuf.size(), MSG_DONTWAIT);
        const int err = errno;
        lk.lock();
        if (c->dead) break;
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) break;
        if (n <= 0) {
            const std::string why = n == 0 ? "closed by peer" : std::strerror(err);
            if (c->peer && c->lane >= 0 && c->peer->lanes[static_cast<size_t>(c->lane)].conn.get() == c)
                lane_failed(*c->peer, c->peer->lanes[static_cast<size_t>(c->lane)], why, false);
            else
                close_conn(c);
            break;
        }
        if (closing) continue;  // draining: frames are dropped unacked, the sender keeps them
        auto ferr = c->reader.feed(std::span<const uint8_t>(rbuf.data(), static_cast<size_t>(n)),
                                   [&](const Frame& f, std::span<const uint8_t> payload) {
                                       if (!c->dead) on_frame(c, f, payload);
                                   });
        p = c->peer;
        if (ferr && !c->dead) protocol_error(c, fmt::format("malformed frame: {}", to_string(*ferr)));
        if (c->dead || static_cast<size_t>(n) < rbuf.size()) break;
    }
    if (p) flush_acks(*p);
}

void NodeState::on_frame(Conn* c, const Frame& f, std::span<const uint8_t> payload) {
    if (c->state != Conn::State::Up) {
        if (f.kind != Kind::Hello) return protocol_error(c, "first frame is not a HELLO");
        return on_hello(c, f.hello);
    }
    Peer& p = *c->peer;
    Lane& l = p.lanes[static_cast<size_t>(c->lane)];
    ++l.stats.rx_frames;
    if (l.fault) {
        l.fault = false;
        throw std::runtime_error("fault injected on request");
    }
    switch (f.kind) {
        case Kind::Hello: return protocol_error(c, "second HELLO on a lane");
        case Kind::Data:
            l.stats.rx_bytes += f.len;
            return on_data(c, p, f, payload);
        case Kind::Ack: return on_ack(c, p, f);
        case Kind::Unreachable: {
            const PairKey pair{f.dport, f.sport};
            const int lane = p.placement.lane_of(pair);
            if (lane < 0) return protocol_error(c, "unreachable report for a pair never sent");
            const Message* m = p.lanes[static_cast<size_t>(lane)].sender.find(pair, f.sequence);
            if (!m) return;  // acked already: reported once
            Message copy = *m;
            ++p.stats.unreachable;
            fail_to_sender(copy, p.ip, ECONNREFUSED);
            return;
        }
        case Kind::Ping: {
            // A peer that pings and never reads would grow the pongs waiting for its lane
            // without bound: past kMaxPongBytes, pings go unanswered (and are counted).
            if (l.pong_bytes + kHeaderLen + f.len > kMaxPongBytes) {
                ++p.stats.pings_dropped;
                return;
            }
            l.pong_bytes += kHeaderLen + f.len;
            ControlFrame pong;
            pong.frame.kind = Kind::Pong;
            pong.frame.sport = f.dport;
            pong.frame.dport = f.sport;
            pong.frame.len = f.len;
            pong.payload.assign(payload.begin(), payload.end());
            l.control.push_back(std::move(pong));
            return flush(p, l);
        }
        case Kind::Pong: {
            auto it = sockets.find(f.dport);
            if (it == sockets.end()) return;
            Event e;
            e.peer = {p.ip, 0};
            e.payload = std::make_shared<const std::vector<uint8_t>>(payload.begin(), payload.end());
            it->second->rxq.push_back(std::move(e));
            return notify(*it->second);
        }
    }
}

bool NodeState::adopt_hello(Peer& p, Conn* c, const Hello& h) {
    if (p.incarnation == 0) {
        p.incarnation = h.incarnation;
        p.stats.incarnation = h.incarnation;
    }
    if (p.nlanes == 0) {
        negotiated(p, h.lanes);
    } else if (h.lanes != p.peer_lanes) {
        protocol_error(c, fmt::format("HELLO says {} lanes, the peer said {}", h.lanes, p.peer_lanes));
        return false;
    }
    return true;
}

void NodeState::on_hello(Conn* c, const Hello& h) {
    if (!c->outgoing) {
        if (h.lane >= opt.lanes) return protocol_error(c, fmt::format("HELLO for lane {} of {}", h.lane, opt.lanes));
        Peer& p = peer_for(c->remote_ip);
        if (p.incarnation != 0 && p.incarnation != h.incarnation) peer_restarted(p, h.incarnation);
        if (!adopt_hello(p, c, h)) return;
        if (h.lane >= p.nlanes) return protocol_error(c, fmt::format("HELLO for lane {} of {}", h.lane, p.nlanes));
        Lane& l = p.lanes[h.lane];
        // Duelling opens: the lower address's connection wins on both sides. A connection the
        // peer opened again replaces its older one (the peer knows that one is gone).
        const bool accept = !l.conn || !l.conn->outgoing || c->remote_ip < ip;
        if (!accept) {
            close_conn(c);
            return;
        }
        if (l.conn) lane_failed(p, l, "replaced by a new connection from the peer", false);
        l.retry_pending = false;
        // Move the connection from `pending` into the lane.
        for (auto& pc : pending)
            if (pc.get() == c) {
                l.conn = std::move(pc);
                break;
            }
        pending.erase(std::remove(pending.begin(), pending.end(), nullptr), pending.end());
        c->peer = &p;
        c->lane = h.lane;
        Frame mine;
        mine.kind = Kind::Hello;
        mine.hello = {h.lane, opt.lanes, incarnation};
        append_frame(c->out, mine);
        start_up(p, l);
        return;
    }
    Peer& p = *c->peer;
    Lane& l = p.lanes[static_cast<size_t>(c->lane)];
    if (h.lane != l.index) return protocol_error(c, fmt::format("HELLO for lane {} on lane {}", h.lane, l.index));
    if (p.incarnation != 0 && p.incarnation != h.incarnation) {
        // peer_restarted closes every lane; this connection is the new incarnation's, keep it.
        std::unique_ptr<Conn> keep = std::move(l.conn);
        peer_restarted(p, h.incarnation);
        l.conn = std::move(keep);
    }
    if (!adopt_hello(p, c, h)) return;
    if (l.index >= p.nlanes) {
        close_conn(c);
        return;
    }
    start_up(p, l);
}

void NodeState::on_data(Conn* c, Peer& p, const Frame& f, std::span<const uint8_t> payload) {
    ReceiveResult r = p.receiver.on_data(f, payload);
    if (auto* e = std::get_if<ReceiveError>(&r))
        return protocol_error(c, fmt::format("{} (pair {}->{}, sequence {})", to_string(*e), f.sport, f.dport, f.sequence));
    if (std::holds_alternative<Partial>(r)) return;
    const PairKey pair{f.sport, f.dport};
    if (std::holds_alternative<Duplicate>(r)) {
        ++p.stats.duplicates;
    } else {
        Message& m = std::get<Delivered>(r).message;
        auto it = sockets.find(f.dport);
        if (it != sockets.end() && !it->second->closed) {
            SocketState& s = *it->second;
            Event e;
            e.peer = {p.ip, f.sport};
            s.rx_bytes += m.size();
            e.payload = std::move(m.data);
            s.rxq.push_back(std::move(e));
            notify(s);
        } else {
            ++p.stats.unreachable;
            ControlFrame u;
            u.frame.kind = Kind::Unreachable;
            u.frame.sequence = m.seq;
            u.frame.sport = f.dport;
            u.frame.dport = f.sport;
            p.lanes[static_cast<size_t>(c->lane)].control.push_back(std::move(u));
        }
    }
    // Acked only now that it is queued to the socket (or reported unreachable).
    p.ack_due.emplace_back(pair, static_cast<uint16_t>(c->lane));
}

}  // namespace shunt::rds
