// epoll over sets that hold accelerated connections.
//
// The application's epoll set stays a real kernel epoll set: its plain descriptors are
// registered as the application asks. An accelerated connection is not (its TCP socket would
// look always writable and never readable); instead the set holds, edge-triggered and tagged
// with a random 64-bit value of ours, the connection's two eventfds (the peer signals them
// when data arrives or space frees, if we asked) and a private duplicate of its TCP socket
// (EOF there means the peer died). epoll_wait then works as poll does (readiness.cpp): look
// at the rings, spin, arm and sleep in the kernel; events carrying our tags are consumed here
// and never reach the application.
//
// Per registration we keep what the application asked (events, data, EPOLLET, EPOLLONESHOT,
// EPOLLRDHUP). Level-triggered reports whatever is ready. Edge-triggered reports EPOLLIN when
// the peer's producer cursor (or its close flags) moved since we last reported it, EPOLLOUT
// when its consumer cursor moved (first report right after ADD/MOD, as the kernel does).
// A connection whose last descriptor is closed leaves the set at the next look; the same
// descriptor number may then be registered again for something else.
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/random.hpp"
#include "preload/config.hpp"
#include "preload/deadline.hpp"
#include "preload/guard.hpp"
#include "preload/log.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {

constexpr uint64_t kTcpBit = 1;  // low bit of a tag: the event came from the TCP socket

struct Registration {
    int fd = -1;
    std::shared_ptr<SocketState> s;
    uint32_t events = 0;
    epoll_data_t data{};
    uint64_t tag = 0;  // even; tag | kTcpBit for the TCP socket
    uint64_t rx_seen = ~0ULL, tx_seen = ~0ULL;
    bool hup_seen = false;
    bool disabled = false;  // EPOLLONESHOT fired, until EPOLL_CTL_MOD
};

struct EpollSet : Tracked {
    std::mutex mu;
    std::map<int, Registration> regs;  // by application descriptor
    std::unordered_map<uint64_t, int> live_tags;  // tag -> fd
    std::unordered_set<uint64_t> retired;   // tags removed recently: their events may still come
    std::deque<uint64_t> retired_order;
};

FdTable& table() { return FdTable::instance(); }

uint64_t new_tag(const EpollSet& set) {
    for (;;) {
        const uint64_t t = quick_random_u64() & ~kTcpBit;
        if (t && !set.live_tags.count(t) && !set.retired.count(t)) return t;
    }
}

int kernel_add(int epfd, const Registration& r) {
    lo::Connection& c = *r.s->smcd;
    epoll_event e{};
    e.events = EPOLLIN | EPOLLET;
    e.data.u64 = r.tag;
    for (int fd : {c.rx_wake_fd(), c.tx_wake_fd()}) {
        if (libc().epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0 && errno != EEXIST) return -1;
    }
    e.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    e.data.u64 = r.tag | kTcpBit;
    if (libc().epoll_ctl(epfd, EPOLL_CTL_ADD, c.tcp_fd(), &e) < 0 && errno != EEXIST) return -1;
    return 0;
}

void kernel_del(int epfd, const Registration& r) {
    lo::Connection& c = *r.s->smcd;
    for (int fd : {c.rx_wake_fd(), c.tx_wake_fd(), c.tcp_fd()}) libc().epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
}

void retire(EpollSet& set, int epfd, std::map<int, Registration>::iterator it) {
    kernel_del(epfd, it->second);
    set.live_tags.erase(it->second.tag);
    set.retired.insert(it->second.tag);
    set.retired_order.push_back(it->second.tag);
    if (set.retired_order.size() > 4096) {
        set.retired.erase(set.retired_order.front());
        set.retired_order.pop_front();
    }
    set.regs.erase(it);
}

uint32_t events_of(const lo::Readiness& r, uint32_t asked) {
    uint32_t ev = 0;
    if (r.in) ev |= asked & (EPOLLIN | EPOLLRDNORM);
    if (r.out) ev |= asked & (EPOLLOUT | EPOLLWRNORM);
    if (r.rdhup) ev |= asked & EPOLLRDHUP;
    if (r.hup) ev |= EPOLLHUP;
    if (r.err) ev |= EPOLLERR;
    return ev;
}

