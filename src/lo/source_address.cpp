#include "lo/source_address.hpp"

#include <netinet/in.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>

#include "core/unique_fd.hpp"

namespace shunt::lo {
namespace {

// The source address the kernel would pick for `dest` (a UDP connect sends nothing).
std::optional<IpPort> probe_source(const sockaddr* dest, socklen_t len) {
    UniqueFd udp(::socket(dest->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!udp || ::connect(udp.get(), dest, len) < 0) return std::nullopt;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (::getsockname(udp.get(), reinterpret_cast<sockaddr*>(&ss), &sl) < 0) return std::nullopt;
    if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = 0;
    else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = 0;
    return IpPort::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace

std::optional<IpPort> source_for(const sockaddr* dest, socklen_t len) {
    struct Entry {
        std::optional<IpPort> src;
        std::chrono::steady_clock::time_point at;
    };
    static std::mutex mu;
    static std::map<std::array<uint8_t, 16>, Entry> cache;
    const auto key = IpPort::from_sockaddr(dest);
    if (!key) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mu);
        auto it = cache.find(key->addr);
        if (it != cache.end() && now - it->second.at < std::chrono::seconds(1)) return it->second.src;
    }
    auto src = probe_source(dest, len);
    std::lock_guard lock(mu);
    if (cache.size() > 1024) cache.clear();
    cache[key->addr] = {src, now};
    return src;
}


std::optional<IpPort> bind_source_for(int fd, const sockaddr* dest, socklen_t len) {
    const auto src = source_for(dest, len);
    if (!src) return std::nullopt;
    sockaddr_storage sa{};
    std::memcpy(&sa, dest, len);
    if (dest->sa_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&sa);
        std::memcpy(&in->sin_addr, src->addr.data() + 12, 4);
        in->sin_port = 0;
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
        std::memcpy(&in6->sin6_addr, src->addr.data(), 16);
        in6->sin6_port = 0;
        in6->sin6_flowinfo = 0;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0) return std::nullopt;
    return local_endpoint(fd);
}

}  // namespace shunt::lo
