// IpAddress: the bytes the Toeplitz hash consumes (network order), plus text conversion.
// Kept separate from sockaddr so the hash code never depends on socket headers.
#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "shunt/rss.hpp"

namespace shunt::rss {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    const std::string s(text);
    std::array<uint8_t, 16> buf{};
    if (::inet_pton(AF_INET, s.c_str(), buf.data()) == 1) {
        return v4({buf[0], buf[1], buf[2], buf[3]});
    }
    if (::inet_pton(AF_INET6, s.c_str(), buf.data()) == 1) return v6(buf);
    return std::nullopt;
}

IpAddress IpAddress::v4(std::array<uint8_t, 4> bytes) {
    IpAddress a;
    a.family_ = Family::kV4;
    std::memcpy(a.bytes_.data(), bytes.data(), 4);
    return a;
}

IpAddress IpAddress::v6(std::array<uint8_t, 16> bytes) {
    IpAddress a;
    a.family_ = Family::kV6;
    a.bytes_ = bytes;
    return a;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family_ == Family::kV4 ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
    return buf;
}

}  // namespace shunt::rss
