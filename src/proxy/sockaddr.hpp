#pragma once
// Socket addresses for the proxy: resolution of host:port (numeric or DNS) and printing.
#include <sys/socket.h>

#include <string>
#include <vector>

#include "proxy/config.hpp"
#include "shunt/rss.hpp"

namespace shunt::proxy {

struct SockAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
    int family() const { return ss.ss_family; }
    uint16_t port() const;
    rss::IpAddress ip() const;
    std::string to_string() const;
    bool operator==(const SockAddr& o) const;
};

SockAddr make_sockaddr(const rss::IpAddress& ip, uint16_t port);
// getaddrinfo (TCP); the first answer. Throws std::runtime_error naming the host.
SockAddr resolve_one(const HostPort& hp, bool passive = false);
// The local address the kernel would use to reach `remote` (a connected UDP socket's name).
rss::IpAddress route_source(const SockAddr& remote);
SockAddr local_name(int fd);
SockAddr peer_name(int fd);

}  // namespace shunt::proxy
