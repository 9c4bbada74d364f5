#pragma once
// IP endpoints in one comparable form: IPv4 is kept as IPv4-mapped IPv6 (::ffff:a.b.c.d), so a
// v4 client seen by a dual-stack v6 listener compares equal to what the client saw.
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace shunt {

struct IpPort {
    std::array<uint8_t, 16> addr{};
    uint16_t port = 0;

    static std::optional<IpPort> from_sockaddr(const sockaddr* sa);
    static std::optional<IpPort> parse(const std::string& ip, uint16_t port);
    bool is_v4() const;
    bool is_loopback() const;
    bool is_wildcard() const;
    std::string ip_string() const;
    std::string to_string() const;  // "1.2.3.4:80", "[::1]:80"
    bool operator==(const IpPort&) const = default;
};

// getsockname / getpeername as IpPort.
std::optional<IpPort> local_endpoint(int fd);
std::optional<IpPort> peer_endpoint(int fd);

}  // namespace shunt
