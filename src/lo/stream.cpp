// The public lo API: connect and accept run the rendezvous and the handshake, then hand the
// socket to a Connection in SMC-D or TCP mode.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <map>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "core/inet.hpp"
#include "core/tcp.hpp"
#include "lo/connection.hpp"
#include "lo/engine.hpp"
#include "lo/source_address.hpp"
#include "shunt/decline.hpp"
#include "shunt/lo.hpp"

namespace shunt::lo {
namespace {

constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

size_t parse_size(const char* s) {
    char* end = nullptr;
    double v = std::strtod(s, &end);
    if (end && (*end == 'k' || *end == 'K')) v *= 1024;
    if (end && (*end == 'm' || *end == 'M')) v *= 1024 * 1024;
    return static_cast<size_t>(v);
}

// Everything the handshake needs, or the reason acceleration is impossible here.
struct Setup {
    HandshakeConfig cfg;
    uint32_t unusable = 0;
};

Setup prepare(const Options& opt) {
    Setup s;
    auto rundir = Engine::instance().rundir(opt.rundir);
    if (!rundir) {
        s.unusable = code(DeclineCode::CnfErr);
        return s;
    }
    if (!clc::make_ueid(opt.ueid, s.cfg.ueid)) {
        s.unusable = code(DeclineCode::NoUeid);
        return s;
    }
    s.cfg.rundir = *rundir;
    s.cfg.buffer_size = opt.buffer_size;
    s.cfg.timeout = opt.clc_timeout;
    s.cfg.spin = handshake_spin(opt.spin);
    return s;
}

std::unique_ptr<Connection> finish(UniqueFd tcp, bool server, HandshakeResult r, const Options& opt) {
    auto& e = Engine::instance();
    if (r.link) {
        (server ? e.counters().server_smcd : e.counters().client_smcd).fetch_add(1);
        return std::make_unique<Connection>(std::move(tcp), server, std::move(*r.link), opt.spin);
    }
    if (r.reason != code(DeclineCode::PeerNoSmc) && r.reason != code(DeclineCode::PeerDecl))
        e.counters().handshake_errors.fetch_add(1);
    e.count_fallback(server, r.reason);
    return std::make_unique<Connection>(std::move(tcp), server, r.reason, r.peer_reason);
}

int connect_blocking(int fd, const sockaddr* sa, socklen_t len) {
    if (::connect(fd, sa, len) == 0) return 0;
    return errno;
}

// One attempt to one resolved address. Returns the connection or an errno.
Result<std::unique_ptr<Connection>, int> connect_one(const addrinfo* a, const Options& opt, const Setup& setup) {
    const auto dest = IpPort::from_sockaddr(a->ai_addr);
    UniqueFd tcp(::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
    if (!tcp) return Unexpected{errno};
    uint32_t reason = setup.unusable;
    if (!reason && !(dest && setup.cfg.rundir->has_live_listener(*dest))) reason = code(DeclineCode::PeerNoSmc);
    if (reason) {
        if (int e = connect_blocking(tcp.get(), a->ai_addr, a->ai_addrlen)) return Unexpected{e};
        return finish(std::move(tcp), false, HandshakeResult{std::nullopt, reason, 0, false}, opt);
    }
    // Announce the 4-tuple before the SYN: bind first to learn our port.
    std::optional<Announcement> ann;
    FourTuple t;
    if (const auto bound = bind_source_for(tcp.get(), a->ai_addr, a->ai_addrlen)) {
        t = FourTuple{*bound, *dest};
        if (auto a2 = setup.cfg.rundir->announce(t)) ann = std::move(*a2);
    }
    if (int e = connect_blocking(tcp.get(), a->ai_addr, a->ai_addrlen)) return Unexpected{e};
    if (!ann) return finish(std::move(tcp), false, HandshakeResult{std::nullopt, code(DeclineCode::CnfErr), 0, false}, opt);
    HandshakeResult r = client_handshake(tcp.get(), *ann, t, setup.cfg);
    if (r.aborted) return Unexpected{ECONNRESET};
    return finish(std::move(tcp), false, std::move(r), opt);
}

}  // namespace

Options Options::from_env() {
    Options o;
    if (const char* v = std::getenv("SHUNT_BUFFER_SIZE"); v && *v) o.buffer_size = parse_size(v);
    if (const char* v = std::getenv("SHUNT_SPIN_US"); v && *v) o.spin = std::chrono::microseconds(std::atoll(v));
    if (const char* v = std::getenv("SHUNT_RUNDIR"); v && *v) o.rundir = v;
    if (const char* v = std::getenv("SHUNT_UEID"); v && *v) o.ueid = v;
    if (const char* v = std::getenv("SHUNT_CLC_TIMEOUT_MS"); v && *v)
        o.clc_timeout = std::chrono::milliseconds(std::atoll(v));
    return o;
}

// ---- Stream ----

Stream::Stream() = default;
Stream::~Stream() = default;
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::Stream(std::unique_ptr<Connection> c) : c_(std::move(c)) {}

Stream Stream::connect(const std::string& host, uint16_t port, const Options& opt) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res))
        throw std::runtime_error(fmt::format("resolve {}: {}", host, ::gai_strerror(rc)));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
    const Setup setup = prepare(opt);
    int last = ECONNREFUSED;
    for (const addrinfo* a = res; a; a = a->ai_next) {
        auto c = connect_one(a, opt, setup);
        if (c) return Stream(std::move(*c));
        last = c.error();
    }
    throw_errno(last, fmt::format("connect {}:{}", host, port));
}

