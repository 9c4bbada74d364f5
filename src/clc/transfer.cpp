#include "clc/transfer.hpp"

#include "core/wait.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace shunt::clc {
namespace {

using Clock = WaitClock;
using Fail = Unexpected<TransferError>;

Fail fail(TransferError::Kind k, int err = 0) { return Fail{TransferError{k, err}}; }

shunt::Result<size_t, TransferError> recv_until(int fd, uint8_t* buf, size_t want, int flags,
                                                Clock::time_point deadline, std::chrono::microseconds spin) {
    size_t have = 0;
    while (have < want) {
        if (int e = wait_readable(fd, deadline, spin)) {
            return e == ETIMEDOUT ? fail(TransferError::Kind::Timeout) : fail(TransferError::Kind::Io, e);
        }
        // A peek always restarts from the first byte; a read continues where it stopped.
        const size_t off = (flags & MSG_PEEK) ? 0 : have;
        const ssize_t n = ::recv(fd, buf + off, want - off, flags | MSG_DONTWAIT);
        if (n == 0) return fail(TransferError::Kind::Closed);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return fail(TransferError::Kind::Io, errno);
        }
        have = (flags & MSG_PEEK) ? static_cast<size_t>(n) : have + static_cast<size_t>(n);
        if ((flags & MSG_PEEK) && have < want) {
            // Peeking more bytes than are queued returns at once; wait for the rest briefly.
            pollfd p{fd, 0, 0};
            ::poll(&p, 1, 1);
        }
    }
    return have;
}

}  // namespace

std::string TransferError::message() const {
    switch (kind) {
        case Kind::Io: return fmt::format("CLC I/O error: {}", std::strerror(err));
        case Kind::Timeout: return "CLC timeout waiting for peer";
        case Kind::Closed: return "CLC peer closed the connection";
        case Kind::Malformed: return clc.message();
    }
    return "CLC error";
}

int send_message(int fd, const Message& m) {
    const std::vector<uint8_t> bytes = encode(m);
    size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                pollfd p{fd, POLLOUT, 0};
                ::poll(&p, 1, static_cast<int>(kWaitTime.count()));
                continue;
            }
            return errno;
        }
        sent += static_cast<size_t>(n);
    }
    return 0;
}

shunt::Result<Message, TransferError> receive_message(int fd, std::chrono::milliseconds timeout,
                                                     std::chrono::microseconds spin) {
    const auto deadline = Clock::now() + timeout;
    std::array<uint8_t, kMaxMessageLen> buf;
    auto peeked = recv_until(fd, buf.data(), kHeaderLen, MSG_PEEK, deadline, spin);
    if (!peeked) return Fail{peeked.error()};
    auto header = decode_header(std::span(buf.data(), kHeaderLen));
    if (!header) return Fail{TransferError{TransferError::Kind::Malformed, 0, header.error()}};
    auto got = recv_until(fd, buf.data(), header->length, 0, deadline, spin);
    if (!got) return Fail{got.error()};
    auto msg = decode(std::span(buf.data(), header->length));
    if (!msg) return Fail{TransferError{TransferError::Kind::Malformed, 0, msg.error()}};
    return std::move(*msg);
}

}  // namespace shunt::clc
