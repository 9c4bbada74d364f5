#pragma once
// File descriptors over a UNIX socket (SCM_RIGHTS) and the peer's credentials (SO_PEERCRED).
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace shunt {

// Sends `data` with `fds` attached in one message. 0 or errno.
int send_with_fds(int sock, std::span<const uint8_t> data, std::span<const int> fds);

struct ReceivedMessage {
    std::vector<uint8_t> data;
    std::vector<UniqueFd> fds;
};
// One message of at most max_data bytes and max_fds descriptors, within `timeout`.
// Error: errno (ETIMEDOUT, ECONNRESET for EOF, EMSGSIZE if truncated or too many fds).
Result<ReceivedMessage, int> receive_with_fds(int sock, size_t max_data, size_t max_fds,
                                              std::chrono::milliseconds timeout, std::chrono::microseconds spin = {});

Result<ucred, int> peer_credentials(int sock);

}  // namespace shunt
