// poll/ppoll/select/pselect over sets that hold accelerated connections.
//
// An accelerated connection is ready when its ring says so, which the kernel cannot see. A
// call is answered in three steps, each one only if the previous found nothing ready:
//   1. look: the rings, and the kernel for the other descriptors (timeout 0) and, in the
//      same call, each connection's TCP socket (peer death must be noticed even by a
//      program that loops on another ready descriptor and never lets us sleep);
//   2. spin up to SHUNT_SPIN_US, looking again, when this thread's recent waits say it pays
//      (a peer on the other core answers in ~100 ns, far below the cost of sleeping and being
//      woken; core/spin.hpp);
//   3. ask each connection's peer for a wake-up (Connection::arm, which re-checks after
//      asking so no wake-up is lost) and sleep in the kernel on the application's
//      descriptors plus each connection's eventfds and TCP socket (peer death).
// Level-triggered like poll itself: a connection with data left stays readable.
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <vector>

#include "core/spin.hpp"
#include "preload/config.hpp"
#include "preload/deadline.hpp"
#include "preload/guard.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {


struct Watched {
    nfds_t index;
    std::shared_ptr<SocketState> s;
};

short revents_of(const lo::Readiness& r, short events) {
    short out = 0;
    if (r.in) out |= static_cast<short>(events & (POLLIN | POLLRDNORM));
    if (r.out) out |= static_cast<short>(events & (POLLOUT | POLLWRNORM));
    if (r.rdhup) out |= static_cast<short>(events & POLLRDHUP);
    if (r.hup) out |= POLLHUP;
    if (r.err) out |= POLLERR;
    return out;
}

}  // namespace

bool any_smcd(const pollfd* fds, nfds_t nfds) {
    const FdTable& t = FdTable::instance();
    bool smcd = false;
    for (nfds_t i = 0; i < nfds; ++i) {
        const FdKind k = t.kind(fds[i].fd);
        smcd = smcd || k == FdKind::Smcd;
        if (k == FdKind::Epoll) mark_nested(fds[i].fd);  // an emulated epoll set, polled
    }
    return smcd;
}

