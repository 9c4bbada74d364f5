// Data calls on an accelerated connection: recv/send and their flags, sendfile, splice.
// The application's socket flags (O_NONBLOCK) and per-call flags (MSG_DONTWAIT, MSG_PEEK,
// MSG_WAITALL, MSG_TRUNC, MSG_NOSIGNAL) behave as on a TCP socket; errno is only ever what
// the kernel would set, and EPIPE raises SIGPIPE in the calling thread unless MSG_NOSIGNAL.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "preload/guard.hpp"
#include "preload/log.hpp"
#include "preload/ops.hpp"
#include "preload/real.hpp"

namespace shunt::preload {
namespace {

constexpr size_t kCopyChunk = 64 * 1024;

uint8_t* scratch() {
    thread_local std::vector<uint8_t> buf(kCopyChunk);
    return buf.data();
}

size_t iov_total(const iovec* iov, int iovcnt) {
    size_t n = 0;
    for (int i = 0; i < iovcnt; ++i) n += iov[i].iov_len;
    return n;
}

// Kernel TCP raises SIGPIPE on a write to a connection that cannot take it any more.
ssize_t epipe(int flags) {
    if (!(flags & MSG_NOSIGNAL)) ::pthread_kill(::pthread_self(), SIGPIPE);
    errno = EPIPE;
    return -1;
}

// The iovecs after skipping `done` bytes.
std::vector<iovec> advance(const iovec* iov, int iovcnt, size_t done) {
    std::vector<iovec> out;
    for (int i = 0; i < iovcnt; ++i) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        out.push_back({static_cast<uint8_t*>(iov[i].iov_base) + done, iov[i].iov_len - done});
        done = 0;
    }
    return out;
}

ssize_t read_discarding(lo::Connection& c, size_t want, lo::IoMode mode) {
    size_t done = 0;
    while (done < want) {
        iovec v{scratch(), std::min(kCopyChunk, want - done)};
        const ssize_t n = c.readv(&v, 1, mode);
        if (n <= 0) return done > 0 ? static_cast<ssize_t>(done) : n;
        done += static_cast<size_t>(n);
        if (static_cast<size_t>(n) < v.iov_len) break;
        mode.nonblock = true;  // whatever follows without waiting
    }
    return static_cast<ssize_t>(done);
}

// The kernel's recvmsg on the connection's socket, once it carries the data (moved to TCP).
ssize_t kernel_recv(SocketState& s, const iovec* iov, int iovcnt, int flags) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    return ::recvmsg(s.smcd->tcp_fd(), &msg, flags | (s.nonblock ? MSG_DONTWAIT : 0));
}

// Urgent data (MSG_OOB: ftplib's abort(), telnet's interrupt) has no place in a ring: the
// connection moves to TCP as for an exec (both sides resend what the other had not read, in
// order) and the kernel sends it. `shunt stat` then says HANDOFF.
ssize_t send_urgent(SocketState& s, const iovec* iov, int iovcnt, int flags) {
    lo::Connection& c = *s.smcd;
    if (!settle_hand_off(s)) {
        const size_t lost = c.hand_off(std::chrono::milliseconds(2));
        demote_moved(s);
        if (lost) log_always("urgent data: the peer had closed; %zu bytes it had sent were never read", lost);
        else log_debug("urgent data: connection handed to TCP");
    }
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    return ::sendmsg(c.tcp_fd(), &msg, flags | (s.nonblock ? MSG_DONTWAIT : 0));
}

}  // namespace

ssize_t on_recv(SocketState& s, const iovec* iov, int iovcnt, int flags) {
    InsideShunt guard;
    const int saved = errno;
    if (flags & MSG_OOB) {
        // Urgent data travels only over TCP, once the peer moved the connection there to send
        // it; until then none is pending, as TCP answers then.
        if (settle_hand_off(s)) return kernel_recv(s, iov, iovcnt, flags);
        errno = EINVAL;
        return -1;
    }
    if (flags & MSG_ERRQUEUE) {
        errno = EAGAIN;
        return -1;
    }
    lo::Connection& c = *s.smcd;
    lo::IoMode mode{s.nonblock || (flags & MSG_DONTWAIT), (flags & MSG_PEEK) != 0};
    const size_t want = iov_total(iov, iovcnt);
    ssize_t n;
    if (flags & MSG_TRUNC && !mode.peek) {
        n = read_discarding(c, want, mode);
    } else if (flags & MSG_WAITALL && !mode.nonblock && !mode.peek) {
        size_t done = 0;
        n = 0;
        while (done < want) {
            const auto rest = advance(iov, iovcnt, done);
            n = c.readv(rest.data(), static_cast<int>(rest.size()), mode);
            if (n <= 0) break;
            done += static_cast<size_t>(n);
        }
        if (done > 0) n = static_cast<ssize_t>(done);
    } else {
        n = c.readv(iov, iovcnt, mode);
    }
    if (n >= 0) errno = saved;
    return n;
}

