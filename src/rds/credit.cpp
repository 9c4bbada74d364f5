// Readiness and flow control. Each destination socket grants credit: the free room of its
// receive buffer, advertised on every ack. A sender may have at most that many unacked bytes
// to it; a receiver that advertised less than half its buffer owes the sender an update once
// recv() frees room (the replacement for the kernel's host-wide congestion bitmap). A socket's
// eventfd is readable while recv() has an event or a refused send could now pass.
#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <unistd.h>

#include "rds/node_state.hpp"

namespace shunt::rds {

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
    if (to.port == 0) return true;
    if (to.ip == ip) {
        // A socket on this node: its receive queue is the bound, as credit is for a remote one
        // (one message may always go to an empty queue). No socket: refused at once.
        auto it = sockets.find(to.port);
        if (it == sockets.end()) return true;
        const size_t queued = it->second->rx_bytes;
        return queued == 0 || queued + size <= opt.rcvbuf;
    }
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

void NodeState::wake_senders_to(const Endpoint& dest) {
    for (auto& [port, s] : sockets)
        if (s->blocked && s->blocked_dest == dest) notify(*s);
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
        a.frame.window_seq = ++p.window_seq[pair.dport];
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
                a.frame.window_seq = ++p.window_seq[it->second.dport];
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
    if (!p.lanes[static_cast<size_t>(lane)].sender.on_ack(pair, f.ack, &freed, &freed_buffers))
        return protocol_error(c, fmt::format("ack {} beyond what pair {}->{} sent", f.ack, f.dport, f.sport));
    recycle();
    p.placement.release(pair, freed.messages, freed.bytes);
    Credit& cr = p.credit[f.sport];
    cr.unacked -= std::min(cr.unacked, freed.bytes);
    cr.update(f.window, f.window_seq);
    auto it = sockets.find(pair.sport);
    if (it != sockets.end()) it->second->tx_bytes -= std::min(it->second->tx_bytes, freed.bytes);
    for (auto& [port, s] : sockets)
        if (s->blocked || (it != sockets.end() && s == it->second)) notify(*s);
}

}  // namespace shunt::rds
