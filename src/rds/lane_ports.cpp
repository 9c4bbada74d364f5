#include "rds/lane_ports.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

namespace shunt::rds {
namespace {

sockaddr_in v4(const rss::IpAddress& ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    std::memcpy(&sa.sin_addr, ip.bytes().data(), 4);
    return sa;
}

}  // namespace

LanePorts::LanePorts(Config config) : config_(std::move(config)) {
    if (config_.model) {
        rss::PortAllocator::Config c;
        c.model = *config_.model;
        c.local = config_.local;
        c.range = config_.range.value_or(rss::PortRange{});
        c.excluded = rss::tcp_ports_in_use(config_.local);
        allocator_ = std::make_unique<rss::PortAllocator>(std::move(c));
    }
    if (config_.peer_model) peer_hasher_ = std::make_unique<rss::ToeplitzHasher>(config_.peer_model->key);
}

int LanePorts::peer_queue_of(uint16_t port, const rss::IpAddress& remote, uint16_t remote_port) const {
    if (!peer_hasher_) return -1;
    const rss::FlowTuple forward{config_.local, remote, port, remote_port};
    return static_cast<int>(config_.peer_model->reta.queue_of_hash(peer_hasher_->hash(forward, true)));
}

std::optional<LanePorts::Opened> LanePorts::open_from(const std::vector<uint16_t>& ports, const rss::IpAddress& remote,
                                                      uint16_t remote_port) {
    for (size_t i = 0; i < ports.size(); ++i) {
        const uint16_t port = ports[(cursor_ + i) % ports.size()];
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in local = v4(config_.local, port);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) continue;
        sockaddr_in dst = v4(remote, remote_port);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0 && errno != EINPROGRESS) continue;
        cursor_ += static_cast<uint32_t>(i + 1);
        Opened out;
        out.fd = std::move(fd);
        out.port = port;
        out.peer_queue = peer_queue_of(port, remote, remote_port);
        return out;
    }
    return std::nullopt;
}

LanePorts::Opened LanePorts::open(const rss::IpAddress& remote, uint16_t remote_port, uint16_t lane) {
    Opened out;
    if (peer_hasher_) {
        // Ports that put the lane on local queue i mod Q (the allocator's pool, by syndrome) or
        // any port of the range, filtered to those the peer hashes to its queue i mod Q'.
        std::vector<uint16_t> pool;
        int queue = -1;
        if (allocator_) {
            queue = static_cast<int>(lane % queues());
            allocator_->pool(allocator_->target(remote, remote_port, static_cast<uint32_t>(queue)), pool);
        } else {
            const rss::PortRange r = config_.range.value_or(rss::PortRange{});
            for (uint32_t p = r.lo; p <= r.hi; ++p) pool.push_back(static_cast<uint16_t>(p));
        }
        const int want = static_cast<int>(lane % config_.peer_model->reta.queue_count());
        std::vector<uint16_t> fit;
        for (uint16_t p : pool)
            if (peer_queue_of(p, remote, remote_port) == want) fit.push_back(p);
        if (auto o = open_from(fit, remote, remote_port)) {
            o->queue = queue;
            return std::move(*o);
        }
        throw std::system_error(EADDRNOTAVAIL, std::generic_category(), "no free lane source port for both RX queues");
    }
    if (allocator_) {
        const uint32_t queue = lane % queues();
        rss::Target t = allocator_->target(remote, remote_port, queue);
        rss::ConnectOptions opt;
        opt.nonblocking = true;
        out.aligned = rss::connect_aligned(*allocator_, t, opt);
        out.port = out.aligned.local_port();
        out.queue = static_cast<int>(queue);
        return out;
    }
    const size_t tries = config_.range ? config_.range->size() : 1;
    int last_errno = 0;
    for (size_t i = 0; i < tries; ++i) {
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
        uint16_t port = 0;
        if (config_.range) {
            port = static_cast<uint16_t>(config_.range->lo + cursor_ % config_.range->size());
            ++cursor_;
            const int one = 1;
            ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        }
        sockaddr_in local = v4(config_.local, port);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) {
            last_errno = errno;
            if (errno == EADDRINUSE) continue;
            throw std::system_error(errno, std::generic_category(), "bind lane source port");
        }
        sockaddr_in dst = v4(remote, remote_port);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0 && errno != EINPROGRESS) {
            last_errno = errno;
            if (errno == EADDRNOTAVAIL || errno == EADDRINUSE) continue;
            throw std::system_error(errno, std::generic_category(), "connect lane");
        }
        sockaddr_in bound{};
        socklen_t len = sizeof bound;
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
        out.port = ntohs(bound.sin_port);
        out.fd = std::move(fd);
        return out;
    }
    throw std::system_error(last_errno, std::generic_category(), "no free lane source port in range");
}

std::string LanePorts::describe() const {
    const std::string peer =
        config_.peer_model ? fmt::format("; peer NICs: {} RX queues, lane i -> peer queue i mod {}",
                                         config_.peer_model->reta.queue_count(), config_.peer_model->reta.queue_count())
                           : "";
    if (allocator_)
        return fmt::format("rss-aligned: {} RX queues ({}), lane i -> queue i mod {}{}", queues(),
                           config_.model_source, queues(), peer);
    std::string why = (config_.model_source.empty() ? "no RSS model" : config_.model_source) + peer;
    if (config_.range) return fmt::format("{}; lane ports from {}-{}", why, config_.range->lo, config_.range->hi);
    return fmt::format("{}; lane ports chosen by the kernel", why);
}

std::optional<rss::NicModel> nic_model_for(const rss::IpAddress& local, const std::string& ifname,
                                           std::string* source) {
    std::string name = ifname;
    if (name.empty()) {
        ifaddrs* ifa = nullptr;
        if (::getifaddrs(&ifa) == 0) {
            for (ifaddrs* p = ifa; p; p = p->ifa_next) {
                if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET) continue;
                const auto* sa = reinterpret_cast<const sockaddr_in*>(p->ifa_addr);
                if (std::memcmp(&sa->sin_addr, local.bytes().data(), 4) == 0) {
                    name = p->ifa_name;
                    break;
                }
            }
            ::freeifaddrs(ifa);
        }
    }
    if (name.empty()) {
        if (source) *source = fmt::format("no interface owns {}", local.to_string());
        return std::nullopt;
    }
    try {
        rss::NicRssInfo info = rss::query_nic(name);
        std::string why;
        auto model = info.model(&why);
        if (source)
            *source = model ? fmt::format("{}: key and RETA read with ethtool", name)
                            : fmt::format("{} has no usable RSS model ({})", name,
                                          why.empty() ? std::strerror(info.rxfh_errno) : why);
        return model;
    } catch (const std::exception& e) {
        if (source) *source = fmt::format("{}: {}", name, e.what());
        return std::nullopt;
    }
}

}  // namespace shunt::rds
