// Lane lifecycle: a lane is a lane index towards one peer; its TCP connection comes and goes.
// Opening (either side may, with jittered exponential backoff on failure), the HELLO that makes a
// connection a lane's ("up"), failure (unacked messages are queued again for the next
// connection, in order), the negotiated lane count, and a peer's restart (a new incarnation
// fails every unacked message back to its sender and restarts all sequences).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "core/random.hpp"
#include "rds/node_state.hpp"
#include "rds/node_util.hpp"

namespace shunt::rds {
namespace {

std::chrono::milliseconds jitter(std::chrono::milliseconds d) {
    thread_local std::mt19937_64 rng(quick_random_u64());
    std::uniform_real_distribution<double> u(0.75, 1.25);
    return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(d.count() * u(rng))));
}

}  // namespace

void NodeState::schedule(Peer& p, Lane& l, bool now) {
    if (closing || l.conn || l.retry_pending) return;
    // The lower address reconnects first; the higher one waits longer, so both rarely race.
    const auto base = now ? std::chrono::milliseconds(0) : jitter(l.backoff) * (ip < p.ip ? 1 : 3);
    l.retry_pending = true;
    l.retry_at = Clock::now() + base;
    if (!now) l.backoff = std::min(l.backoff * 2, opt.reconnect_max);
    wake();
}

void NodeState::ensure_lanes(Peer& p) {
    if (p.nlanes == 0) {
        if (!p.lanes[0].conn && !p.lanes[0].retry_pending) {
            p.opened_first = true;
            schedule(p, p.lanes[0], true);
        }
        return;
    }
    for (uint16_t i = 0; i < p.nlanes; ++i) schedule(p, p.lanes[i], false);
}

void NodeState::open_lane(Peer& p, Lane& l) {
    l.retry_pending = false;
    if (l.conn || closing) return;
    auto c = std::make_unique<Conn>();
    c->outgoing = true;
    c->remote_ip = p.ip;
    c->peer = &p;
    c->lane = l.index;
    try {
        c->sock = ports->open(rss::IpAddress::v4({static_cast<uint8_t>(p.ip >> 24), static_cast<uint8_t>(p.ip >> 16),
                                                  static_cast<uint8_t>(p.ip >> 8), static_cast<uint8_t>(p.ip)}),
                              opt.lane_port, l.index);
    } catch (const std::exception& e) {
        log(fmt::format("lane {} to {}: cannot open: {}", l.index, ip_str(p.ip), e.what()));
        schedule(p, l, false);
        return;
    }
    c->local_port = c->sock.port;
    c->remote_port = opt.lane_port;
    c->queue = c->sock.queue;
    c->peer_queue = c->sock.peer_queue;
    c->state = Conn::State::Connecting;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c.get();
    if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, c->fd(), &ev) < 0) throw_errno("epoll_ctl");
    l.conn = std::move(c);
}

void NodeState::close_conn(Conn* c) {
    if (c->dead) return;
    c->dead = true;
    ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, c->fd(), nullptr);
    // Detach from wherever it lives; the object stays valid until the batch ends.
    if (c->peer && c->lane >= 0) {
        Lane& l = c->peer->lanes[static_cast<size_t>(c->lane)];
        if (l.conn.get() == c) {
            graveyard.push_back(std::move(l.conn));
            return;
        }
    }
    for (auto& pc : pending)
        if (pc.get() == c) {
            graveyard.push_back(std::move(pc));
            break;
        }
    pending.erase(std::remove(pending.begin(), pending.end(), nullptr), pending.end());
}

