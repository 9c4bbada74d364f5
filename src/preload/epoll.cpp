// epoll over sets that hold accelerated connections.
//
// The application's epoll set stays a real kernel epoll set: its plain descriptors are
// registered as the application asks. An accelerated connection is not (its TCP socket would
// look always writable and never readable); instead the set holds, edge-triggered and tagged
// with a random 64-bit value of ours, the connection's two eventfds (the peer signals them
// when data arrives or space frees, if we asked) and a private duplicate of its TCP socket
// (EOF there means the peer died). Events carrying our tags are consumed here and never reach
// the application.
//
// Looking at a connection's rings costs cache misses on lines the peer writes, so a call must
// not look at every connection in the set (redis has one per client). Each registration is
// either *listed* (looked at on every call) or *armed* (its reader/writer "wake me" flag is set,
// so the peer's next change signals an eventfd, which lists it again). A listed registration
// that is found idle is armed and leaves the list. In a small set with spinning enabled the
// idle ones stay listed, unarmed, while we spin, so a busy peer pays no syscall; they are armed
// only before we sleep in the kernel.
//
// Per registration we keep what the application asked (events, data, EPOLLET, EPOLLONESHOT,
// EPOLLRDHUP). Level-triggered reports whatever is ready. Edge-triggered reports EPOLLIN when
// the peer's producer cursor (or its close flags) moved since we last reported it, EPOLLOUT
// when its consumer cursor moved (first report right after ADD/MOD, as the kernel does).
// EPOLL_CTL_DEL only parks a registration (its eventfds stay in the kernel set, silent), so the
// DEL/ADD pair an ae-style loop issues per request costs no syscall. A connection whose last
// descriptor is closed leaves the set for good at the next call; the same descriptor number may
// then be registered again for something else.
#include <sys/epoll.h>
#include <sys/eventfd.h>

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
#include "core/spin.hpp"
#include "preload/config.hpp"
#include "preload/deadline.hpp"
#include "preload/guard.hpp"
#include "preload/log.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {

constexpr uint64_t kTcpBit = 1;  // low bit of a tag: the event came from the TCP socket
// Sets up to this size keep idle registrations listed and unarmed while spinning.
constexpr size_t kSpinListLimit = 8;

struct Registration {
    int fd = -1;
    std::shared_ptr<SocketState> s;
    uint32_t events = 0;
    epoll_data_t data{};
    uint64_t tag = 0;  // even; tag | kTcpBit for the TCP socket
    uint64_t rx_seen = ~0ULL, tx_seen = ~0ULL;
    bool hup_seen = false;
    bool active = true;     // false: parked by EPOLL_CTL_DEL
    bool disabled = false;  // EPOLLONESHOT fired, until EPOLL_CTL_MOD
    bool listed = false;    // in EpollSet::listed
};

