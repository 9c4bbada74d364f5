#include "lo/engine.hpp"

#include <cstdlib>
#include <vector>

namespace shunt::lo {

Engine& Engine::instance() {
    static Engine* e = new Engine();  // never destroyed: connections may outlive static teardown
    return *e;
}

Engine::Engine() {
    const char* m = std::getenv("SHUNT_MAX_DMBS");
    max_dmbs_ = m && *m ? std::strtoull(m, nullptr, 10) : 5000;
}

Result<std::shared_ptr<const Rundir>, std::string> Engine::rundir(const std::string& path) {
    const std::string key = path.empty() ? Rundir::default_path() : path;
    std::lock_guard lock(mu_);
    if (auto it = rundirs_.find(key); it != rundirs_.end()) return it->second;
    auto r = Rundir::open(key);
    if (!r) return Unexpected{r.error()};
    auto shared = std::make_shared<const Rundir>(std::move(*r));
    rundirs_.emplace(key, shared);
    return shared;
}

void Engine::sweep_rundirs() {
    std::vector<std::shared_ptr<const Rundir>> dirs;
    {
        std::lock_guard lock(mu_);
        for (auto& [path, dir] : rundirs_) dirs.push_back(dir);
    }
    for (auto& d : dirs) d->sweep();
}

bool Engine::reserve_dmb() {
    uint64_t n = live_dmbs_.load();
    do {
        if (n >= max_dmbs_) return false;
    } while (!live_dmbs_.compare_exchange_weak(n, n + 1));
    return true;
}

void Engine::release_dmb() { live_dmbs_.fetch_sub(1); }

bool Engine::first_contact(pid_t peer) {
    std::lock_guard lock(mu_);
    // Bounded: a long-lived server meets many short-lived clients. Forgetting them only means
    // a later connection from the same pid is announced as first contact again.
    constexpr size_t kMaxPeers = 4096;
    if (peers_.size() >= kMaxPeers && !peers_.contains(peer)) peers_.clear();
    return peers_.insert(peer).second;
}

}  // namespace shunt::lo
