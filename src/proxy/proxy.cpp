// The proxy process (see proxy.hpp).
#include "proxy/proxy.hpp"

#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "core/fd_passing.hpp"
#include "proxy/admin.hpp"
#include "proxy/health.hpp"
#include "proxy/reuseport.hpp"
#include "proxy/runtime.hpp"
#include "proxy/shard.hpp"
#include "proxy/stats.hpp"

namespace shunt::proxy {

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> out;
    if (::sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) out.push_back(c);
    if (out.empty()) out.push_back(0);
    return out;
}

std::optional<RssModel> load_model(const Config& config) {
    if (!config.model_file.empty()) return load_model_file(config.model_file);
    if (!config.nic.empty()) return model_from_nic(config.nic);
    return std::nullopt;
}

namespace {

// The listeners, [frontend][shard], as the shards hold them (for a takeover).
using ListenerFds = std::vector<std::vector<int>>;

std::string cpu_text(const std::vector<int>& cpus) {
    return fmt::format("{}", fmt::join(cpus, ","));
}

std::string handle_admin(Runtime& rt, const std::vector<std::unique_ptr<Shard>>& shards,
                         const ListenerFds& listeners, const std::string& line, int conn) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    if (!w.empty() && w[0] == "stats") {
        std::vector<ShardView> views;
        for (const auto& s : shards) views.push_back({s->cpu(), &s->counters()});
        std::vector<ServerView> servers;
        for (const auto& s : rt.servers())
            servers.push_back({s->backend, s->name, s->address().to_string(), s->up.load(),
                               s->checks_failed.load()});
        const std::string fmt = w.size() > 1 ? w[1] : "";
        if (fmt == "json") return stats_json(views, servers, rt.model_description());
        if (fmt == "prometheus") return stats_prometheus(views, servers);
        if (fmt.empty()) return stats_table(views, servers, rt.model_description());
    }
    // set server BACKEND/SERVER addr HOST:PORT
    if (w.size() == 5 && w[0] == "set" && w[1] == "server" && w[3] == "addr") {
        const auto slash = w[2].find('/');
        if (slash == std::string::npos) return "error: expected BACKEND/SERVER\n";
        const std::string err = rt.set_server_address(w[2].substr(0, slash), w[2].substr(slash + 1), w[4]);
        return err.empty() ? "ok\n" : "error: " + err + "\n";
    }
    // takeover FRONTENDS CPUS: a new process with the same frontends and CPUs takes the
    // listeners; the reuseport groups (and their CPU program) live on in it. Then we drain.
    if (w.size() == 3 && w[0] == "takeover") {
        const std::string want = fmt::format("{} {}", listeners.size(), cpu_text(rt.config().cpus));
        if (w[1] + " " + w[2] != want)
            return fmt::format("error: frontends and CPUs differ (this process: {})\n", want);
        if (rt.stopping.load()) return "error: already stopping\n";
        std::vector<int> fds;
        for (const auto& f : listeners) fds.insert(fds.end(), f.begin(), f.end());
        const std::string ok = "ok";
        if (const int e = send_with_fds(conn, {reinterpret_cast<const uint8_t*>(ok.data()), ok.size()}, fds); e != 0)
            return fmt::format("error: passing the listeners: {}\n", std::strerror(e));
        fmt::print(stderr, "shunt proxy: listeners handed over to a new process\n");
        ::kill(::getpid(), SIGTERM);  // the main thread drains, as on a stop signal
        return "";
    }
    return fmt::format("error: unknown command \"{}\" (stats [json|prometheus], set server B/S addr H:P)\n",
                       line);
}

// The listeners of a running proxy, by its admin socket ([frontend * shards + shard]).
std::vector<UniqueFd> take_listeners(const std::string& admin, size_t frontends, const std::vector<int>& cpus) {
    const sockaddr_un a = [&] {
        sockaddr_un u{};
        u.sun_family = AF_UNIX;
        std::snprintf(u.sun_path, sizeof u.sun_path, "%s", admin.c_str());
        return u;
    }();
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0)
        throw std::system_error(errno, std::generic_category(), fmt::format("takeover: connect {}", admin));
    const std::string line = fmt::format("takeover {} {}\n", frontends, cpu_text(cpus));
    if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw std::system_error(errno, std::generic_category(), "takeover: send");
    auto got = receive_with_fds(fd.get(), 256, frontends * cpus.size(), std::chrono::seconds(5));
    if (!got) throw std::system_error(got.error(), std::generic_category(), "takeover: no answer");
    const std::string text(got.value().data.begin(), got.value().data.end());
    if (text != "ok" || got.value().fds.size() != frontends * cpus.size())
        throw std::runtime_error(fmt::format("takeover refused: {}", text));
    return std::move(got.value().fds);
}

}  // namespace