ssize_t on_recvmsg(SocketState& s, msghdr* msg, int flags) {
    const ssize_t n = on_recv(s, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags);
    if (n >= 0) {
        msg->msg_namelen = 0;  // a connected stream names no sender
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
    }
    return n;
}

ssize_t on_send(SocketState& s, const iovec* iov, int iovcnt, int flags) {
    InsideShunt guard;
    const int saved = errno;
    if (flags & MSG_OOB) return send_urgent(s, iov, iovcnt, flags);
    const lo::IoMode mode{s.nonblock || (flags & MSG_DONTWAIT), false};
    const ssize_t n = s.smcd->writev(iov, iovcnt, mode);
    if (n < 0 && errno == EPIPE) return epipe(flags);
    if (n >= 0) errno = saved;
    return n;
}

ssize_t on_sendfile(SocketState& s, int in_fd, off_t* offset, size_t count) {
    InsideShunt guard;
    const int saved = errno;
    off_t pos = offset ? *offset : ::lseek(in_fd, 0, SEEK_CUR);
    if (pos < 0) return -1;
    const lo::IoMode mode{s.nonblock.load(), false};
    size_t done = 0;
    int err = 0;
    while (done < count) {
        const ssize_t r = ::pread(in_fd, scratch(), std::min(kCopyChunk, count - done), pos);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            err = r < 0 ? errno : 0;
            break;
        }
        iovec v{scratch(), static_cast<size_t>(r)};
        const ssize_t w = s.smcd->writev(&v, 1, mode);
        if (w < 0) {
            err = errno;
            break;
        }
        done += static_cast<size_t>(w);
        pos += w;
        if (w < r) break;  // non-blocking and full: the rest of what we read stays in the file
    }
    if (offset) *offset = pos;
    else ::lseek(in_fd, pos, SEEK_SET);
    if (done == 0 && err) {
        if (err == EPIPE) return epipe(0);
        errno = err;
        return -1;
    }
    errno = saved;
    return static_cast<ssize_t>(done);
}

ssize_t on_splice_in(SocketState& s, int in_fd, loff_t* off_in, size_t len, unsigned flags) {
    InsideShunt guard;
    const int saved = errno;
    const bool nonblock = s.nonblock || (flags & SPLICE_F_NONBLOCK);
    // Take from the source only what the ring can hold now: bytes read from a pipe cannot be
    // put back.
    size_t room = s.smcd->writable_bytes();
    if (room == 0) {
        if (nonblock) {
            errno = EAGAIN;
            return -1;
        }
        room = kCopyChunk;  // the write below waits for space
    }
    const size_t want = std::min({len, room, kCopyChunk});
    const ssize_t r = off_in ? ::pread(in_fd, scratch(), want, *off_in) : ::read(in_fd, scratch(), want);
    if (r <= 0) return r;
    if (off_in) *off_in += r;
    size_t done = 0;
    while (done < static_cast<size_t>(r)) {
        iovec v{scratch() + done, static_cast<size_t>(r) - done};
        const ssize_t w = s.smcd->writev(&v, 1, lo::IoMode{false, false});
        if (w < 0) {
            if (errno == EPIPE) return epipe(0);
            return done > 0 ? static_cast<ssize_t>(done) : -1;
        }
        done += static_cast<size_t>(w);
    }
    errno = saved;
    return static_cast<ssize_t>(done);
}

ssize_t on_splice_out(SocketState& s, int out_fd, loff_t* off_out, size_t len, unsigned flags) {
    InsideShunt guard;
    const int saved = errno;
    // Peek, hand to the destination, then consume exactly what it took.
    iovec v{scratch(), std::min(len, kCopyChunk)};
    const ssize_t n = s.smcd->readv(&v, 1, lo::IoMode{s.nonblock || (flags & SPLICE_F_NONBLOCK), true});
    if (n <= 0) return n;
    const ssize_t w = off_out ? ::pwrite(out_fd, scratch(), static_cast<size_t>(n), *off_out)
                              : ::write(out_fd, scratch(), static_cast<size_t>(n));
    if (w <= 0) return w;
    if (off_out) *off_out += w;
    const ssize_t consumed = read_discarding(*s.smcd, static_cast<size_t>(w), lo::IoMode{true, false});
    if (consumed >= 0) errno = saved;
    return consumed;
}

}  // namespace shunt::preload
