#pragma once
// Process-wide state of the lo transport: the rundir(s) in use, the DMB budget, the peers met
// so far (first contact), and the counters behind `shunt stats`.
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

namespace shunt::lo {

// Counters in the spirit of `smcd stats`.
struct Counters {
    std::atomic<uint64_t> client_smcd{0}, server_smcd{0};
    std::atomic<uint64_t> client_fallback{0}, server_fallback{0};
    std::atomic<uint64_t> handshake_errors{0};
    std::atomic<uint64_t> tx_bytes{0}, rx_bytes{0};
    std::atomic<uint64_t> tx_calls{0}, rx_calls{0};
    std::atomic<uint64_t> tx_buffer_full{0};
    std::atomic<uint64_t> wakeups_sent{0};
};

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

    Counters& counters() { return counters_; }
    void count_fallback(bool server, uint32_t reason);
    std::map<uint32_t, uint64_t> fallback_reasons(bool server) const;

private:
    Engine();
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<const Rundir>> rundirs_;
    std::set<pid_t> peers_;
    std::map<uint32_t, uint64_t> fallbacks_[2];
    std::atomic<uint64_t> live_dmbs_{0};
    std::atomic<uint64_t> max_dmbs_;
    Counters counters_;
};

}  // namespace shunt::lo
