// Sending: messages and control frames are queued on their lane under the node lock by any
// thread; only the I/O thread writes lanes. A lane with something new is marked dirty, and the
// I/O thread, once per turn of its loop, gathers each dirty lane's frames (control frames first:
// acks free the peer's memory; then data fragments in their turn) into one OutBatch and writes it
// with one sendmsg() without holding the lock. So many frames leave in one system call, an
// application thread never blocks on a lane's socket, and no frame is copied before the kernel.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "rds/node_state.hpp"

namespace shunt::rds {

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
    if (l.dirty || !c || c->state != Conn::State::Up || c->dead || closing) return;
    l.dirty = true;
    dirty.emplace_back(&p, l.index);
    if (!flush_requested) {
        flush_requested = true;
        // The I/O thread writes the dirty lanes at the end of its turn; others wake it, once
        // per flush however many sends come in meanwhile.
        if (std::this_thread::get_id() != io_id) wake();
    }
}

void NodeState::write_lanes(Lock& lk) {
    flush_requested = false;
    dirty_work.swap(dirty);  // sends made while a lane is written go to the other list
    for (auto [p, index] : dirty_work) {
        Lane& l = p->lanes[index];
        l.dirty = false;
        guarded(l.conn.get(), "write", [&, pp = p] { write_lane(*pp, l, lk); });
    }
    dirty_work.clear();
}

void NodeState::gather(Lane& l, Conn& c) {
    c.batch.clear();
    if (c.out_off < c.out.size()) {
        c.batch.add_borrowed(std::span<const uint8_t>(c.out).subspan(c.out_off));
        c.out_off = c.out.size();  // c.out is cleared once the batch is out
    } else if (!c.out.empty()) {
        c.out.clear();
        c.out_off = 0;
    }
    while (!c.batch.full(kWriteBatch)) {
        if (!l.control.empty()) {
            ControlFrame& cf = l.control.front();
            if (cf.frame.kind == Kind::Pong && cf.raw.empty()) l.pong_bytes -= std::min(l.pong_bytes, kHeaderLen + cf.payload.size());
            if (!cf.raw.empty())
                c.batch.add_owned(std::move(cf.raw));
            else
                c.batch.add_frame(cf.frame, std::move(cf.payload));
            l.control.pop_front();
            ++l.stats.tx_frames;
            continue;
        }
        auto of = l.sender.next_frame();
        if (!of) break;
        c.batch.add_frame(of->header, of->payload, std::move(of->keep));
        ++l.stats.tx_frames;
        l.stats.tx_bytes += of->header.len;
    }
}

void NodeState::write_lane(Peer& p, Lane& l, Lock& lk) {
    Conn* c = l.conn.get();
    if (!c || c->state != Conn::State::Up || c->dead || closing || c->want_out) return;
    while (true) {
        if (c->batch.empty()) {
            gather(l, *c);
            if (c->batch.empty()) break;
        }
        // More to come right after this write: let TCP fill whole segments.
        const bool more = !l.control.empty() || !l.sender.idle();
        lk.unlock();
        const ssize_t n = c->batch.send(c->fd(), more ? MSG_MORE : 0);
        const int err = errno;
        lk.lock();
        if (c->dead) {  // failed meanwhile (reset_lane): its messages are queued again already
            c->batch.clear();
            return;
        }
        if (n < 0) {
            if (err == EAGAIN || err == EWOULDBLOCK) break;
            if (err == EINTR) continue;
            lane_failed(p, l, fmt::format("send: {}", std::strerror(err)), false);
            return;
        }
        c->batch.consumed(static_cast<size_t>(n));
        if (!c->batch.empty()) break;  // the socket is full
    }
    const bool want = !c->batch.empty();
    if (want != c->want_out) {
        c->want_out = want;
        set_events(c);
    }
}

std::shared_ptr<std::vector<uint8_t>> NodeState::take_buffer(size_t size) {
    if (size <= kPooledBufferMax && !buffers.empty()) {
        auto b = std::move(buffers.back());
        buffers.pop_back();
        return b;
    }
    auto b = std::make_shared<std::vector<uint8_t>>();
    b->reserve(size);
    return b;
}

void NodeState::recycle() {
    // Every reference to a message buffer is made and dropped under the node lock (the lane
    // senders, the batches), so a count of one means nobody else holds it.
    for (auto& b : freed_buffers)
        if (b.use_count() == 1 && b->capacity() <= kPooledBufferMax && buffers.size() < kBufferPoolMax)
            buffers.push_back(std::const_pointer_cast<std::vector<uint8_t>>(std::move(b)));
    freed_buffers.clear();
}

void NodeState::set_events(Conn* c) {
    epoll_event ev{};
    ev.events = EPOLLIN | ((c->want_out || c->state == Conn::State::Connecting) ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    ::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, c->fd(), &ev);
}

// A connection still waiting for the peer's HELLO writes only its own HELLO.
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

}  // namespace shunt::rds
