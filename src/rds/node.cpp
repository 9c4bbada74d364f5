// The rds node's I/O thread: lane connections (open, accept, HELLO matching, reconnect with
// jittered exponential backoff), frame dispatch, acks after queueing, failure and restart
// handling. Why it is built this way (rds.md §4.2, §7; design decision 7):
//   * lanes are matched by HELLO (lane index, lane count, incarnation), never by arrival order or
//     source port; either side may open a lane, and when both do at once the connection opened
//     by the lower IP wins on both sides, so the pair converges without a "who connects" rule
//     that could leave a lane down;
//   * an opener sends data only after the peer's HELLO came back, so no frame of the old
//     sequence space reaches a restarted peer; a new incarnation fails every unacked message
//     back to its sender (Event::SendFailed) and restarts all sequences;
//   * a malformed frame, a sequence gap or an ack of something never sent closes that one lane
//     with a logged error; the sender side retransmits and nothing else is disturbed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>

#include <fmt/format.h>

#include "core/random.hpp"
#include "lo/rundir.hpp"
#include "rds/node_state.hpp"

namespace shunt::rds {
namespace {

constexpr uint64_t kTagListen = 1, kTagWake = 2, kTagInfo = 3;

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

std::string ip_str(uint32_t ip) { return Endpoint{ip, 0}.ip_string(); }

std::chrono::milliseconds jitter(std::chrono::milliseconds d) {
    thread_local std::mt19937_64 rng(quick_random_u64());
    std::uniform_real_distribution<double> u(0.75, 1.25);
    return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(d.count() * u(rng))));
}

void append_frame(std::vector<uint8_t>& out, const Frame& f, std::span<const uint8_t> payload) {
    const auto h = encode_header(f);
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), payload.begin(), payload.end());
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// Sockets: readiness and credit

void NodeState::notify(SocketState& s) {
    const bool ready = !s.rxq.empty() || (s.blocked && can_send(s, s.blocked_dest, s.blocked_size));
    if (ready && !s.signalled) {
        const uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(s.efd.get(), &one, sizeof one);
        s.signalled = true;
    } else if (!ready && s.signalled) {
        uint64_t v;
        [[maybe_unused]] auto n = ::read(s.efd.get(), &v, sizeof v);
        s.signalled = false;
    }
    s.cv.notify_all();
}

bool NodeState::can_send(SocketState& s, const Endpoint& to, size_t size) {
    if (s.tx_bytes > 0 && s.tx_bytes + size > opt.sndbuf) return false;
    if (to.ip == ip || to.port == 0) return true;
    auto pit = peers.find(to.ip);
    if (pit == peers.end()) return true;
    auto cit = pit->second->credit.find(to.port);
    if (cit == pit->second->credit.end()) return true;
    const Credit& c = cit->second;
    if (c.unacked == 0) return c.window > 0;
    return c.unacked + size <= c.window;
}

size_t NodeState::window_of(uint16_t port) const {
    auto it = sockets.find(port);
    const size_t free = it == sockets.end() ? opt.rcvbuf
                        : it->second->rx_bytes >= opt.rcvbuf ? 0
                                                             : opt.rcvbuf - it->second->rx_bytes;
    return std::min<size_t>(free, UINT32_MAX);
}

void NodeState::fail_to_sender(Message& m, uint32_t peer_ip, int error) {
    auto it = sockets.find(m.pair.sport);
    if (it == sockets.end()) return;
    SocketState& s = *it->second;
    Event e;
    e.type = Event::Type::SendFailed;
    e.peer = {peer_ip, m.pair.dport};
    e.id = m.id;
    e.error = error;
    s.rxq.push_back(std::move(e));
    notify(s);
}

// ---------------------------------------------------------------------------------------------
// Sending

void NodeState::enqueue(Peer& p, Message m) {
    if (p.nlanes == 0) {
        p.prequeue.push_back(std::move(m));
        ensure_lanes(p);
        return;
    }
    const uint16_t lane = p.placement.place(m.pair, m.size());
    Lane& l = p.lanes[lane];
    l.sender.enqueue(std::move(m));
    if (l.conn && l.conn->state == Conn::State::Up)
        flush(p, l);
    else
        ensure_lanes(p);
}

