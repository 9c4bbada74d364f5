// Socket life cycle under the preload: which sockets we follow, the rendezvous and handshake
// inside listen()/accept()/connect(), and letting go in close()/dup2().
//
// The handshake runs inside the call that creates the connection, before the application
// sees it: accept() returns a socket that is already SMC-D or TCP, and connect() returns (0,
// or -1/EINPROGRESS on a non-blocking socket, exactly as the kernel answered) only once the
// handshake is over. So no readiness is ever reported early, no CLC byte is ever visible to
// the application, and a server that speaks first (SMTP, MySQL) works without any event
// from the client. The price: a non-blocking connect() to a shunt listener waits for the
// server to accept (microseconds on one host; at most SHUNT_CLC_TIMEOUT_MS, then TCP).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <linux/sockios.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lo/engine.hpp"
#include "lo/handshake.hpp"
#include "lo/source_address.hpp"
#include "preload/config.hpp"
#include "preload/guard.hpp"
#include "preload/log.hpp"
#include "preload/ops.hpp"
#include "preload/own_listeners.hpp"
#include "preload/real.hpp"
#include "shunt/decline.hpp"

namespace shunt::preload {
namespace {

constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }
FdTable& table() { return FdTable::instance(); }

// What every handshake of this process uses, or why none can run.
struct Setup {
    lo::HandshakeConfig cfg;
    uint32_t unusable = 0;
};

const Setup& setup() {
    static const Setup s = [] {
        InsideShunt guard;
        Setup out;
        const Config& c = config();
        auto rundir = lo::Engine::instance().rundir(c.lo.rundir);
        if (!rundir) {
            log_always("rendezvous directory unusable (%s): connections stay TCP", rundir.error().c_str());
            out.unusable = code(DeclineCode::CnfErr);
            return out;
        }
        if (!clc::make_ueid(c.lo.ueid, out.cfg.ueid)) {
            log_always("UEID '%s' is not valid: connections stay TCP", c.lo.ueid.c_str());
            out.unusable = code(DeclineCode::NoUeid);
            return out;
        }
        out.cfg.rundir = *rundir;
        out.cfg.buffer_size = c.lo.buffer_size;
        out.cfg.timeout = c.lo.clc_timeout;
        out.cfg.spin = lo::handshake_spin(c.lo.spin);
        return out;
    }();
    return s;
}

std::string describe(const IpPort& ep) {
    // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict for "[" + std::string.
    std::string out;
    if (!ep.is_v4()) out += '[';
    out += ep.ip_string();
    if (!ep.is_v4()) out += ']';
    out += ':';
    out += std::to_string(ep.port);
    return out;
}

// Descriptors of our own (a connection's TCP duplicate, its eventfds) go high, out of the
// application's way: programs size tables by the descriptors they expect to see (wrk's event
// loop holds 10 + 3 per connection) and select() needs its own below 1024.
int high_fd_floor() {
    static const int floor = [] {
        rlimit rl{};
        if (::getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return 512;
        return static_cast<int>(std::max<rlim_t>(rl.rlim_cur / 2, 64));
    }();
    return floor;
}

int private_dup(int fd) {
    const int high = libc().fcntl(fd, F_DUPFD_CLOEXEC, high_fd_floor());
    return high >= 0 ? high : libc().fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

void move_high(UniqueFd& fd) {
    if (!fd || fd.get() >= high_fd_floor()) return;
    const int high = libc().fcntl(fd.get(), F_DUPFD_CLOEXEC, high_fd_floor());
    if (high >= 0) fd = UniqueFd(high);
}

void move_high(lo::Link& link) {
    for (UniqueFd* fd : {&link.rx_wake, &link.tx_wake, &link.peer_rx_wake, &link.peer_tx_wake}) move_high(*fd);
}

void list_tcp(SocketState& s, int fd, bool server, uint32_t reason, uint32_t peer_reason) {
    InsideShunt guard;
    s.conn = lo::Connection::tcp_record(fd, server, reason, peer_reason);
}

std::atomic<uint64_t> g_releases{0};

// A connection's own descriptors are entered as FdKind::Private: the application's close()
// and close_range() pass them by.
void protect(const lo::Connection& c) {
    static const auto marker = std::make_shared<Tracked>();
    for (int fd : c.own_fds()) table().put(fd, FdKind::Private, marker);
}

// The last descriptor of `t` in this process is gone.
void release(Tracked& t) {
    auto* s = dynamic_cast<SocketState*>(&t);
    if (!s) return;
    InsideShunt guard;
    std::lock_guard lock(s->mu);
    s->released = true;  // epoll sets let go of it at their next look
    g_releases.fetch_add(1, std::memory_order_release);
    if (s->conn) s->conn->release();
    s->registration.reset();
}

}  // namespace

uint64_t release_generation() { return g_releases.load(std::memory_order_acquire); }

void demote_moved(SocketState& s) {
    table().change_kind(&s, FdKind::Smcd, FdKind::Socket);
    g_releases.fetch_add(1, std::memory_order_release);  // epoll sets hand it to the kernel
}

bool settle_hand_off(SocketState& s) {
    lo::Connection* c = s.smcd;
    if (!c || !c->handed_off()) return false;
    InsideShunt guard;
    SavedErrno keep;
    const bool first = !c->moved();
    c->take_over();
    demote_moved(s);
    if (first) log_debug("connection moved to TCP by the other side (an exec, or urgent data)");
    return true;
}

int on_socket(int domain, int type, int protocol) {
    const int fd = libc().socket(domain, type, protocol);
    if (fd < 0) return fd;
    if ((domain == AF_INET || domain == AF_INET6) && (type & 0xff) == SOCK_STREAM &&
        (protocol == 0 || protocol == IPPROTO_TCP))
        table().put(fd, FdKind::Socket, std::make_shared<SocketState>(domain, (type & SOCK_NONBLOCK) != 0));
    return fd;
}

int on_listen(int fd, int backlog) {
    const int r = libc().listen(fd, backlog);
    auto s = table().get_as<SocketState>(fd);
    if (r < 0 || !s) return r;
    SavedErrno keep;
    InsideShunt guard;
    std::lock_guard lock(s->mu);
    if (s->phase != SocketState::Phase::Fresh) return r;
    s->phase = SocketState::Phase::Listening;
    const auto bound = local_endpoint(fd);
    if (!bound) {
        s->listen_reason = code(DeclineCode::CnfErr);
    } else if ((s->listen_reason = setup().unusable) == 0) {
        if (!config().allowed(*bound, true)) {
            s->listen_reason = code(DeclineCode::NoSmcDev);
        } else if (auto reg = setup().cfg.rundir->register_listener(*bound)) {
            s->registration = std::move(*reg);
            s->rundir = setup().cfg.rundir;
            s->listen_port = bound->port;
            own_listeners::add(bound->port);
        } else {
            s->listen_reason = code(DeclineCode::CnfErr);
            log_always("cannot register listener %s: %s", describe(*bound).c_str(), std::strerror(reg.error()));
        }
    }
    if (bound) log_debug("listen %s: %s", describe(*bound).c_str(), s->listen_reason ? decline_name(s->listen_reason).c_str() : "shunt listener");
    return r;
}

int on_accept(int lfd, sockaddr* addr, socklen_t* len, int flags) {
    auto listener = table().get_as<SocketState>(lfd);
    if (!listener || listener->phase != SocketState::Phase::Listening) return libc().accept4(lfd, addr, len, flags);
    for (;;) {
        const int fd = libc().accept4(lfd, addr, len, flags);
        if (fd < 0) return fd;
        SavedErrno keep;
        auto s = std::make_shared<SocketState>(listener->domain, (flags & SOCK_NONBLOCK) != 0);
        s->phase = SocketState::Phase::Connected;
        uint32_t reason = listener->listen_reason;
        const int tcp = reason ? -1 : private_dup(fd);
        if (!reason && tcp < 0) reason = code(DeclineCode::Mem);
        if (reason) {
            lo::Engine::instance().count_fallback(true, reason);
            list_tcp(*s, fd, true, reason, 0);
            table().put(fd, FdKind::Socket, s);
            return fd;
        }
        InsideShunt guard;
        lo::HandshakeResult r = lo::server_handshake(fd, setup().cfg);
        if (r.aborted) {
            // The client already counts the connection as SMC-D: it cannot go on. Reset it.
            libc().close(tcp);
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            libc().close(fd);
            lo::Engine::instance().counters().handshake_errors.fetch_add(1);
            log_debug("accept: handshake failed after the client committed (%s); connection reset", decline_name(r.reason).c_str());
            continue;
        }
        auto& e = lo::Engine::instance();
        if (r.link) {
            e.counters().server_smcd.fetch_add(1);
            move_high(*r.link);
            s->conn = std::make_shared<lo::Connection>(UniqueFd(tcp), true, std::move(*r.link), setup().cfg.spin);
            s->smcd = s->conn.get();
            protect(*s->conn);
            table().put(fd, FdKind::Smcd, s);
            log_debug("accept fd %d: SMCD", fd);
        } else {
            libc().close(tcp);
            if (r.reason != code(DeclineCode::PeerNoSmc) && r.reason != code(DeclineCode::PeerDecl))
                e.counters().handshake_errors.fetch_add(1);
            e.count_fallback(true, r.reason);
            s->conn = lo::Connection::tcp_record(fd, true, r.reason, r.peer_reason);
            table().put(fd, FdKind::Socket, s);
            log_debug("accept fd %d: TCP (%s)", fd, decline_name(r.peer_reason ? r.peer_reason : r.reason).c_str());
        }
        return fd;
    }
}

// How long connect() waits for another thread of this process to accept (own_listeners.hpp).
constexpr std::chrono::milliseconds kOwnListenerTimeout{200};

int on_connect(int fd, const sockaddr* addr, socklen_t len) {
    auto s = table().get_as<SocketState>(fd);
    if (!s || !addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return libc().connect(fd, addr, len);
    std::unique_lock lock(s->mu);
    if (s->phase != SocketState::Phase::Fresh) {
        lock.unlock();
        return libc().connect(fd, addr, len);
    }
    auto dest = IpPort::from_sockaddr(addr);
    // connect() to 0.0.0.0 or :: reaches this host's loopback (sockperf's default): the
    // server sees 127.0.0.1 / ::1, and so must the tuple we announce.
    if (dest && dest->is_wildcard()) dest = IpPort::parse(dest->is_v4() ? "127.0.0.1" : "::1", dest->port);
    uint32_t reason = setup().unusable;
    {
        InsideShunt guard;
        if (!reason && (!dest || !config().allowed(*dest, false))) reason = code(DeclineCode::NoSmcDev);
        if (!reason && !setup().cfg.rundir->has_live_listener(*dest)) reason = code(DeclineCode::PeerNoSmc);
        if (!reason && own_listeners::has(dest->port) && own_listeners::single_threaded())
            reason = code(DeclineCode::SameProcess);
    }
    auto stay_tcp = [&](uint32_t why) {
        s->phase = SocketState::Phase::Connected;
        s->pending_reason = why;
        lo::Engine::instance().count_fallback(false, why);
        table().set_kind(fd, FdKind::PendingTcp);
        if (dest) log_debug("connect fd %d to %s: TCP (%s)", fd, describe(*dest).c_str(), decline_name(why).c_str());
        const int r = libc().connect(fd, addr, len);
        if (r == 0) {  // connected already: list it now
            SavedErrno keep;
            list_tcp(*s, fd, false, why, 0);
            table().set_kind(fd, FdKind::Socket);
        }
        return r;
    };
    if (reason) return stay_tcp(reason);

    // The peer is a live shunt listener on this host: bind, announce the 4-tuple, connect.
    std::optional<IpPort> bound;
    std::optional<lo::Announcement> ann;
    int tcp = -1;
    {
        InsideShunt guard;
        SavedErrno keep;
        bound = local_endpoint(fd);
        if (!bound || bound->port == 0) bound = lo::bind_source_for(fd, addr, len);
        if (bound) {
            if (auto a = setup().cfg.rundir->announce(lo::FourTuple{*bound, *dest})) ann = std::move(*a);
        }
        if (ann) tcp = private_dup(fd);
    }
    if (!ann) return stay_tcp(code(DeclineCode::CnfErr));
    if (tcp < 0) return stay_tcp(code(DeclineCode::Mem));

    int r = libc().connect(fd, addr, len);
    const int err = errno;
    if (r < 0 && err != EINPROGRESS) {
        libc().close(tcp);
        return r;  // refused, unreachable: the socket stays Fresh, as the kernel's does
    }
    InsideShunt guard;
    if (r < 0) {
        // Wait for the three-way handshake (one host: microseconds) without consuming its
        // result: a failure is left for the application's SO_ERROR.
        pollfd p{fd, POLLOUT, 0};
        const int ms = static_cast<int>(setup().cfg.timeout.count());
        while (libc().poll(&p, 1, ms) < 0 && errno == EINTR) {
        }
        if (!(p.revents & POLLOUT) || (p.revents & (POLLERR | POLLHUP))) {
            libc().close(tcp);
            s->phase = SocketState::Phase::Connected;
            errno = err;
            return r;
        }
    }
    lo::HandshakeConfig cfg = setup().cfg;
    // Our own listener: if no other thread accepts soon, the caller itself will, after we return.
    if (own_listeners::has(dest->port)) cfg.timeout = std::min(cfg.timeout, kOwnListenerTimeout);
    lo::HandshakeResult h = lo::client_handshake(fd, *ann, lo::FourTuple{*bound, *dest}, cfg);
    auto& e = lo::Engine::instance();
    s->phase = SocketState::Phase::Connected;
    if (h.link) {
        e.counters().client_smcd.fetch_add(1);
        move_high(*h.link);
        s->conn = std::make_shared<lo::Connection>(UniqueFd(tcp), false, std::move(*h.link), setup().cfg.spin);
        s->smcd = s->conn.get();
        protect(*s->conn);
        table().set_kind(fd, FdKind::Smcd);
        adopt_early_epoll(fd, *s);
        log_debug("connect fd %d to %s: SMCD", fd, describe(*dest).c_str());
    } else {
        libc().close(tcp);
        if (h.reason != code(DeclineCode::PeerNoSmc) && h.reason != code(DeclineCode::PeerDecl))
            e.counters().handshake_errors.fetch_add(1);
        e.count_fallback(false, h.reason);
        s->conn = lo::Connection::tcp_record(fd, false, h.reason, h.peer_reason);
        log_debug("connect fd %d to %s: TCP (%s)", fd, describe(*dest).c_str(),
                  decline_name(h.peer_reason ? h.peer_reason : h.reason).c_str());
    }
    errno = err;
    return r;
}

std::shared_ptr<SocketState> smcd_state(int fd) {
    // Only sockets are ever entered under these kinds (checked with the entry, under the
    // table's lock), so the data path needs no dynamic cast.
    const FdKind k = table().kind(fd);
    if (k == FdKind::Smcd) {
        auto s = std::static_pointer_cast<SocketState>(table().get(fd, FdKind::Smcd));
        return s && settle_hand_off(*s) ? nullptr : s;
    }
    if (k == FdKind::PendingTcp) {
        // A TCP client listed in `shunt stat` once its connection exists.
        auto s = std::static_pointer_cast<SocketState>(table().get(fd, FdKind::PendingTcp));
        if (!s) return nullptr;
        InsideShunt guard;
        SavedErrno keep;
        std::lock_guard lock(s->mu);
        if (!s->conn && peer_endpoint(fd)) {
            s->conn = lo::Connection::tcp_record(fd, false, s->pending_reason, 0);
            table().set_kind(fd, FdKind::Socket);
        }
    }
    return nullptr;
}

SocketState::~SocketState() {
    InsideShunt guard;  // the descriptors closed below go straight to the C library
    if (registration) own_listeners::remove(listen_port);
    if (smcd)
        for (int fd : smcd->own_fds()) table().take(fd);
    conn.reset();
}

int on_close(int fd) {
    if (table().kind(fd) == FdKind::Private) return 0;  // ours: the application never opened it
    if (auto t = table().take(fd); t && t->fds.fetch_sub(1) == 1) {
        SavedErrno keep;
        release(*t);
    }
    return libc().close(fd);
}

int on_close_range(unsigned first, unsigned last, int flags) {
    if (!libc().close_range) {
        errno = ENOSYS;
        return -1;
    }
    if (flags & CLOSE_RANGE_CLOEXEC) return libc().close_range(first, last, flags);  // ours are already
    // Closed piece by piece around the connections' own descriptors.
    const unsigned end = std::min<unsigned>(last, static_cast<unsigned>(table().high_water()));
    unsigned from = first;
    for (unsigned fd = first; fd <= end && fd >= first; ++fd) {
        const FdKind k = table().kind(static_cast<int>(fd));
        if (k == FdKind::None) continue;
        if (k == FdKind::Private) {
            if (fd > from && libc().close_range(from, fd - 1, flags) < 0) return -1;
            from = fd + 1;
            continue;
        }
        if (auto t = table().take(static_cast<int>(fd)); t && t->fds.fetch_sub(1) == 1) release(*t);
    }
    if (from > last || from < first) return 0;
    return libc().close_range(from, last, flags);
}

int on_dup(int oldfd, int newfd, int flags, int how) {
    const FdKind kind = table().kind(oldfd);
    auto t = kind == FdKind::None || kind == FdKind::Private ? nullptr : table().get(oldfd);
    if ((how == 2 || how == 3) && newfd != oldfd && table().kind(newfd) == FdKind::Private) {
        // Replacing a connection's own descriptor would hand it the application's file.
        log_always("dup2 onto descriptor %d, which a shunt connection uses: refused (EBUSY)", newfd);
        errno = EBUSY;
        return -1;
    }
    int r;
    switch (how) {
        case 0: r = libc().dup(oldfd); break;
        case 2: r = libc().dup2(oldfd, newfd); break;
        case 3: r = libc().dup3(oldfd, newfd, flags); break;
        default: r = libc().fcntl(oldfd, flags, newfd); break;  // F_DUPFD / F_DUPFD_CLOEXEC
    }
    if ((how == 2 || how == 3) && r >= 0 && newfd != oldfd && table().kind(newfd) != FdKind::None) {
        // dup2 onto a socket of ours closed it, as the kernel does; a dup2 that failed (a bad
        // oldfd) left it open, and so do we.
        SavedErrno keep;
        if (auto old = table().take(newfd); old && old->fds.fetch_sub(1) == 1) release(*old);
    }
    if (r >= 0 && t && r != oldfd) {
        t->fds.fetch_add(1);
        table().put(r, kind, t);
    }
    return r;
}

void on_nonblock_change(int fd, bool on) {
    if (auto s = table().get_as<SocketState>(fd)) s->nonblock = on;
}

int on_shutdown(int fd, int how) {
    auto s = smcd_state(fd);
    if (!s) return libc().shutdown(fd, how);
    InsideShunt guard;
    return s->smcd->shutdown(how);
}

int on_getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
    if (FdTable::instance().kind(fd) == FdKind::PendingTcp) smcd_state(fd);  // SO_ERROR after connect: list it
    auto s = level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF) ? smcd_state(fd) : nullptr;
    if (!s || !value || !len || *len < sizeof(int)) return libc().getsockopt(fd, level, name, value, len);
    // What the connection can buffer is its ring, as the kernel's answer is its buffer.
    const int v = static_cast<int>(name == SO_RCVBUF ? s->smcd->rx_ring_size() : s->smcd->tx_ring_size());
    std::memcpy(value, &v, sizeof v);
    *len = sizeof v;
    return 0;
}

int on_ioctl_size(int fd, unsigned long request, int* out) {
    auto s = smcd_state(fd);
    if (!s) return 1;
    InsideShunt guard;
    const size_t n = request == SIOCOUTQ ? s->smcd->unsent_bytes() : s->smcd->readable_bytes();
    *out = static_cast<int>(std::min<size_t>(n, INT32_MAX));
    return 0;
}

}  // namespace shunt::preload
