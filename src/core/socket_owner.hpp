#pragma once
// Does a process hold a given TCP socket? The proof behind trusting a rendezvous peer of
// another user: only the process that holds the other end of our TCP connection may speak
// for it. The kernel names that socket (sock_diag, looked up by its exact 4-tuple) and
// /proc/<pid>/fd shows whether the process holds it. Needs the right to read that process's
// fd table (same user, or root).
#include <sys/types.h>

#include "core/inet.hpp"

namespace shunt {

// `local`/`remote` as seen by the socket's owner.
bool process_holds_tcp_socket(pid_t pid, const IpPort& local, const IpPort& remote);

}  // namespace shunt