void NodeState::queue_control(Peer& p, int lane, ControlFrame c) {
    if (p.nlanes == 0) {
        p.pre_control.push_back(std::move(c));
        ensure_lanes(p);
        return;
    }
    if (lane < 0 || lane >= p.nlanes) {
        lane = 0;
        for (uint16_t i = 0; i < p.nlanes; ++i)
            if (p.lanes[i].conn && p.lanes[i].conn->state == Conn::State::Up) {
                lane = i;
                break;
            }
    }
    Lane& l = p.lanes[static_cast<size_t>(lane)];
    l.control.push_back(std::move(c));
    flush(p, l);
}

void NodeState::flush_all(Peer& p) {
    for (uint16_t i = 0; i < p.nlanes; ++i) flush(p, p.lanes[i]);
}

void NodeState::flush(Peer& p, Lane& l) {
    Conn* c = l.conn.get();
    if (!c || c->state != Conn::State::Up || c->dead || closing) return;
    while (true) {
        if (c->out_off == c->out.size()) {
            c->out.clear();
            c->out_off = 0;
        }
        // Gather: control frames first (acks free the peer's memory), then data fragments in
        // their turn, up to one batch.
        while (c->out.size() - c->out_off < kWriteBatch) {
            if (!l.control.empty()) {
                ControlFrame& cf = l.control.front();
                append_frame(c->out, cf.frame, cf.payload);
                l.control.pop_front();
                ++l.stats.tx_frames;
                continue;
            }
            auto of = l.sender.next_frame();
            if (!of) break;
            append_frame(c->out, of->header, of->payload);
            ++l.stats.tx_frames;
            l.stats.tx_bytes += of->header.len;
        }
        if (c->out_off == c->out.size()) break;
        const ssize_t n = ::send(c->fd(), c->out.data() + c->out_off, c->out.size() - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            lane_failed(p, l, fmt::format("send: {}", std::strerror(errno)), false);
            return;
        }
        c->out_off += static_cast<size_t>(n);
        if (c->out_off < c->out.size()) break;  // the socket is full
    }
    const bool want = c->out_off < c->out.size();
    if (want != c->want_out) {
        c->want_out = want;
        set_events(c);
    }
    (void)p;
}

void NodeState::set_events(Conn* c) {
    epoll_event ev{};
    ev.events = EPOLLIN | ((c->want_out || c->state == Conn::State::Connecting) ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    ::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, c->fd(), &ev);
}

// ---------------------------------------------------------------------------------------------
// Lane lifecycle

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

// ---------------------------------------------------------------------------------------------
// Events

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

