#include "core/spin.hpp"

#include <algorithm>

namespace shunt {
namespace {

// Empty-spin credit saved up while idle: enough for a burst of probes, never more.
constexpr int64_t kBucketNs = 1'000'000;
// Hits are averaged with weight 1/8: a handful of waits changes the decision.
constexpr int kAverageShift = 3;

}  // namespace

std::chrono::nanoseconds SpinPolicy::plan(Clock::time_point now) {
    if (budget_.count() <= 0) return {};
    const int64_t elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - refilled_).count();
    if (elapsed > 0) {
        // elapsed may be the whole uptime on the first call: clamp before scaling.
        const int64_t earned = std::min(elapsed, kBucketNs * 1024 / kEmptySpinShare) * kEmptySpinShare / 1024;
        tokens_ns_ = std::min(kBucketNs, tokens_ns_ + earned);
        refilled_ = now;
    }
    const std::chrono::nanoseconds budget = budget_;
    if (tokens_ns_ < budget.count()) return {};  // the cap: this spin might end empty
    if (hit_rate_ >= 512) return budget;
    if (++waits_since_spin_ >= kProbeEvery) return budget;
    return {};
}

void SpinPolicy::record(Clock::time_point start, Clock::time_point end, std::chrono::nanoseconds spun, bool hit) {
    const bool short_wait = hit || (end - start) <= std::chrono::nanoseconds(budget_);
    const int target = short_wait ? 1024 : 0;
    hit_rate_ = static_cast<uint32_t>(static_cast<int>(hit_rate_) + ((target - static_cast<int>(hit_rate_)) >> kAverageShift));
    if (spun.count() > 0) {
        waits_since_spin_ = 0;
        if (!hit) tokens_ns_ -= spun.count();
    }
}

}  // namespace shunt
