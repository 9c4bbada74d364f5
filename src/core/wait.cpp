#include "core/wait.hpp"

#include <poll.h>

#include <cerrno>

namespace shunt {

int wait_readable(int fd, WaitClock::time_point deadline, std::chrono::microseconds spin) {
    pollfd p{fd, POLLIN, 0};
    const auto spin_until = std::min(deadline, WaitClock::now() + spin);
    while (WaitClock::now() < spin_until) {
        if (::poll(&p, 1, 0) > 0) return 0;
    }
    for (;;) {
        const auto now = WaitClock::now();
        if (now >= deadline) return ETIMEDOUT;
        // Round up: poll() must not wake before the deadline and spin on a zero timeout.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return errno;
    }
}

}  // namespace shunt
