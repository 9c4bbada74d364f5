#pragma once
// Process-wide state of the lo transport: the rundir(s) in use, the DMB budget, the peers met
// so far (first contact).
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/result.hpp"
#include "lo/rundir.hpp"
#include "lo/stats_region.hpp"

namespace shunt::lo {

class Engine {
public:
    static Engine& instance();

    // The rundir at `path` ("" = default), opened once per process and path.
    Result<std::shared_ptr<const Rundir>, std::string> rundir(const std::string& path);

    // DMB budget: at most max_dmbs live DMBs per process (SHUNT_MAX_DMBS, default 5000 as
    // Linux SMC_LO_MAX_DMBS). reserve_dmb() is false when the budget is spent.
    bool reserve_dmb();
    void release_dmb();
    void set_max_dmbs(uint64_t n) { max_dmbs_ = n; }
    uint64_t live_dmbs() const { return live_dmbs_.load(); }

    // True the first time this process connects with the process `peer` (SMC first contact).
    bool first_contact(pid_t peer);

    // Sweeps every rundir this process uses (after a peer died).
    void sweep_rundirs();

    // Counters and fallback reasons live in the process's stats region (`shunt stats`).
    Counters& counters() { return StatsRegion::instance().counters(); }
    void count_fallback(bool server, uint32_t reason) { StatsRegion::instance().count_fallback(server, reason); }

private:
    Engine();
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<const Rundir>> rundirs_;
    std::set<pid_t> peers_;
    std::atomic<uint64_t> live_dmbs_{0};
    std::atomic<uint64_t> max_dmbs_;
};

}  // namespace shunt::lo
