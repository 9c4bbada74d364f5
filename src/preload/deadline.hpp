#pragma once
// The time limit of a poll/select/epoll call as the preload emulates it.
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <optional>

namespace shunt::preload {

using Clock = std::chrono::steady_clock;

// nullopt: no limit (a null timeout).
inline std::optional<Clock::time_point> deadline_after(const timespec* timeout) {
    if (!timeout) return std::nullopt;
    return Clock::now() + std::chrono::seconds(timeout->tv_sec) + std::chrono::nanoseconds(timeout->tv_nsec);
}

// Milliseconds left for a kernel wait: -1 without a limit, 0 once it has passed.
inline int remaining_ms(std::optional<Clock::time_point> deadline) {
    if (!deadline) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, INT_MAX));
}

inline timespec from_ms(int ms) { return {ms / 1000, static_cast<long>(ms % 1000) * 1000000}; }

}  // namespace shunt::preload
