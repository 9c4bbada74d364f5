#include "core/tcp.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

namespace shunt {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

struct AddrInfo {
    addrinfo* head = nullptr;
    ~AddrInfo() {
        if (head) ::freeaddrinfo(head);
    }
};

AddrInfo resolve(const std::string& host, uint16_t port, bool passive) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    AddrInfo ai;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &ai.head))
        throw std::runtime_error(fmt::format("resolve {}: {}", host, ::gai_strerror(rc)));
    return ai;
}

}  // namespace

UniqueFd tcp_listen(const std::string& host, uint16_t port, int backlog) {
    AddrInfo ai = resolve(host, port, true);
    const addrinfo* a = ai.head;
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) throw_errno("socket");
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) < 0)
        throw_errno(fmt::format("bind {}:{}", host, port));
    if (::listen(fd.get(), backlog) < 0) throw_errno("listen");
    return fd;
}

UniqueFd tcp_connect(const std::string& host, uint16_t port) {
    AddrInfo ai = resolve(host, port, false);
    int last = ECONNREFUSED;
    for (const addrinfo* a = ai.head; a; a = a->ai_next) {
        UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
        if (!fd) throw_errno("socket");
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
            const int one = 1;
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        last = errno;
    }
    errno = last;
    throw_errno(fmt::format("connect {}:{}", host, port));
}

UniqueFd tcp_accept(int listen_fd) {
    for (;;) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) return UniqueFd(fd);
        if (errno != EINTR) throw_errno("accept");
    }
}

void write_all(int fd, const void* buf, size_t len) {
    const auto* p = static_cast<const char*>(buf);
    while (len > 0) {
        const ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("send");
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
}

bool read_exact(int fd, void* buf, size_t len) {
    auto* p = static_cast<char*>(buf);
    while (len > 0) {
        const ssize_t n = ::recv(fd, p, len, 0);
        if (n == 0) return false;
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("recv");
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

}  // namespace shunt
