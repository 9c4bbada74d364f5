// The node's I/O thread: one epoll loop for the lane listener, every lane connection, the
// wake-up eventfd (application threads asking for a flush, Node::close()), the `shunt rds info`
// socket and the reconnect timers. Each turn: the events (reads parse and deliver frames), the
// timers, then one write of every dirty lane, so frames queued during the turn leave together.
//
// Nothing thrown inside a handler may end the thread (that would be std::terminate): each
// handler runs guarded, and an exception closes the lane it came from with a logged error while
// the node and its other lanes carry on.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

#include <fmt/format.h>

#include "rds/node_state.hpp"
#include "rds/node_util.hpp"

namespace shunt::rds {

void NodeState::run_timers() {
    const auto now = Clock::now();
    for (auto& [pip, p] : peers)
        for (Lane& l : p->lanes)
            if (l.retry_pending && l.retry_at <= now) open_lane(*p, l);
}

int NodeState::next_timeout_ms() const {
    if (closing) return 10;
    if (flush_requested || close_requested) return 0;
    auto next = Clock::now() + std::chrono::milliseconds(200);
    for (const auto& [pip, p] : peers)
        for (const Lane& l : p->lanes)
            if (l.retry_pending) next = std::min(next, l.retry_at);
    const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
    return static_cast<int>(std::max<int64_t>(0, d));
}

void NodeState::on_exception(Conn* c, const char* where, const std::exception& e) {
    const std::string why = fmt::format("internal error in {}: {}", where, e.what());
    try {
        if (c && !c->dead) {
            protocol_error(c, why);
            return;
        }
        log("error: " + why);
    } catch (...) {
        // Closing the lane failed as well: nothing more can be done for it here.
    }
}

void NodeState::begin_close(Lock& lk) {
    // Acks owed are already queued; push them out, then half-close every lane so the peers see
    // an orderly end after the last ack.
    for (auto& [pip, p] : peers) {
        flush_acks(*p);
        flush_all(*p);
    }
    write_lanes(lk);
    closing = true;
    close_deadline = Clock::now() + close_linger;
    if (listen_fd) ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, listen_fd.get(), nullptr);
    listen_fd.reset();
    for (auto& [pip, p] : peers)
        for (Lane& l : p->lanes) {
            l.retry_pending = false;
            if (l.conn) ::shutdown(l.conn->fd(), SHUT_WR);
        }
    for (auto& c : pending) ::shutdown(c->fd(), SHUT_WR);
}

void NodeState::run() {
    std::array<epoll_event, 64> evs;
    Lock lk(mu);
    io_id = std::this_thread::get_id();
    while (!stopped) {
        const int timeout = next_timeout_ms();
        lk.unlock();
        const int n = ::epoll_wait(epfd.get(), evs.data(), static_cast<int>(evs.size()), timeout);
        lk.lock();
        if (close_requested && !closing) guarded(nullptr, "close", [&] { begin_close(lk); });
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = evs[static_cast<size_t>(i)];
            if (ev.data.u64 == kTagListen) {
                guarded(nullptr, "accept", [&] { on_accept(); });
            } else if (ev.data.u64 == kTagWake) {
                uint64_t v;
                [[maybe_unused]] auto r = ::read(wake_fd.get(), &v, sizeof v);
            } else if (ev.data.u64 == kTagInfo) {
                guarded(nullptr, "info", [&] { on_info(); });
            } else {
                Conn* c = static_cast<Conn*>(ev.data.ptr);
                guarded(c, "event", [&] { on_event(c, ev.events, lk); });
            }
        }
        guarded(nullptr, "timers", [&] { run_timers(); });
        guarded(nullptr, "write", [&] { write_lanes(lk); });
        graveyard.clear();
        if (closing) {
            bool any = !pending.empty();
            for (auto& [pip, p] : peers)
                for (Lane& l : p->lanes) any = any || l.conn;
            if (!any || Clock::now() >= close_deadline) stopped = true;
        }
    }
}

}  // namespace shunt::rds
