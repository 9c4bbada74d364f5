#pragma once
// The source address the kernel would pick for a destination, found before connect() so that
// the client can bind, learn its 4-tuple and announce it before the SYN leaves.
#include <sys/socket.h>

#include <optional>

#include "core/inet.hpp"

namespace shunt::lo {

// Remembered for a second per destination address: routes rarely change, and the kernel's
// own choice at connect() still wins (the handshake checks the real 4-tuple).
std::optional<IpPort> source_for(const sockaddr* dest, socklen_t len);

// Binds `fd` to the source address for `dest` with port 0 (the kernel picks the port) and
// returns the address bound, or nullopt if that cannot be done.
std::optional<IpPort> bind_source_for(int fd, const sockaddr* dest, socklen_t len);

}  // namespace shunt::lo
