#pragma once
// Spinning only where it pays (docs/waiting.md).
//
// A waiter that finds nothing to do can look again in a loop (spin) before it sleeps. A spin
// that ends in an event sooner than a sleep and a wake-up would have cost saves both CPU and
// the wake-up latency; a spin that ends empty is pure loss. So each waiter (a connection's
// reader or writer, a thread in poll/select/epoll) keeps a SpinPolicy that:
//   * learns from its recent waits how often one ends within the budget (an average of hits,
//     where a wait that slept and still ended within the budget counts as a hit too);
//   * spins, up to the budget, only while most recent waits were hits; otherwise it sleeps at
//     once, trying a spin again every kProbeEvery waits so that a change of pace is noticed;
//   * holds empty spins to a share of the thread's time (kEmptySpinShare) with a token bucket,
//     a hard cap whatever the history says.
// A budget of zero (SHUNT_SPIN_US=0) means never spin.
#include <chrono>
#include <cstdint>
#include <optional>

namespace shunt {

// The CPU's spin-wait hint: lets the sibling hyperthread run and saves power in a busy loop.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#else
    asm volatile("" ::: "memory");
#endif
}

class SpinPolicy {
public:
    using Clock = std::chrono::steady_clock;
    // One probe spin every this many waits while the policy sleeps at once.
    static constexpr uint32_t kProbeEvery = 16;
    // Empty spins may take at most this share of the waiter's time (parts per 1024).
    static constexpr uint32_t kEmptySpinShare = 51;  // about 5%

    explicit constexpr SpinPolicy(std::chrono::microseconds budget = {}) : budget_(budget) {}
    void set_budget(std::chrono::microseconds budget) { budget_ = budget; }
    std::chrono::microseconds budget() const { return budget_; }

    // A wait begins: how long to spin before sleeping (zero: sleep at once).
    std::chrono::nanoseconds plan(Clock::time_point now);
    // The wait that began at `start` ended at `end` (an event, or the caller gave up); `spun`
    // is how long it spun and `hit` whether the event came while spinning.
    void record(Clock::time_point start, Clock::time_point end, std::chrono::nanoseconds spun, bool hit);

    // For tests and `shunt stats`: the learned share of hits (0..1024).
    uint32_t hit_rate() const { return hit_rate_; }

private:
    std::chrono::microseconds budget_;
    uint32_t hit_rate_ = 1024;  // start by spinning: the first waits teach the rest
    uint32_t waits_since_spin_ = 0;
    // Token bucket for empty spins, in nanoseconds: refills at kEmptySpinShare of elapsed time.
    int64_t tokens_ns_ = 0;
    Clock::time_point refilled_{};
};

// Spins while `ready()` is false, at most `limit`; true if it became ready. `ready` is called
// every iteration; the clock is read every 64.
template <class Ready>
bool spin_until(std::chrono::nanoseconds limit, Ready&& ready) {
    if (limit.count() <= 0) return false;
    const auto until = SpinPolicy::Clock::now() + limit;
    for (unsigned i = 1;; ++i) {
        cpu_relax();
        if (ready()) return true;
        if ((i & 63) == 0 && SpinPolicy::Clock::now() >= until) return false;
    }
}

// One wait of one waiter, from the first look that found nothing to the event: spins as the
// policy allows, and tells the policy how the wait went.
class WaitEpisode {
public:
    // The wait begins (if it had not): how long the policy lets it spin.
    std::chrono::nanoseconds plan(SpinPolicy& policy) {
        if (!start_) {
            start_ = SpinPolicy::Clock::now();
            limit_ = policy.plan(*start_);
        }
        return limit_;
    }
    // Spins at most `limit`; true if `ready()` came true meanwhile.
    template <class Ready>
    bool spin(std::chrono::nanoseconds limit, Ready&& ready) {
        if (limit.count() <= 0) return false;
        const auto now = SpinPolicy::Clock::now();
        hit_ = spin_until(limit, ready);
        spun_ += SpinPolicy::Clock::now() - now;
        return hit_;
    }
    // Spins if the policy says it pays; true if `ready()` came true while spinning.
    template <class Ready>
    bool spin(SpinPolicy& policy, Ready&& ready) {
        return spin(plan(policy), ready);
    }
    // The waiter is about to sleep.
    void sleeping() {
        if (!start_) start_ = SpinPolicy::Clock::now();
        slept_ = true;
    }
    // The event came (or the waiter gave up): the policy learns; a no-op if nothing waited.
    void done(SpinPolicy& policy) {
        if (!start_) return;
        policy.record(*start_, SpinPolicy::Clock::now(), spun_, hit_ && !slept_);
        *this = WaitEpisode{};
    }

private:
    std::optional<SpinPolicy::Clock::time_point> start_;
    std::chrono::nanoseconds limit_{};
    SpinPolicy::Clock::duration spun_{};
    bool hit_ = false, slept_ = false;
};

}  // namespace shunt
