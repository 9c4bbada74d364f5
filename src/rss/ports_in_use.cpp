// Ports already used by TCP sockets of this network namespace, to seed PortAllocator's exclusion
// list. Read from /proc/net/tcp{,6} rather than probed with bind(): it is one pass, reserves
// nothing, and also shows sockets of other processes. A snapshot only: connect_aligned still
// retries when a port turns out to be taken.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "shunt/rss.hpp"

namespace shunt::rss {
namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// The kernel prints each 32-bit word of the address in host order (%08X of the stored word),
// so on little-endian machines the bytes of each word come out reversed.
bool parse_addr(std::string_view hex, std::array<uint8_t, 16>& out, size_t& len) {
    if (hex.size() != 8 && hex.size() != 32) return false;
    len = hex.size() / 2;
    for (size_t w = 0; w < len / 4; ++w) {
        uint32_t word = 0;
        for (size_t i = 0; i < 8; ++i) {
            const int d = hex_digit(hex[w * 8 + i]);
            if (d < 0) return false;
            word = word << 4 | static_cast<uint32_t>(d);
        }
        std::memcpy(out.data() + w * 4, &word, 4);  // back to the stored (network) byte order
    }
    return true;
}

void scan(const char* path, const std::vector<std::array<uint8_t, 16>>& match, size_t addr_len,
          std::vector<uint16_t>& out) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string slot, local;
        if (!(ls >> slot >> local)) continue;
        const size_t colon = local.find(':');
        if (colon == std::string::npos) continue;
        std::array<uint8_t, 16> addr{};
        size_t len = 0;
        if (!parse_addr(std::string_view(local).substr(0, colon), addr, len) || len != addr_len)
            continue;
        uint32_t port = 0;
        for (char c : local.substr(colon + 1))
            port = port << 4 | static_cast<uint32_t>(hex_digit(c));
        for (const auto& m : match) {
            if (std::memcmp(m.data(), addr.data(), len) == 0) {
                out.push_back(static_cast<uint16_t>(port));
                break;
            }
        }
    }
}

}  // namespace

std::vector<uint16_t> tcp_ports_in_use(const IpAddress& local) {
    std::vector<uint16_t> out;
    const std::array<uint8_t, 16> any{};
    if (local.family() == Family::kV4) {
        std::array<uint8_t, 16> mine{};
        std::memcpy(mine.data(), local.bytes().data(), 4);
        scan("/proc/net/tcp", {mine, any}, 4, out);
        // Dual-stack sockets bound to :: or ::ffff:a.b.c.d hold the port for IPv4 too.
        std::array<uint8_t, 16> mapped{};
        mapped[10] = mapped[11] = 0xff;
        std::memcpy(mapped.data() + 12, local.bytes().data(), 4);
        scan("/proc/net/tcp6", {mapped, any}, 16, out);
    } else {
        std::array<uint8_t, 16> mine{};
        std::memcpy(mine.data(), local.bytes().data(), 16);
        scan("/proc/net/tcp6", {mine, any}, 16, out);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace shunt::rss
