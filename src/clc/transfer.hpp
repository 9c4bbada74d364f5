#pragma once
// CLC messages over a connected TCP socket, the way Linux moves them: each message leaves in one
// sendmsg; a receiver peeks the 8-byte header and then takes exactly `length` bytes, so bytes
// after the handshake (or from a peer that is not speaking CLC at all) stay in the socket.
#include <chrono>

#include "clc/codec.hpp"

namespace shunt::clc {

// Linux CLC_WAIT_TIME.
inline constexpr std::chrono::milliseconds kWaitTime{6000};

struct TransferError {
    enum class Kind {
        Io,         // errno in `err`
        Timeout,    // nothing complete within the wait time
        Closed,     // peer closed before a whole message arrived
        Malformed,  // bytes are not a valid CLC message; `clc` says why
    };
    Kind kind;
    int err = 0;
    Error clc{ErrorKind::Truncated, ""};
    std::string message() const;
};

// 0 on success, else an errno value.
int send_message(int fd, const Message& m);

// Waits at most `timeout` (spinning for `spin` first) for one whole message. On Malformed from
// the header check, nothing has been consumed from the socket.
shunt::Result<Message, TransferError> receive_message(int fd, std::chrono::milliseconds timeout = kWaitTime,
                                                     std::chrono::microseconds spin = {});

}  // namespace shunt::clc
