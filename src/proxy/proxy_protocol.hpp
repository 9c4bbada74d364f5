#pragma once
// PROXY protocol version 2 header (binary form): lets a backend see the client's address.
// Layout: 12-byte signature, version/command 0x21 (v2, PROXY), family/transport (0x11 TCP/IPv4,
// 0x21 TCP/IPv6), 16-bit length, then source address, destination address, source port,
// destination port, network order.
#include <string>

#include "proxy/sockaddr.hpp"

namespace shunt::proxy {

// client = the client's address, front = the address it connected to. A LOCAL header (no
// addresses) if the families differ or are not IP.
std::string proxy_v2_header(const SockAddr& client, const SockAddr& front);

}  // namespace shunt::proxy