// Reports the ready registrations into out[0..max); returns how many.
int scan(EpollSet& set, int epfd, epoll_event* out, int max) {
    int n = 0;
    for (auto it = set.regs.begin(); it != set.regs.end() && n < max;) {
        Registration& r = it->second;
        if (r.s->released) {
            retire(set, epfd, it++);
            continue;
        }
        ++it;
        if (r.disabled) continue;
        lo::Connection& c = *r.s->smcd;
        uint32_t ev = events_of(c.readiness(), r.events);
        if (!ev) continue;
        if (r.events & EPOLLET) {
            const uint64_t rx = c.rx_mark(), tx = c.tx_mark();
            uint32_t edge = 0;
            if ((ev & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP)) && rx != r.rx_seen) {
                edge |= ev & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
                r.rx_seen = rx;
            }
            if ((ev & (EPOLLOUT | EPOLLWRNORM)) && tx != r.tx_seen) {
                edge |= ev & (EPOLLOUT | EPOLLWRNORM);
                r.tx_seen = tx;
            }
            if ((ev & (EPOLLHUP | EPOLLERR)) && !r.hup_seen) {
                edge |= ev & (EPOLLHUP | EPOLLERR);
                r.hup_seen = true;
            }
            ev = edge;
            if (!ev) continue;
        }
        out[n].events = ev;
        out[n].data = r.data;
        ++n;
        if (r.events & EPOLLONESHOT) r.disabled = true;
    }
    return n;
}

// Drops our own events from what the kernel returned (handling TCP ones); returns how many
// of the application's remain, moved to the front.
int filter(EpollSet& set, epoll_event* ev, int k) {
    int kept = 0;
    for (int i = 0; i < k; ++i) {
        const uint64_t tag = ev[i].data.u64 & ~kTcpBit;
        if (auto it = set.live_tags.find(tag); it != set.live_tags.end()) {
            if (ev[i].data.u64 & kTcpBit) {
                if (auto r = set.regs.find(it->second); r != set.regs.end()) r->second.s->smcd->on_tcp_event();
            }
            continue;
        }
        if (set.retired.count(tag)) continue;
        ev[kept++] = ev[i];
    }
    return kept;
}

std::shared_ptr<EpollSet> set_for(int epfd, bool create) {
    if (table().kind(epfd) == FdKind::Epoll) return table().get_as<EpollSet>(epfd);
    if (!create) return nullptr;
    auto set = std::make_shared<EpollSet>();
    table().put(epfd, FdKind::Epoll, set);
    return set;
}

int ctl_smcd(int epfd, int op, int fd, epoll_event* ev, std::shared_ptr<SocketState> s) {
    // The argument checks the kernel would make for this descriptor.
    if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL) {
        errno = EINVAL;
        return -1;
    }
    if (op != EPOLL_CTL_DEL && !ev) {
        errno = EFAULT;
        return -1;
    }
    if (epfd == fd) {
        errno = EINVAL;
        return -1;
    }
    auto set = set_for(epfd, op == EPOLL_CTL_ADD);
    if (!set) {
        errno = ENOENT;
        return -1;
    }
    std::lock_guard lock(set->mu);
    auto it = set->regs.find(fd);
    if (it != set->regs.end() && (it->second.s->released || it->second.s != s)) {
        retire(*set, epfd, it);  // a closed connection whose number came back
        it = set->regs.end();
    }
    if (op == EPOLL_CTL_ADD) {
        if (it != set->regs.end()) {
            log_debug("epoll_ctl(%d, ADD, %d): already registered", epfd, fd);
            errno = EEXIST;
            return -1;
        }
        Registration r;
        r.fd = fd;
        r.s = std::move(s);
        r.events = ev->events;
        r.data = ev->data;
        r.tag = new_tag(*set);
        if (kernel_add(epfd, r) < 0) {
            const int err = errno;
            log_debug("epoll_ctl(%d, ADD, %d): cannot watch the connection: %s", epfd, fd, std::strerror(err));
            kernel_del(epfd, r);
            errno = err;
            return -1;
        }
        set->live_tags[r.tag] = fd;
        set->regs.emplace(fd, std::move(r));
        return 0;
    }
    if (it == set->regs.end()) {
        log_debug("epoll_ctl(%d, %s, %d): not registered", epfd, op == EPOLL_CTL_DEL ? "DEL" : "MOD", fd);
        errno = ENOENT;
        return -1;
    }
    if (op == EPOLL_CTL_DEL) {
        retire(*set, epfd, it);
        return 0;
    }
    Registration& r = it->second;
    r.events = ev->events;
    r.data = ev->data;
    r.rx_seen = r.tx_seen = ~0ULL;
    r.hup_seen = false;
    r.disabled = false;
    return 0;
}

}  // namespace