int run_proxy(Config config, const std::string& takeover_from) {
    if (config.cpus.empty()) config.cpus = allowed_cpus();
    std::optional<RssModel> model = load_model(config);
    Runtime rt(std::move(config), std::move(model));
    const Config& cfg = rt.config();

    fmt::print(stderr, "shunt proxy: {} shard(s) on CPU(s) {}; NIC model: {}\n", cfg.cpus.size(),
               fmt::join(cfg.cpus, ","), rt.model_description());
    if (rt.model())
        for (int cpu : cfg.cpus)
            if (rt.model()->queues_of_cpu(cpu).empty())
                fmt::print(stderr, "shunt proxy: CPU {} serves no RX queue of the model: its backend "
                                   "connections use kernel-chosen ports\n", cpu);

    // Signals are taken by sigwait() here; every thread inherits the blocked mask.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    std::vector<std::vector<UniqueFd>> per_shard(cfg.cpus.size());
    ListenerFds listener_fds(cfg.frontends.size());
    if (!takeover_from.empty()) {
        auto fds = take_listeners(takeover_from, cfg.frontends.size(), cfg.cpus);
        for (size_t f = 0; f < cfg.frontends.size(); ++f)
            for (size_t i = 0; i < cfg.cpus.size(); ++i)
                per_shard[i].push_back(std::move(fds[f * cfg.cpus.size() + i]));
        fmt::print(stderr, "shunt proxy: took over the listeners of {}\n", takeover_from);
    } else {
        for (const auto& f : cfg.frontends) {
            auto group = open_listener_group(f.listen, cfg.cpus, static_cast<int>(cfg.backlog));
            for (size_t i = 0; i < group.size(); ++i) per_shard[i].push_back(std::move(group[i]));
            fmt::print(stderr, "shunt proxy: frontend {} listening on {}\n", f.name, f.listen.to_string());
        }
    }
    for (size_t i = 0; i < per_shard.size(); ++i)
        for (size_t f = 0; f < per_shard[i].size(); ++f) listener_fds[f].push_back(per_shard[i][f].get());
    std::vector<std::unique_ptr<Shard>> shards;
    for (size_t i = 0; i < cfg.cpus.size(); ++i)
        shards.push_back(std::make_unique<Shard>(i, cfg.cpus[i], rt, std::move(per_shard[i])));

    std::atomic<bool> stop_aux{false};
    std::unique_ptr<AdminServer> admin;
    if (!cfg.admin_socket.empty())
        admin = std::make_unique<AdminServer>(cfg.admin_socket,
                                              [&](const std::string& l, int conn) { return handle_admin(rt, shards, listener_fds, l, conn); });
    std::vector<std::thread> threads;
    for (auto& s : shards) threads.emplace_back([&s] { s->run(); });
    std::thread health, admin_thread;
    if (cfg.health.enabled || cfg.resolve_interval.count() > 0)
        health = std::thread([&] { run_health_checks(rt, stop_aux); });
    if (admin) admin_thread = std::thread([&] { admin->run(stop_aux); });
    fmt::print(stderr, "shunt proxy: ready\n");

    int sig = 0;
    sigwait(&sigs, &sig);
    fmt::print(stderr, "shunt proxy: signal {}: no new connections, draining for up to {} ms\n", sig,
               cfg.grace.count());
    rt.stopping.store(true);
    for (auto& t : threads) t.join();
    stop_aux.store(true);
    if (health.joinable()) health.join();
    if (admin_thread.joinable()) admin_thread.join();
    fmt::print(stderr, "shunt proxy: stopped\n");
    return 0;
}

}  // namespace shunt::proxy
