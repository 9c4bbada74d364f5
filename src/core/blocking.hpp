#pragma once
// How a blocking socket call that shunt emulates ends, as the kernel's would (docs/waiting.md):
// a socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) ends it with EAGAIN, and a signal handler that
// runs meanwhile ends it with EINTR unless the handler was installed with SA_RESTART and the
// socket has no timeout (Linux sock_intr_errno).
#include <chrono>
#include <optional>

namespace shunt {

// When a blocking call on `fd` that starts now must give up: SO_RCVTIMEO or SO_SNDTIMEO
// (`optname`) from now, or nullopt for none (0, the default, means wait forever).
std::optional<std::chrono::steady_clock::time_point> socket_deadline(int fd, int optname);

// After a wait was interrupted by a signal handler: true if the kernel would restart the call.
// Which signal it was is not known here, so the answer is true only if every installed
// handler asked for restarts (SA_RESTART); one that did not could have been the one.
bool restart_after_signal();

}  // namespace shunt