int on_epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    InsideShunt guard;
    const FdKind k = table().kind(fd);
    if (k == FdKind::PendingTcp) smcd_state(fd);  // a TCP client, listed once connected
    if (k == FdKind::Smcd) {
        auto s = table().get_as<SocketState>(fd);
        if (s && s->smcd) return ctl_smcd(epfd, op, fd, ev, std::move(s));
    }
    if (auto set = set_for(epfd, false)) {
        // A stale registration under this number (its connection closed) gives way.
        std::lock_guard lock(set->mu);
        if (auto it = set->regs.find(fd); it != set->regs.end()) retire(*set, epfd, it);
    }
    const int r = libc().epoll_ctl(epfd, op, fd, ev);
    if (r == 0 && k == FdKind::Socket) {
        // A socket not connected yet may still become SMC-D: remember what was asked.
        if (auto s = table().get_as<SocketState>(fd)) {
            std::lock_guard lock(s->mu);
            if (s->phase == SocketState::Phase::Fresh) {
                auto& early = s->early_epoll;
                std::erase_if(early, [epfd](const auto& e) { return e.first == epfd; });
                if (op != EPOLL_CTL_DEL && ev) early.emplace_back(epfd, *ev);
            }
        }
    }
    return r;
}

void adopt_early_epoll(int fd, SocketState& s) {
    InsideShunt guard;
    auto early = std::exchange(s.early_epoll, {});
    auto self = table().get_as<SocketState>(fd);
    for (auto& [epfd, ev] : early) {
        if (libc().epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr) < 0) continue;  // gone meanwhile
        ctl_smcd(epfd, EPOLL_CTL_ADD, fd, &ev, self);
    }
}

int on_epoll_wait(int epfd, epoll_event* events, int maxevents, const timespec* timeout, const sigset_t* mask) {
    auto set = set_for(epfd, false);
    if (!set || maxevents <= 0) {
        if (timeout && libc().epoll_pwait2) return libc().epoll_pwait2(epfd, events, maxevents, timeout, mask);
        const int ms = timeout ? static_cast<int>(timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000) : -1;
        return libc().epoll_pwait(epfd, events, maxevents, ms, mask);
    }
    InsideShunt guard;
    const auto deadline = deadline_after(timeout);

    // The rings first, then whatever the kernel has without waiting.
    auto look = [&](bool kernel_too) {
        std::lock_guard lock(set->mu);
        int n = scan(*set, epfd, events, maxevents);
        if (kernel_too && n < maxevents) {
            const int k = libc().epoll_wait(epfd, events + n, maxevents - n, 0);
            if (k > 0) n += filter(*set, events + n, k);
        }
        return n;
    };
    if (const int n = look(true); n > 0 || remaining_ms(deadline) == 0) return n;

    const auto spin = config().lo.spin;
    if (spin.count() > 0) {
        const auto until = std::min(Clock::now() + spin, deadline.value_or(Clock::time_point::max()));
        for (unsigned i = 1;; ++i) {
            cpu_relax();
            if (const int n = look((i & 31) == 0); n > 0) return n;
            if ((i & 63) == 0 && Clock::now() >= until) break;
        }
    }

    for (;;) {
        {
            std::lock_guard lock(set->mu);
            for (auto& [fd, r] : set->regs) {
                if (r.disabled || r.s->released) continue;
                lo::Connection& c = *r.s->smcd;
                const bool want_in = r.events & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
                const bool want_out = (r.events & (EPOLLOUT | EPOLLWRNORM)) && !c.readiness().out;
                c.arm(want_in, want_out);
            }
            if (const int n = scan(*set, epfd, events, maxevents); n > 0) return n;
        }
        const int ms = remaining_ms(deadline);
        const int k = libc().epoll_pwait(epfd, events, maxevents, ms, mask);
        if (k < 0) return -1;
        std::lock_guard lock(set->mu);
        int n = filter(*set, events, k);
        if (n < maxevents) n += scan(*set, epfd, events + n, maxevents - n);
        if (n > 0 || remaining_ms(deadline) == 0) return n;
    }
}

}  // namespace shunt::preload
