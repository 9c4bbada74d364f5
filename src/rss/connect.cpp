// Connecting from a port chosen by the allocator (docs/rss-algebra.md).
//
// Preferred: IP_LOCAL_PORT_RANGE with lo == hi == port plus IP_BIND_ADDRESS_NO_PORT and
// bind(local, 0). bind() then reserves nothing and connect() takes exactly our port if the 4-tuple
// is unique, so many connections to different servers can share one local port and nothing is
// held between bind() and connect(). Kernels before 6.3 reject the option (ENOPROTOOPT); then we
// fall back to SO_REUSEADDR + bind(local, port) as HAProxy does. Either way a port whose 4-tuple is
// taken (EADDRINUSE at bind, EADDRNOTAVAIL at connect) is set aside and the next port of the same
// pool is tried; the rejected ports go back to the allocator when we return, not before, so the
// LIFO free list cannot hand the same port straight back.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "core/unique_fd.hpp"
#include "shunt/rss.hpp"

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51  // <linux/in.h>, Linux 6.3; glibc may not define it yet
#endif

namespace shunt::rss {
namespace {

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

SockAddr make_sockaddr(const IpAddress& ip, uint16_t port) {
    SockAddr a;
    if (ip.family() == Family::kV4) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        std::memcpy(&sin.sin_addr, ip.bytes().data(), 4);
        std::memcpy(&a.ss, &sin, sizeof sin);
        a.len = sizeof sin;
    } else {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        std::memcpy(&sin6.sin6_addr, ip.bytes().data(), 16);
        std::memcpy(&a.ss, &sin6, sizeof sin6);
        a.len = sizeof sin6;
    }
    return a;
}

uint16_t bound_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
    if (ss.ss_family == AF_INET) {
        sockaddr_in sin{};
        std::memcpy(&sin, &ss, sizeof sin);
        return ntohs(sin.sin_port);
    }
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &ss, sizeof sin6);
    return ntohs(sin6.sin6_port);
}

bool port_taken(int err) {
    return err == EADDRINUSE || err == EADDRNOTAVAIL;
}

// Returns false if the kernel does not know the options (then the fallback is used from now on).
bool restrict_to_port(int fd, uint16_t port) {
    const int one = 1;
    if (::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0) return false;
    const uint32_t range = uint32_t{port} << 16 | port;  // hi << 16 | lo, host order, inclusive
    return ::setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range) == 0;
}

[[noreturn]] void fail(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

const char* to_string(BindMethod m) {
    return m == BindMethod::kLocalPortRange ? "IP_LOCAL_PORT_RANGE" : "SO_REUSEADDR+bind";
}

AlignedSocket::AlignedSocket(AlignedSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      lease_(std::move(o.lease_)),
      attempts_(o.attempts_),
      method_(o.method_) {}

AlignedSocket& AlignedSocket::operator=(AlignedSocket&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::exchange(o.fd_, -1);
        lease_ = std::move(o.lease_);
        attempts_ = o.attempts_;
        method_ = o.method_;
    }
    return *this;
}

void AlignedSocket::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    lease_.reset();
}

AlignedSocket connect_aligned(PortAllocator& allocator, Target& t, const ConnectOptions& opt) {
    const IpAddress& local = allocator.local();
    if (t.remote().family() != local.family())
        throw std::invalid_argument("remote and local address families differ");
    const int domain = local.family() == Family::kV4 ? AF_INET : AF_INET6;
    const SockAddr remote = make_sockaddr(t.remote(), t.remote_port());
    const std::string peer = fmt::format("{}:{}", t.remote().to_string(), t.remote_port());

    std::vector<PortLease> rejected;  // returned to the allocator when we leave
    bool use_range = opt.prefer_local_port_range;
    int last_err = EADDRNOTAVAIL;
    for (int attempt = 1; attempt <= opt.max_attempts; ++attempt) {
        const auto port = allocator.acquire(t);
        if (!port)
            fail(EADDRNOTAVAIL,
                 fmt::format("no free port for queue {} towards {}", t.queue(), peer));
        PortLease lease(allocator, *port);
        UniqueFd fd(::socket(
            domain, SOCK_STREAM | SOCK_CLOEXEC | (opt.nonblocking ? SOCK_NONBLOCK : 0), 0));
        if (!fd) fail(errno, "socket");

        BindMethod method = BindMethod::kReuseAddrBind;
        if (use_range && restrict_to_port(fd.get(), *port)) {
            method = BindMethod::kLocalPortRange;
        } else {
            use_range = false;
            const int one = 1;
            if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                fail(errno, "setsockopt SO_REUSEADDR");
        }
        const SockAddr self =
            make_sockaddr(local, method == BindMethod::kLocalPortRange ? 0 : *port);
        if (::bind(fd.get(), self.get(), self.len) < 0) {
            const int e = errno;
            if (port_taken(e)) {
                last_err = e;
                rejected.push_back(std::move(lease));
                continue;
            }
            fail(e, fmt::format("bind {}:{}", local.to_string(), *port));
        }
        if (::connect(fd.get(), remote.get(), remote.len) < 0) {
            const int e = errno;
            if (port_taken(e)) {
                last_err = e;
                rejected.push_back(std::move(lease));
                continue;
            }
            if (!(opt.nonblocking && e == EINPROGRESS))
                fail(e, fmt::format("connect {} from port {}", peer, *port));
        }
        if (bound_port(fd.get()) != *port) {
            // The kernel ignored the range (it should not); never report a port we did not get.
            use_range = false;
            rejected.push_back(std::move(lease));
            continue;
        }
        return AlignedSocket(fd.release(), std::move(lease), attempt, method);
    }
    fail(last_err, fmt::format("no usable port for queue {} towards {} after {} attempts",
                               t.queue(), peer, opt.max_attempts));
}

}  // namespace shunt::rss