ssize_t Stream::read(void* buf, size_t len) {
    iovec v{buf, len};
    return readv(&v, 1);
}
ssize_t Stream::write(const void* buf, size_t len) {
    iovec v{const_cast<void*>(buf), len};
    return writev(&v, 1);
}
ssize_t Stream::readv(const iovec* iov, int iovcnt) {
    if (!c_) {
        errno = EBADF;
        return -1;
    }
    return c_->readv(iov, iovcnt);
}
ssize_t Stream::writev(const iovec* iov, int iovcnt) {
    if (!c_) {
        errno = EBADF;
        return -1;
    }
    return c_->writev(iov, iovcnt);
}
int Stream::shutdown(int how) {
    if (!c_) {
        errno = EBADF;
        return -1;
    }
    return c_->shutdown(how);
}
void Stream::close() { c_.reset(); }
void Stream::set_nonblocking(bool on) {
    if (c_) c_->set_nonblocking(on);
}
int Stream::poll_fd() { return c_ ? c_->poll_fd() : -1; }
int Stream::tcp_fd() const { return c_ ? c_->tcp_fd() : -1; }
bool Stream::accelerated() const { return c_ && c_->smcd(); }
uint32_t Stream::fallback_reason() const { return c_ ? c_->info().fallback_reason : 0; }
uint32_t Stream::peer_reason() const { return c_ ? c_->info().peer_reason : 0; }

// ---- Listener ----

struct Listener::Impl {
    UniqueFd fd;
    uint16_t port = 0;
    Options opt;
    Setup setup;
    std::optional<Registration> registration;
};

Listener::Listener() = default;
Listener::~Listener() = default;
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&&) noexcept = default;

Listener Listener::listen(const std::string& host, uint16_t port, const Options& opt, int backlog) {
    Listener l;
    l.impl_ = std::make_unique<Impl>();
    l.impl_->fd = tcp_listen(host.empty() ? "0.0.0.0" : host, port, backlog);
    const auto bound = local_endpoint(l.impl_->fd.get());
    if (!bound) throw_errno(errno, "getsockname");
    l.impl_->port = bound->port;
    l.impl_->opt = opt;
    l.impl_->setup = prepare(opt);
    if (!l.impl_->setup.unusable) {
        if (auto reg = l.impl_->setup.cfg.rundir->register_listener(*bound)) l.impl_->registration = std::move(*reg);
        else l.impl_->setup.unusable = code(DeclineCode::CnfErr);
    }
    return l;
}

Stream Listener::accept() {
    for (;;) {
        UniqueFd tcp = tcp_accept(impl_->fd.get());
        if (impl_->setup.unusable)
            return Stream(finish(std::move(tcp), true, HandshakeResult{std::nullopt, impl_->setup.unusable, 0, false},
                                 impl_->opt));
        HandshakeResult r = server_handshake(tcp.get(), impl_->setup.cfg);
        if (r.aborted) {
            // The client counts the connection as SMC-D but it cannot be: reset it.
            linger lg{1, 0};
            ::setsockopt(tcp.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            Engine::instance().counters().handshake_errors.fetch_add(1);
            continue;
        }
        return Stream(finish(std::move(tcp), true, std::move(r), impl_->opt));
    }
}

int Listener::fd() const { return impl_ ? impl_->fd.get() : -1; }
uint16_t Listener::port() const { return impl_ ? impl_->port : 0; }
void Listener::close() { impl_.reset(); }

}  // namespace shunt::lo
