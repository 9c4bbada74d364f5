#pragma once
// Waiting for a descriptor to become readable: optionally spin first (poll with a zero timeout),
// because on a loaded two-core host a sleeping process takes 10-20 µs to wake and a handshake
// waits several times in a row; then sleep in poll() until the deadline.
#include <chrono>

namespace shunt {

using WaitClock = std::chrono::steady_clock;

// 0 once fd is readable or hung up, ETIMEDOUT at the deadline, or an errno.
int wait_readable(int fd, WaitClock::time_point deadline, std::chrono::microseconds spin = {});

}  // namespace shunt
