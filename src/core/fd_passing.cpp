#include "core/fd_passing.hpp"

#include <cerrno>
#include <cstring>

#include "core/wait.hpp"

namespace shunt {

int send_with_fds(int sock, std::span<const uint8_t> data, std::span<const int> fds) {
    iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return 0;
        if (errno != EINTR) return errno;
    }
}

Result<ReceivedMessage, int> receive_with_fds(int sock, size_t max_data, size_t max_fds,
                                              std::chrono::milliseconds timeout, std::chrono::microseconds spin) {
    const auto deadline = WaitClock::now() + timeout;
    ReceivedMessage out;
    out.data.resize(max_data);
    std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
    for (;;) {
        if (int e = wait_readable(sock, deadline, spin)) return Unexpected{e};
        iovec iov{out.data.data(), out.data.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        const ssize_t got = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return Unexpected{errno};
        }
        // Take ownership of every descriptor first, so none leaks on an error below.
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            const size_t n_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n_fds; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                out.fds.emplace_back(fd);
            }
        }
        if (got == 0 && out.fds.empty()) return Unexpected{ECONNRESET};
        if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return Unexpected{EMSGSIZE};
        out.data.resize(static_cast<size_t>(got));
        return out;
    }
}

Result<ucred, int> peer_credentials(int sock) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return Unexpected{errno};
    return cred;
}

}  // namespace shunt
