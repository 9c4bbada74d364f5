// Address helpers (see sockaddr.hpp).
#include "proxy/sockaddr.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "core/unique_fd.hpp"

namespace shunt::proxy {

uint16_t SockAddr::port() const {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

rss::IpAddress SockAddr::ip() const {
    if (ss.ss_family == AF_INET) {
        std::array<uint8_t, 4> b{};
        std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, 4);
        return rss::IpAddress::v4(b);
    }
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
    return rss::IpAddress::v6(b);
}

std::string SockAddr::to_string() const {
    if (ss.ss_family == AF_INET6) return fmt::format("[{}]:{}", ip().to_string(), port());
    return fmt::format("{}:{}", ip().to_string(), port());
}

bool SockAddr::operator==(const SockAddr& o) const {
    return len == o.len && std::memcmp(&ss, &o.ss, len) == 0;
}

SockAddr make_sockaddr(const rss::IpAddress& ip, uint16_t port) {
    SockAddr a;
    if (ip.family() == rss::Family::kV4) {
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

SockAddr resolve_one(const HostPort& hp, bool passive) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(hp.port);
    const int rc = ::getaddrinfo(hp.host == "*" ? nullptr : hp.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res)
        throw std::runtime_error(fmt::format("cannot resolve {}: {}", hp.to_string(), ::gai_strerror(rc)));
    SockAddr a;
    std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
    a.len = res->ai_addrlen;
    ::freeaddrinfo(res);
    return a;
}

rss::IpAddress route_source(const SockAddr& remote) {
    UniqueFd fd(::socket(remote.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), remote.get(), remote.len) < 0)
        throw std::system_error(errno, std::generic_category(),
                                fmt::format("no route to {}", remote.to_string()));
    return local_name(fd.get()).ip();
}

SockAddr local_name(int fd) {
    SockAddr a;
    a.len = sizeof a.ss;
    if (::getsockname(fd, a.get(), &a.len) < 0) a.len = 0;
    return a;
}

SockAddr peer_name(int fd) {
    SockAddr a;
    a.len = sizeof a.ss;
    if (::getpeername(fd, a.get(), &a.len) < 0) a.len = 0;
    return a;
}

}  // namespace shunt::proxy
