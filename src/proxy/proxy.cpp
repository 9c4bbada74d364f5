// The proxy process (see proxy.hpp).
#include "proxy/proxy.hpp"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include <fmt/format.h>

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

std::string handle_admin(Runtime& rt, const std::vector<std::unique_ptr<Shard>>& shards,
                         const std::string& line) {
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
    return fmt::format("error: unknown command \"{}\" (stats [json|prometheus], set server B/S addr H:P)\n",
                       line);
}

}  // namespace

int run_proxy(Config config) {
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
    for (const auto& f : cfg.frontends) {
        auto group = open_listener_group(f.listen, cfg.cpus, static_cast<int>(cfg.backlog));
        for (size_t i = 0; i < group.size(); ++i) per_shard[i].push_back(std::move(group[i]));
        fmt::print(stderr, "shunt proxy: frontend {} listening on {}\n", f.name, f.listen.to_string());
    }
    std::vector<std::unique_ptr<Shard>> shards;
    for (size_t i = 0; i < cfg.cpus.size(); ++i)
        shards.push_back(std::make_unique<Shard>(i, cfg.cpus[i], rt, std::move(per_shard[i])));

    std::atomic<bool> stop_aux{false};
    std::unique_ptr<AdminServer> admin;
    if (!cfg.admin_socket.empty())
        admin = std::make_unique<AdminServer>(cfg.admin_socket,
                                              [&](const std::string& l) { return handle_admin(rt, shards, l); });
    std::vector<std::thread> threads;
    for (auto& s : shards) threads.emplace_back([&s] { s->run(); });
    std::thread health, admin_thread;
    if (cfg.health.enabled) health = std::thread([&] { run_health_checks(rt, stop_aux); });
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
