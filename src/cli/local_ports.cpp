// Free ports for benchmark servers, and "is it listening yet" from /proc/net/tcp{,6}.
#include "cli/local_ports.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

namespace shunt::cli {
namespace {

bool listening_in(const char* table, uint16_t port) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        // "  0: 0100007F:1F90 00000000:0000 0A ..." local address:port, remote, state (0A = LISTEN)
        unsigned p = 0, state = 0;
        char local[64], remote[64];
        if (std::sscanf(line.c_str(), "%*d: %63s %63s %x", local, remote, &state) != 3) continue;
        const char* colon = std::strrchr(local, ':');
        if (!colon || std::sscanf(colon + 1, "%x", &p) != 1) continue;
        if (p == port && state == 0x0A) return true;
    }
    return false;
}

bool bindable(uint16_t port) {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int off = 0;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // v4 and v6 at once
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    sa.sin6_addr = in6addr_any;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

bool tcp_listening(uint16_t port) { return listening_in("/proc/net/tcp", port) || listening_in("/proc/net/tcp6", port); }

PortPicker::PortPicker(uint16_t first, uint16_t last)
    : first_(first), last_(last), cursor_(static_cast<uint16_t>(first + (::getpid() * 37) % (last - first + 1))) {}

uint16_t PortPicker::next() {
    for (int i = 0; i <= last_ - first_; ++i) {
        const uint16_t p = cursor_;
        cursor_ = cursor_ >= last_ ? first_ : static_cast<uint16_t>(cursor_ + 1);
        if (!tcp_listening(p) && bindable(p)) return p;
    }
    throw std::runtime_error("no free TCP port left in the benchmark range");
}

}  // namespace shunt::cli