struct EpollSet : Tracked {
    std::mutex mu;
    std::map<int, Registration> regs;                     // by application descriptor
    std::unordered_map<uint64_t, Registration*> live_tags;
    std::vector<Registration*> listed;                    // looked at on every call
    std::unordered_set<uint64_t> retired;  // tags removed recently: their events may still come
    std::deque<uint64_t> retired_order;
    uint64_t swept = 0;  // release_generation() at the last sweep
    int sleepers = 0;    // threads waiting in the kernel on this set
    // The set's own descriptor is watched by another epoll set or by poll/select: a listed
    // registration must then also make the kernel set readable (a signal on its eventfd).
    bool nested = false;
    std::vector<Registration*> reported;  // scratch for look_listed
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

// Makes the kernel set show an event for `r` (its eventfds are edge-triggered there): for a
// thread already asleep in it, or for a watcher of the set's own descriptor (nested).
void nudge(const Registration& r) { ::eventfd_write(r.s->smcd->rx_wake_fd(), 1); }

void list(EpollSet& set, Registration& r) {
    if (r.listed) return;
    r.listed = true;
    set.listed.push_back(&r);
}

void retire(EpollSet& set, int epfd, std::map<int, Registration>::iterator it) {
    Registration& r = it->second;
    kernel_del(epfd, r);
    if (r.listed) std::erase(set.listed, &r);
    set.live_tags.erase(r.tag);
    set.retired.insert(r.tag);
    set.retired_order.push_back(r.tag);
    if (set.retired_order.size() > 4096) {
        set.retired.erase(set.retired_order.front());
        set.retired_order.pop_front();
    }
    set.regs.erase(it);
}

// A connection that moved to TCP is the kernel's again: the application's registration goes
// into the kernel set as it was asked (one whose EPOLLONESHOT fired waits there for a MOD).
void hand_to_kernel(int epfd, const Registration& r) {
    if (!r.active) return;  // parked by EPOLL_CTL_DEL: the application let go of it
    epoll_event e{};
    e.events = r.disabled ? r.events & (EPOLLET | EPOLLONESHOT) : r.events;
    e.data = r.data;
    if (libc().epoll_ctl(epfd, EPOLL_CTL_ADD, r.fd, &e) < 0 && errno == EEXIST)
        libc().epoll_ctl(epfd, EPOLL_CTL_MOD, r.fd, &e);
}

// Drops the registrations of connections closed, and hands to the kernel those of connections
// moved to TCP, since the last sweep.
void sweep(EpollSet& set, int epfd) {
    const uint64_t gen = release_generation();
    if (gen == set.swept) return;
    set.swept = gen;
    for (auto it = set.regs.begin(); it != set.regs.end();) {
        const SocketState& s = *it->second.s;
        if (s.released) {
            retire(set, epfd, it++);
        } else if (s.smcd->moved()) {
            SavedErrno keep;
            hand_to_kernel(epfd, it->second);
            retire(set, epfd, it++);
        } else {
            ++it;
        }
    }
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

// What to report for `r` now (0: nothing). `take` remembers it, for edge-triggered
// registrations; without it this only asks.
uint32_t due(Registration& r, bool take = true) {
    lo::Connection& c = *r.s->smcd;
    if (c.moved()) return 0;  // the kernel answers for it once swept
    uint32_t ev = events_of(c.readiness(), r.events);
    if (!ev || !(r.events & EPOLLET)) return ev;
    const uint64_t rx = c.rx_mark(), tx = c.tx_mark();
    uint32_t edge = 0;
    if ((ev & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP)) && rx != r.rx_seen) {
        edge |= ev & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
        if (take) r.rx_seen = rx;
    }
    if ((ev & (EPOLLOUT | EPOLLWRNORM)) && tx != r.tx_seen) {
        edge |= ev & (EPOLLOUT | EPOLLWRNORM);
        if (take) r.tx_seen = tx;
    }
    if ((ev & (EPOLLHUP | EPOLLERR)) && !r.hup_seen) {
        edge |= ev & (EPOLLHUP | EPOLLERR);
        if (take) r.hup_seen = true;
    }
    return edge;
}

// Asks the peer to signal `r`'s next change.
void arm(Registration& r) {
    lo::Connection& c = *r.s->smcd;
    const bool want_in = r.events & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
    const bool want_out = (r.events & (EPOLLOUT | EPOLLWRNORM)) && !c.readiness().out;
    c.arm(want_in, want_out, /*drain=*/false);
}

// For a set whose kernel side others rely on (a waiting thread, a watcher of the nested set):
// a due registration makes the kernel set show an event; an idle one is armed, so the peer's
// next change will. Returns whether `r` is due.
bool show_in_kernel(Registration& r) {
    if (!r.active || r.disabled) return false;
    if (!due(r, false)) arm(r);
    if (!due(r, false)) return false;
    nudge(r);
    return true;
}

// Looks at the listed registrations from index `from` on, reporting the due ones into
// out[0..max); returns how many. A registration with nothing due is armed and unlisted when
// `arm_idle`, otherwise it stays listed (we keep looking at it ourselves).
int look_listed(EpollSet& set, epoll_event* out, int max, bool arm_idle, size_t from = 0) {
    int n = 0;
    size_t keep = from;
    arm_idle = arm_idle || set.nested;
    set.reported.clear();  // reported and still listed: they move to the back, so that with a
                           // small maxevents every ready registration gets its turn
    for (size_t i = from; i < set.listed.size(); ++i) {
        Registration* r = set.listed[i];
        bool stay = false;
        // Moved to TCP (an exec): leaves the emulation at the next sweep.
        if (r->s->smcd->handed_off() && settle_hand_off(*r->s)) {
            r->listed = false;
            continue;
        }
        if (r->active && !r->disabled && !r->s->released) {
            stay = true;
            if (n < max) {
                uint32_t ev = due(*r);
                if (!ev && arm_idle) {
                    arm(*r);
                    ev = due(*r);  // a change that came before the flag was up
                    stay = ev != 0;
                }
                if (ev) {
                    out[n].events = ev;
                    out[n].data = r->data;
                    ++n;
                    if (r->events & EPOLLONESHOT) {
                        r->disabled = true;
                        stay = false;
                    } else {
                        set.reported.push_back(r);
                        continue;
                    }
                }
            }
        }
        if (stay) set.listed[keep++] = r;
        else r->listed = false;
    }
    set.listed.resize(keep);
    set.listed.insert(set.listed.end(), set.reported.begin(), set.reported.end());
    if (set.nested) {
        // Still listed means due (idle ones were armed): the kernel set must keep saying so.
        for (size_t i = from; i < set.listed.size(); ++i)
            if (due(*set.listed[i], false)) nudge(*set.listed[i]);
    }
    return n;
}

// Drops our own events from what the kernel returned, listing their registrations (and
// handling TCP ones); returns how many of the application's remain, moved to the front.
int filter(EpollSet& set, epoll_event* ev, int k) {
    int kept = 0;
    for (int i = 0; i < k; ++i) {
        const uint64_t tag = ev[i].data.u64 & ~kTcpBit;
        if (auto it = set.live_tags.find(tag); it != set.live_tags.end()) {
            Registration& r = *it->second;
            if (ev[i].data.u64 & kTcpBit) r.s->smcd->on_tcp_event();
            if (r.active) list(set, r);
            continue;
        }
        if (set.retired.count(tag)) continue;
        ev[kept++] = ev[i];
    }
    return kept;
}

// The k events the kernel returned into out[]: the application's, then what the
// registrations they listed have due; returns how many, at most `max`.
int absorb(EpollSet& set, epoll_event* out, int k, int max, bool arm_idle) {
    const size_t from = set.listed.size();
    const int n = filter(set, out, k);
    return n + look_listed(set, out + n, max - n, arm_idle, from);
}

// The events the kernel holds (without waiting), absorbed.
int take_kernel(EpollSet& set, int epfd, epoll_event* out, int max, bool arm_idle) {
    if (max <= 0) return 0;
    const int k = libc().epoll_wait(epfd, out, max, 0);
    return k > 0 ? absorb(set, out, k, max, arm_idle) : 0;
}

std::shared_ptr<EpollSet> set_for(int epfd) {
    return table().kind(epfd) == FdKind::Epoll ? table().get_as<EpollSet>(epfd) : nullptr;
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
    auto set = set_for(epfd);
    bool created = false;
    if (!set) {
        // The kernel knows whether epfd is an epoll set at all (EBADF, EINVAL) and, if it is,
        // that this connection is not in it (ENOENT).
        if (op != EPOLL_CTL_ADD) return libc().epoll_ctl(epfd, op, fd, ev);
        if (table().kind(epfd) != FdKind::None) {  // one of the sockets we follow: not epoll
            errno = EINVAL;
            return -1;
        }
        // Recorded before our entries reach the kernel set: a thread already waiting on it
        // must recognise their events. Undone below if the kernel refuses them.
        static std::mutex creating;
        std::lock_guard c(creating);
        if (!(set = set_for(epfd))) {
            set = std::make_shared<EpollSet>();
            table().put(epfd, FdKind::Epoll, set);
            created = true;
        }
    }
    std::lock_guard lock(set->mu);
    auto it = set->regs.find(fd);
    if (it != set->regs.end() && (it->second.s->released || it->second.s != s)) {
        retire(*set, epfd, it);  // a closed connection whose number came back
        it = set->regs.end();
    }
    const bool registered = it != set->regs.end() && it->second.active;
    if (op == EPOLL_CTL_ADD && registered) {
        log_debug("epoll_ctl(%d, ADD, %d): already registered", epfd, fd);
        errno = EEXIST;
        return -1;
    }
    if (op != EPOLL_CTL_ADD && !registered) {
        log_debug("epoll_ctl(%d, %s, %d): not registered", epfd, op == EPOLL_CTL_DEL ? "DEL" : "MOD", fd);
        errno = ENOENT;
        return -1;
    }
    if (op == EPOLL_CTL_DEL) {
        it->second.active = false;  // parked: a later ADD of this connection reuses it
        return 0;
    }
    if (it == set->regs.end()) {
        Registration r;
        r.fd = fd;
        r.s = std::move(s);
        r.tag = new_tag(*set);
        if (kernel_add(epfd, r) < 0) {
            const int err = errno;
            log_debug("epoll_ctl(%d, ADD, %d): cannot watch the connection: %s", epfd, fd, std::strerror(err));
            kernel_del(epfd, r);
            if (created) table().take(epfd);  // not an epoll set after all (EBADF, EINVAL)
            errno = err;
            return -1;
        }
        it = set->regs.emplace(fd, std::move(r)).first;
        set->live_tags[it->second.tag] = &it->second;
    }
    // ADD (new or parked) and MOD: as asked, reported afresh.
    Registration& r = it->second;
    r.events = ev->events;
    r.data = ev->data;
    r.rx_seen = r.tx_seen = ~0ULL;
    r.hup_seen = false;
    r.active = true;
    r.disabled = false;
    list(*set, r);
    // A thread waiting in the kernel on this set (maybe since before it held a connection), or
    // a watcher of the set's own descriptor, must hear of it.
    if (created || set->sleepers > 0 || set->nested) show_in_kernel(r);
    return 0;
}

}  // namespace

