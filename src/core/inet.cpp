#include "core/inet.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace shunt {
namespace {
constexpr std::array<uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

std::optional<IpPort> endpoint(int fd, bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) < 0) return std::nullopt;
    return IpPort::from_sockaddr(sa);
}
}  // namespace

std::optional<IpPort> IpPort::from_sockaddr(const sockaddr* sa) {
    IpPort ep;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), ep.addr.begin());
        std::memcpy(ep.addr.data() + 12, &in->sin_addr, 4);
        ep.port = ntohs(in->sin_port);
        return ep;
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::memcpy(ep.addr.data(), &in6->sin6_addr, 16);
        ep.port = ntohs(in6->sin6_port);
        return ep;
    }
    return std::nullopt;
}

std::optional<IpPort> IpPort::parse(const std::string& ip, uint16_t port) {
    IpPort ep;
    ep.port = port;
    in_addr a4{};
    if (::inet_pton(AF_INET, ip.c_str(), &a4) == 1) {
        std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), ep.addr.begin());
        std::memcpy(ep.addr.data() + 12, &a4, 4);
        return ep;
    }
    if (::inet_pton(AF_INET6, ip.c_str(), ep.addr.data()) == 1) return ep;
    return std::nullopt;
}

bool IpPort::is_v4() const { return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), addr.begin()); }

bool IpPort::is_loopback() const {
    if (is_v4()) return addr[12] == 127;
    static constexpr std::array<uint8_t, 16> kLo6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return addr == kLo6;
}

bool IpPort::is_wildcard() const {
    if (is_v4()) return addr[12] == 0 && addr[13] == 0 && addr[14] == 0 && addr[15] == 0;
    return std::all_of(addr.begin(), addr.end(), [](uint8_t b) { return b == 0; });
}

std::string IpPort::ip_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4()) ::inet_ntop(AF_INET, addr.data() + 12, buf, sizeof buf);
    else ::inet_ntop(AF_INET6, addr.data(), buf, sizeof buf);
    return buf;
}

std::string IpPort::to_string() const {
    return is_v4() ? fmt::format("{}:{}", ip_string(), port) : fmt::format("[{}]:{}", ip_string(), port);
}

std::optional<IpPort> local_endpoint(int fd) { return endpoint(fd, false); }
std::optional<IpPort> peer_endpoint(int fd) { return endpoint(fd, true); }

}  // namespace shunt