void NodeState::on_event(Conn* c, uint32_t events) {
    if (c->dead) return;
    if (c->state == Conn::State::Connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        on_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    if (c->dead) return;
    if ((events & EPOLLOUT) && c->peer && c->lane >= 0 && c->state == Conn::State::Up)
        flush(*c->peer, c->peer->lanes[static_cast<size_t>(c->lane)]);
    else if ((events & EPOLLOUT) && c->state == Conn::State::HelloWait)
        write_out(c);
}

void NodeState::write_out(Conn* c) {
    while (c->out_off < c->out.size()) {
        const ssize_t n = ::send(c->fd(), c->out.data() + c->out_off, c->out.size() - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) break;
        c->out_off += static_cast<size_t>(n);
    }
    const bool want = c->out_off < c->out.size();
    if (want != c->want_out) {
        c->want_out = want;
        set_events(c);
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
    append_frame(c->out, h, {});
    c->want_out = true;  // forces set_events to drop EPOLLOUT if the HELLO goes out at once
    write_out(c);
    set_events(c);
}

void NodeState::on_readable(Conn* c) {
    const ssize_t n = ::recv(c->fd(), rbuf.data(), rbuf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        const std::string why = n == 0 ? "closed by peer" : std::strerror(errno);
        if (c->peer && c->lane >= 0 && c->peer->lanes[static_cast<size_t>(c->lane)].conn.get() == c)
            lane_failed(*c->peer, c->peer->lanes[static_cast<size_t>(c->lane)], why, false);
        else
            close_conn(c);
        return;
    }
    if (closing) return;  // draining: frames are dropped unacked, the sender keeps them
    auto err = c->reader.feed(std::span<const uint8_t>(rbuf.data(), static_cast<size_t>(n)),
                              [&](const Frame& f, std::span<const uint8_t> payload) {
                                  if (!c->dead) on_frame(c, f, payload);
                              });
    Peer* p = c->peer;
    if (err && !c->dead) protocol_error(c, fmt::format("malformed frame: {}", to_string(*err)));
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
        append_frame(c->out, mine, {});
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

void NodeState::flush_acks(Peer& p) {
    if (p.ack_due.empty()) return;
    std::sort(p.ack_due.begin(), p.ack_due.end());
    p.ack_due.erase(std::unique(p.ack_due.begin(), p.ack_due.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
                    p.ack_due.end());
    std::vector<uint16_t> lanes;
    for (const auto& [pair, lane] : p.ack_due) {
        const uint64_t ack = p.receiver.ack_for(pair);
        if (ack == 0) continue;
        ControlFrame a;
        a.frame.kind = Kind::Ack;
        a.frame.ack = ack;
        a.frame.sport = pair.dport;
        a.frame.dport = pair.sport;
        a.frame.window = static_cast<uint32_t>(window_of(pair.dport));
        auto it = sockets.find(pair.dport);
        if (it != sockets.end() && a.frame.window < opt.rcvbuf / 2) it->second->starved.insert({p.ip, pair});
        if (lane < p.nlanes) {
            p.lanes[lane].control.push_back(std::move(a));
            lanes.push_back(lane);
        }
    }
    p.ack_due.clear();
    std::sort(lanes.begin(), lanes.end());
    lanes.erase(std::unique(lanes.begin(), lanes.end()), lanes.end());
    for (uint16_t lane : lanes) flush(p, p.lanes[lane]);
}

void NodeState::send_window_updates(Peer& p) {
    for (auto& [port, s] : sockets) {
        if (s->starved.empty()) continue;
        const size_t w = window_of(port);
        for (auto it = s->starved.begin(); it != s->starved.end();) {
            if (it->first != p.ip) {
                ++it;
                continue;
            }
            const uint64_t ack = p.receiver.ack_for(it->second);
            if (ack && p.nlanes) {
                ControlFrame a;
                a.frame.kind = Kind::Ack;
                a.frame.ack = ack;
                a.frame.sport = it->second.dport;
                a.frame.dport = it->second.sport;
                a.frame.window = static_cast<uint32_t>(w);
                int lane = -1;
                for (uint16_t i = 0; i < p.nlanes; ++i)
                    if (p.lanes[i].conn && p.lanes[i].conn->state == Conn::State::Up) {
                        lane = i;
                        break;
                    }
                if (lane < 0) {
                    ++it;
                    continue;  // no lane up: start_up() sends it
                }
                Lane& l = p.lanes[static_cast<size_t>(lane)];
                const PairKey pair = it->second;
                // Settled before flush(), which may fail the lane and owe the update again.
                it = w < opt.rcvbuf / 2 ? std::next(it) : s->starved.erase(it);
                l.conn->window_updates.insert(pair);
                l.control.push_back(std::move(a));
                flush(p, l);
                continue;
            }
            if (w < opt.rcvbuf / 2)
                ++it;
            else
                it = s->starved.erase(it);
        }
    }
}

void NodeState::on_ack(Conn* c, Peer& p, const Frame& f) {
    const PairKey pair{f.dport, f.sport};
    const int lane = p.placement.lane_of(pair);
    if (lane < 0) return protocol_error(c, fmt::format("ack for pair {}->{} never sent", f.dport, f.sport));
    LaneSender::Freed freed;
    if (!p.lanes[static_cast<size_t>(lane)].sender.on_ack(pair, f.ack, &freed))
        return protocol_error(c, fmt::format("ack {} beyond what pair {}->{} sent", f.ack, f.dport, f.sport));
    p.placement.release(pair, freed.messages, freed.bytes);
    Credit& cr = p.credit[f.sport];
    cr.unacked -= std::min(cr.unacked, freed.bytes);
    cr.window = f.window;
    auto it = sockets.find(pair.sport);
    if (it != sockets.end()) it->second->tx_bytes -= std::min(it->second->tx_bytes, freed.bytes);
    for (auto& [port, s] : sockets)
        if (s->blocked || (it != sockets.end() && s == it->second)) notify(*s);
}

// ---------------------------------------------------------------------------------------------
// The loop

void NodeState::run_timers() {
    const auto now = Clock::now();
    for (auto& [pip, p] : peers)
        for (Lane& l : p->lanes)
            if (l.retry_pending && l.retry_at <= now) open_lane(*p, l);
}

int NodeState::next_timeout_ms() const {
    if (closing) return 10;
    auto next = Clock::now() + std::chrono::milliseconds(200);
    for (const auto& [pip, p] : peers)
        for (const Lane& l : p->lanes)
            if (l.retry_pending) next = std::min(next, l.retry_at);
    const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
    return static_cast<int>(std::max<int64_t>(0, d));
}

void NodeState::run() {
    std::array<epoll_event, 64> evs;
    std::unique_lock lk(mu);
    while (!stopped) {
        const int timeout = next_timeout_ms();
        lk.unlock();
        const int n = ::epoll_wait(epfd.get(), evs.data(), static_cast<int>(evs.size()), timeout);
        lk.lock();
        for (int i = 0; i < n; ++i) {
            const uint64_t tag = evs[static_cast<size_t>(i)].data.u64;
            if (tag == kTagListen)
                on_accept();
            else if (tag == kTagWake) {
                uint64_t v;
                [[maybe_unused]] auto r = ::read(wake_fd.get(), &v, sizeof v);
            } else if (tag == kTagInfo)
                on_info();
            else
                on_event(static_cast<Conn*>(evs[static_cast<size_t>(i)].data.ptr), evs[static_cast<size_t>(i)].events);
        }
        run_timers();
        graveyard.clear();
        if (closing) {
            bool any = !pending.empty();
            for (auto& [pip, p] : peers)
                for (Lane& l : p->lanes) any = any || l.conn;
            if (!any || Clock::now() >= close_deadline) stopped = true;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node

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
    s->rbuf.resize(256 << 10);

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
        if (!s_->closing && !s_->stopped) {
            // Acks owed are already queued; push them out, then half-close every lane so the
            // peers see an orderly end after the last ack.
            for (auto& [pip, p] : s_->peers) {
                s_->flush_acks(*p);
                s_->flush_all(*p);
            }
            s_->closing = true;
            s_->close_deadline = Clock::now() + linger_for;
            if (s_->listen_fd) ::epoll_ctl(s_->epfd.get(), EPOLL_CTL_DEL, s_->listen_fd.get(), nullptr);
            s_->listen_fd.reset();
            for (auto& [pip, p] : s_->peers)
                for (Lane& l : p->lanes) {
                    l.retry_pending = false;
                    if (l.conn) ::shutdown(l.conn->fd(), SHUT_WR);
                }
            for (auto& c : s_->pending) ::shutdown(c->fd(), SHUT_WR);
        }
        s_->wake();
    }
    if (s_->io.joinable()) s_->io.join();
    std::lock_guard lk(s_->mu);
    s_->stopped = true;
    for (auto& [pip, p] : s_->peers)
        for (Lane& l : p->lanes) l.conn.reset();
    s_->pending.clear();
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
    Conn* c = it->second->lanes[lane].conn.get();
    if (!c || c->state != Conn::State::Up || c->out_off != c->out.size()) return false;
    return ::send(c->fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

}  // namespace shunt::rds
