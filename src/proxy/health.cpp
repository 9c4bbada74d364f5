// Health checks (see health.hpp).
#include "proxy/health.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/unique_fd.hpp"

namespace shunt::proxy {

namespace {

// Servers named by DNS: resolve again, and move the ones whose address changed (the shards
// retarget their pools with one hash each).
void re_resolve(Runtime& rt) {
    for (const auto& s : rt.servers()) {
        if (rss::IpAddress::parse(s->configured.host)) continue;  // a literal address
        try {
            const SockAddr a = resolve_one(s->configured);
            if (a == s->address()) continue;
            const std::string err = rt.set_server_address(s->backend, s->name, a.to_string());
            if (err.empty())
                fmt::print(stderr, "shunt proxy: server {}/{}: {} now resolves to {}\n", s->backend, s->name,
                           s->configured.host, a.to_string());
        } catch (const std::exception& e) {
            fmt::print(stderr, "shunt proxy: server {}/{}: {}\n", s->backend, s->name, e.what());
        }
    }
}

}  // namespace

void run_health_checks(Runtime& rt, const std::atomic<bool>& stop) {
    const HealthConfig& hc = rt.config().health;
    using Clock = std::chrono::steady_clock;
    auto next_resolve = Clock::now() + rt.config().resolve_interval;
    auto& servers = rt.servers();
    std::vector<int> streak(servers.size(), 0);  // > 0 successes, < 0 failures
    while (!stop.load()) {
        const auto round_start = Clock::now();
        if (rt.config().resolve_interval.count() > 0 && round_start >= next_resolve) {
            re_resolve(rt);
            next_resolve = round_start + rt.config().resolve_interval;
        }
        std::vector<UniqueFd> fds(servers.size());
        std::vector<bool> ok(servers.size(), false);
        std::vector<pollfd> pfds;
        std::vector<size_t> which;
        for (size_t i = 0; i < servers.size() && hc.enabled; ++i) {
            const SockAddr a = servers[i]->address();
            fds[i].reset(::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            if (!fds[i]) continue;
            if (::connect(fds[i].get(), a.get(), a.len) == 0) {
                ok[i] = true;
            } else if (errno == EINPROGRESS) {
                pfds.push_back({fds[i].get(), POLLOUT, 0});
                which.push_back(i);
            }
        }
        const auto deadline = round_start + rt.config().health.timeout;
        size_t left = pfds.size();
        while (left > 0 && !stop.load()) {
            const auto remain = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (remain.count() <= 0) break;
            const int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(std::min<int64_t>(remain.count(), 200)));
            if (n <= 0) continue;
            for (size_t k = 0; k < pfds.size(); ++k) {
                if (pfds[k].fd < 0 || !pfds[k].revents) continue;
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(pfds[k].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                ok[which[k]] = err == 0 && !(pfds[k].revents & (POLLERR | POLLHUP));
                pfds[k].fd = -1;
                --left;
            }
        }
        for (size_t i = 0; i < servers.size() && hc.enabled; ++i) {
            ServerState& s = *servers[i];
            if (ok[i]) {
                streak[i] = streak[i] > 0 ? streak[i] + 1 : 1;
            } else {
                streak[i] = streak[i] < 0 ? streak[i] - 1 : -1;
                s.checks_failed.fetch_add(1, std::memory_order_relaxed);
            }
            const bool up = s.up.load();
            if (up && streak[i] <= -hc.fall) {
                s.up.store(false);
                fmt::print(stderr, "shunt proxy: server {}/{} ({}) is DOWN\n", s.backend, s.name,
                           s.address().to_string());
            } else if (!up && streak[i] >= hc.rise) {
                s.up.store(true);
                fmt::print(stderr, "shunt proxy: server {}/{} ({}) is UP\n", s.backend, s.name,
                           s.address().to_string());
            }
        }
        fds.clear();
        while (!stop.load() && Clock::now() < round_start + hc.interval)
            std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50),
                                                                 round_start + hc.interval - Clock::now()));
    }
}

}  // namespace shunt::proxy