void NodeState::lane_failed(Peer& p, Lane& l, const std::string& why, bool error) {
    Conn* c = l.conn.get();
    if (!c) return;
    const bool was_up = c->state == Conn::State::Up;
    if ((was_up || error) && !closing)
        log(fmt::format("{}lane {} with {} closed: {}", error ? "error: " : "", l.index, ip_str(p.ip), why));
    if (error) {
        // A hard close (RST): the peer must not take anything more from this stream.
        linger lg{1, 0};
        ::setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    // Window updates written on this connection may never reach the peer: owe them again, for
    // the next start_up() (or recv()) to resend.
    for (const PairKey& pair : c->window_updates) {
        auto it = sockets.find(pair.dport);
        if (it != sockets.end()) it->second->starved.insert({p.ip, pair});
    }
    close_conn(c);
    if (was_up) {
        ++l.stats.failures;
        l.stats.retransmits += l.sender.unacked_messages();
    }
    l.sender.reset_for_retransmit();
    schedule(p, l, false);
}

void NodeState::protocol_error(Conn* c, const std::string& why) {
    if (c->dead) return;
    if (c->peer && c->lane >= 0 && c->peer->lanes[static_cast<size_t>(c->lane)].conn.get() == c) {
        lane_failed(*c->peer, c->peer->lanes[static_cast<size_t>(c->lane)], why, true);
        return;
    }
    log(fmt::format("error: connection from {}:{} closed: {}", ip_str(c->remote_ip), c->remote_port, why));
    linger lg{1, 0};
    ::setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close_conn(c);
}

void NodeState::start_up(Peer& p, Lane& l) {
    Conn* c = l.conn.get();
    c->state = Conn::State::Up;
    l.backoff = opt.reconnect_min;
    ++l.stats.connects;
    const int one = 1, lowat = kNotSentLowat;
    ::setsockopt(c->fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(c->fd(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(c->fd(), reinterpret_cast<sockaddr*>(&a), &len) == 0) c->local_port = ntohs(a.sin_port);
    len = sizeof a;
    if (::getpeername(c->fd(), reinterpret_cast<sockaddr*>(&a), &len) == 0) c->remote_port = ntohs(a.sin_port);
    send_window_updates(p);
    flush(p, l);
}

void NodeState::negotiated(Peer& p, uint16_t peer_lanes) {
    p.peer_lanes = peer_lanes;
    p.nlanes = std::min<uint16_t>(opt.lanes, peer_lanes);
    p.stats.lanes = p.nlanes;
    p.placement.set_lanes(p.nlanes);
    // Messages sent before the count was known go out now, in their order.
    std::deque<Message> q;
    q.swap(p.prequeue);
    for (Message& m : q) {
        const uint16_t lane = p.placement.place(m.pair, m.size());
        p.lanes[lane].sender.enqueue(std::move(m));
    }
    std::deque<ControlFrame> ctl;
    ctl.swap(p.pre_control);
    for (ControlFrame& cf : ctl) p.lanes[0].control.push_back(std::move(cf));
    // The opener of the first lane opens the others at once; the other side only backs it up.
    for (uint16_t i = 0; i < p.nlanes; ++i) schedule(p, p.lanes[i], p.opened_first);
}

void NodeState::peer_restarted(Peer& p, uint64_t inc) {
    log(fmt::format("peer {} restarted (incarnation {:016x} -> {:016x}): failing its unacked messages",
                    ip_str(p.ip), p.incarnation, inc));
    ++p.stats.restarts;
    std::vector<Message> failed(std::make_move_iterator(p.prequeue.begin()), std::make_move_iterator(p.prequeue.end()));
    p.prequeue.clear();
    for (Lane& l : p.lanes) {
        for (Message& m : l.sender.fail_all()) failed.push_back(std::move(m));
        l.control.clear();
        l.pong_bytes = 0;
        if (l.conn) close_conn(l.conn.get());
        l.retry_pending = false;
        l.backoff = opt.reconnect_min;
    }
    // Report per socket in send order (ids grow with it).
    std::sort(failed.begin(), failed.end(), [](const Message& a, const Message& b) {
        return a.pair.sport != b.pair.sport ? a.pair.sport < b.pair.sport : a.id < b.id;
    });
    for (Message& m : failed) {
        auto it = sockets.find(m.pair.sport);
        if (it != sockets.end()) it->second->tx_bytes -= std::min(it->second->tx_bytes, m.size());
        fail_to_sender(m, p.ip, ECONNRESET);
    }
    p.stats.failed += failed.size();
    p.receiver.reset();
    p.placement.clear();
    p.next_seq.clear();
    p.credit.clear();
    p.window_seq.clear();
    p.ack_due.clear();
    p.pre_control.clear();
    for (auto& [port, s] : sockets) {
        for (auto it = s->starved.begin(); it != s->starved.end();)
            it = it->first == p.ip ? s->starved.erase(it) : std::next(it);
        notify(*s);
    }
    p.incarnation = inc;
    p.nlanes = 0;
    p.peer_lanes = 0;
    p.stats.incarnation = inc;
    p.stats.lanes = 0;
}

}  // namespace shunt::rds