void mark_nested(int epfd) {
    auto set = set_for(epfd);
    if (!set) return;
    std::lock_guard lock(set->mu);
    if (set->nested) return;
    set->nested = true;
    // From now on a listed registration must show in the kernel set; idle ones leave the list
    // armed (the unlisted ones are armed already).
    std::erase_if(set->listed, [](Registration* r) { return !(r->listed = show_in_kernel(*r)); });
}

int on_epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    InsideShunt guard;
    const FdKind k = table().kind(fd);
    if (k == FdKind::Epoll && op != EPOLL_CTL_DEL) mark_nested(fd);
    if (k == FdKind::PendingTcp) smcd_state(fd);  // a TCP client, listed once connected
    if (k == FdKind::Smcd) {
        auto s = table().get_as<SocketState>(fd);
        if (s && s->smcd) return ctl_smcd(epfd, op, fd, ev, std::move(s));
    }
    if (auto set = set_for(epfd)) {
        // A stale registration under this number (its connection closed) gives way; one whose
        // connection moved to TCP since the last sweep goes into the kernel set first, so that
        // this MOD or DEL finds it there.
        std::lock_guard lock(set->mu);
        if (auto it = set->regs.find(fd); it != set->regs.end()) {
            if (!it->second.s->released && it->second.s->smcd->moved()) hand_to_kernel(epfd, it->second);
            retire(*set, epfd, it);
        }
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
    auto set = set_for(epfd);
    const auto deadline = deadline_after(timeout);
    if (!set || maxevents <= 0) {
        int k;
        if (timeout && libc().epoll_pwait2) k = libc().epoll_pwait2(epfd, events, maxevents, timeout, mask);
        else {
            const int ms = timeout ? static_cast<int>(timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000) : -1;
            k = libc().epoll_pwait(epfd, events, maxevents, ms, mask);
        }
        // Another thread may have added a connection meanwhile: its events are ours.
        if (k <= 0 || !(set = set_for(epfd))) return k;
        InsideShunt guard;
        std::lock_guard lock(set->mu);
        if (const int n = absorb(*set, events, k, maxevents, true); n > 0 || remaining_ms(deadline) == 0) return n;
    }
    InsideShunt guard;
    // Spin, if this thread's recent waits say it pays (core/spin.hpp).
    thread_local SpinPolicy policy;
    policy.set_budget(config().lo.spin);
    WaitEpisode wait;
    auto limit = wait.plan(policy);
    if (deadline) limit = std::min<std::chrono::nanoseconds>(limit, *deadline - Clock::now());

    // What is ready now: the listed registrations, then what the kernel holds. `watching`:
    // some idle registrations stay listed for us to look at while spinning.
    bool watching = false;
    auto look = [&](bool kernel_too) {
        std::lock_guard lock(set->mu);
        sweep(*set, epfd);
        // In a small set idle registrations stay listed and unarmed while we spin.
        // (whether spinning is on at all, not whether this call spins: a call that will not
        // spin, such as one with a zero timeout, arms nothing that a later call may watch)
        const bool arm_idle = config().lo.spin.count() == 0 || set->regs.size() > kSpinListLimit;
        int n = look_listed(*set, events, maxevents, arm_idle);
        if (kernel_too) n += take_kernel(*set, epfd, events + n, maxevents - n, arm_idle);
        watching = !set->listed.empty();
        return n;
    };
    if (const int n = look(true); n > 0 || remaining_ms(deadline) == 0) return n;

    // Armed registrations show up only in the kernel: ask it every time unless some are
    // listed for us to watch.
    int found = 0;
    unsigned looks = 0;
    if (wait.spin(limit, [&] { return (found = look(!watching || (++looks & 31) == 0)) > 0; })) {
        wait.done(policy);
        return found;
    }
    wait.sleeping();

    for (;;) {
        {
            std::lock_guard lock(set->mu);
            sweep(*set, epfd);
            // Arms every idle registration: from here on each change is signalled.
            if (const int n = look_listed(*set, events, maxevents, true); n > 0) return n;
            ++set->sleepers;
        }
        const int k = libc().epoll_pwait(epfd, events, maxevents, remaining_ms(deadline), mask);
        std::lock_guard lock(set->mu);
        --set->sleepers;
        if (k < 0) return -1;
        if (const int n = absorb(*set, events, k, maxevents, true); n > 0 || remaining_ms(deadline) == 0) {
            wait.done(policy);
            return n;
        }
    }
}

}  // namespace shunt::preload