int on_poll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* mask) {
    InsideShunt guard;
    std::vector<Watched> watched;
    std::vector<pollfd> work(fds, fds + nfds);
    for (nfds_t i = 0; i < nfds; ++i) {
        if (FdTable::instance().kind(fds[i].fd) != FdKind::Smcd) continue;
        auto s = FdTable::instance().get_as<SocketState>(fds[i].fd);
        if (s && s->smcd && !settle_hand_off(*s)) {
            watched.push_back({i, std::move(s)});
            work[i].fd = -1;  // the ring answers for it; the kernel sees its TCP socket
        }
    }
    const bool others = watched.size() < nfds;
    const auto deadline = deadline_after(timeout);

    // The entries of watched connections carry their TCP socket (EOF there: the peer died),
    // until its EOF has been seen.
    auto watch_tcp = [&]() {
        for (const Watched& w : watched) {
            lo::Connection& c = *w.s->smcd;
            work[w.index] = {c.tcp_eof() ? -1 : c.tcp_fd(), POLLIN | POLLRDHUP, 0};
        }
    };
    // After a kernel poll: hands TCP events to their connections; returns how many of the
    // application's own descriptors are ready.
    auto after_kernel = [&]() {
        for (const Watched& w : watched) {
            if (work[w.index].fd >= 0 && work[w.index].revents) w.s->smcd->on_tcp_event();
            work[w.index].fd = -1;
            work[w.index].revents = 0;
        }
        int ready = 0;
        for (nfds_t i = 0; i < nfds; ++i) ready += work[i].revents != 0;
        return ready;
    };

    // Fills in fds[].revents from the rings and `work`; returns how many are ready.
    auto finish = [&]() {
        int ready = 0;
        for (nfds_t i = 0; i < nfds; ++i) fds[i].revents = work[i].fd < 0 ? 0 : work[i].revents;
        for (const Watched& w : watched) fds[w.index].revents = revents_of(w.s->smcd->readiness(), fds[w.index].events);
        for (nfds_t i = 0; i < nfds; ++i) ready += fds[i].revents != 0;
        return ready;
    };
    // A connection handed to TCP meanwhile (an exec): the call starts over, the kernel
    // answering for that one.
    auto handed_off = [&]() {
        return std::any_of(watched.begin(), watched.end(), [](const Watched& w) { return w.s->smcd->handed_off(); });
    };
    auto start_over = [&]() {
        const int ms = remaining_ms(deadline);
        const timespec left = from_ms(ms);
        return on_poll(fds, nfds, ms >= 0 ? &left : nullptr, mask);
    };
    auto look = [&](bool kernel_too) {
        int ready = 0;
        if (handed_off()) return -1;
        for (const Watched& w : watched) ready += revents_of(w.s->smcd->readiness(), fds[w.index].events) != 0;
        if (kernel_too && others) {
            watch_tcp();
            const int k = libc().poll(work.data(), nfds, 0);
            const int app_ready = after_kernel();
            if (k > 0) ready += app_ready;
        }
        return ready;
    };

    if (const int n = look(true); n < 0) return start_over();
    else if (n > 0 || remaining_ms(deadline) == 0) return finish();

    // Spin, if this thread's recent waits say it pays (core/spin.hpp).
    thread_local SpinPolicy policy;
    policy.set_budget(config().lo.spin);
    WaitEpisode wait;
    auto limit = wait.plan(policy);
    if (deadline) limit = std::min<std::chrono::nanoseconds>(limit, *deadline - Clock::now());
    int found = 0;
    unsigned looks = 0;
    if (wait.spin(limit, [&] { return (found = look((++looks & 31) == 0)) != 0; })) {
        wait.done(policy);
        return found < 0 ? start_over() : finish();
    }
    wait.sleeping();

    for (;;) {
        // Ask for wake-ups, then sleep on everything.
        int ready = 0;
        for (const Watched& w : watched) {
            const short ev = fds[w.index].events;
            const lo::Readiness now = w.s->smcd->readiness();
            const bool want_out = (ev & (POLLOUT | POLLWRNORM)) && !now.out;
            const bool want_in = ev & (POLLIN | POLLRDNORM | POLLRDHUP);
            const lo::Readiness r = w.s->smcd->arm(want_in, want_out);
            ready += revents_of(r, ev) != 0;
        }
        if (ready > 0) {
            if (look(true) < 0) return start_over();
            return finish();
        }
        watch_tcp();
        std::vector<pollfd> sleep = work;
        for (const Watched& w : watched) {
            sleep.push_back({w.s->smcd->rx_wake_fd(), POLLIN, 0});
            if (fds[w.index].events & (POLLOUT | POLLWRNORM)) sleep.push_back({w.s->smcd->tx_wake_fd(), POLLIN, 0});
        }
        timespec ts{};
        const int ms = remaining_ms(deadline);
        if (ms >= 0) ts = from_ms(ms);
        const int k = libc().ppoll(sleep.data(), sleep.size(), ms >= 0 ? &ts : nullptr, mask);
        if (k < 0) {
            after_kernel();
            return -1;
        }
        for (nfds_t i = 0; i < nfds; ++i) work[i].revents = sleep[i].revents;
        after_kernel();
        if (handed_off()) return start_over();
        if (const int n = finish(); n > 0) {
            wait.done(policy);
            return n;
        }
        if (remaining_ms(deadline) == 0) {
            wait.done(policy);
            return 0;
        }
    }
}

int on_select(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* mask) {
    std::vector<pollfd> p;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
        short ev = 0;
        if (r && FD_ISSET(fd, r)) ev |= POLLIN;
        if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
        if (e && FD_ISSET(fd, e)) ev |= POLLPRI;
        if (ev) p.push_back({fd, ev, 0});
    }
    const int n = on_poll(p.data(), p.size(), timeout, mask);
    if (n < 0) return n;
    if (r) FD_ZERO(r);
    if (w) FD_ZERO(w);
    if (e) FD_ZERO(e);
    int bits = 0;
    for (const pollfd& q : p) {
        if (q.revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
        auto mark = [&bits, &q](fd_set* set, short asked, short seen) {
            if (set && (q.events & asked) && (q.revents & seen)) {
                FD_SET(q.fd, set);
                ++bits;
            }
        };
        mark(r, POLLIN, POLLIN | POLLHUP | POLLERR);
        mark(w, POLLOUT, POLLOUT | POLLERR);
        mark(e, POLLPRI, POLLPRI);
    }
    return bits;
}

}  // namespace shunt::preload
