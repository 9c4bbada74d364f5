#include "lo/connection.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/inet.hpp"
#include "lo/engine.hpp"
#include "shunt/decline.hpp"

namespace shunt::lo {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelaxed = std::memory_order_relaxed;
// Publish-then-look pairs (Dekker) use seq_cst store and load on both sides, so of two sides
// that each publish and then look, at least one sees the other. It is what a fence would give
// (an xchg on x86) and, unlike a fence, ThreadSanitizer understands it.
constexpr auto kSeqCst = std::memory_order_seq_cst;
// Linux smc_rmb_wnd_update_limit: max(ring/10, SOCK_MIN_SNDBUF/2).
constexpr uint32_t kMinWindowUpdate = 2304;

size_t iov_total(const iovec* iov, int iovcnt) {
    size_t n = 0;
    for (int i = 0; i < iovcnt; ++i) n += iov[i].iov_len;
    return n;
}

struct IovPos {
    int index = 0;
    size_t offset = 0;
};

// Copies up to `max` bytes between a ring (from `pos`, wrapping at `size`) and the iovecs
// (from `at`, which advances). A message that wraps around the ring comes out whole.
template <bool ToRing>
size_t ring_copy(uint8_t* ring, uint32_t size, uint32_t pos, const iovec* iov, int iovcnt, IovPos& at, size_t max) {
    size_t done = 0;
    while (done < max && at.index < iovcnt) {
        const iovec& v = iov[at.index];
        const size_t seg = v.iov_len - at.offset;
        if (seg == 0) {
            ++at.index;
            at.offset = 0;
            continue;
        }
        const size_t n = std::min({seg, max - done, size_t{size - pos}});
        auto* app = static_cast<uint8_t*>(v.iov_base) + at.offset;
        if constexpr (ToRing) std::memcpy(ring + pos, app, n);
        else std::memcpy(app, ring + pos, n);
        done += n;
        at.offset += n;
        pos += static_cast<uint32_t>(n);
        if (pos == size) pos = 0;
    }
    return done;
}

void cpu_relax() { __builtin_ia32_pause(); }

// Waits (bounded) until a process that we saw die has let go of its descriptors: the kernel
// closes them one by one on exit, so its TCP socket may reach us before its rundir locks are
// released. A zombie or a vanished pid holds nothing.
void wait_exited(pid_t pid, std::chrono::milliseconds limit) {
    if (pid <= 0) return;
    const auto until = Clock::now() + limit;
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    while (Clock::now() < until) {
        char buf[512] = {};
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        const char* paren = n > 0 ? std::strrchr(buf, ')') : nullptr;
        if (!paren || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X') return;
        ::usleep(1000);
    }
}

uint64_t pack_cursor(Cursor c) { return CdcWord{c, 0, 0}.pack(); }

// After a non-blocking send/recv on `fd` failed: true to try again (EINTR, or EAGAIN once the
// socket is ready for `events`), false on a real error. The socket's own O_NONBLOCK is the
// application's; the hand-off must move every byte regardless.
bool retry_after_error(int fd, short events) {
    if (errno == EINTR) return true;
    if (errno != EAGAIN) return false;
    pollfd p{fd, events, 0};
    ::poll(&p, 1, -1);
    return true;
}

}  // namespace

const char* to_string(SmcState s) {
    switch (s) {
        case SmcState::Active: return "ACTIVE";
        case SmcState::Init: return "INIT";
        case SmcState::Closed: return "CLOSED";
        case SmcState::Listen: return "LISTEN";
        case SmcState::PeerCloseWait1: return "PEERCLW1";
        case SmcState::PeerCloseWait2: return "PEERCLW2";
        case SmcState::AppCloseWait1: return "APPLCLW1";
        case SmcState::AppCloseWait2: return "APPLCLW2";
        case SmcState::AppFinCloseWait: return "APPLFINCLW";
        case SmcState::PeerFinCloseWait: return "PEERFINCLW";
        case SmcState::PeerAbortWait: return "PEERABORTW";
        case SmcState::ProcessAbort: return "PROCESSABORT";
    }
    return "?";
}

Connection::Connection(UniqueFd tcp, bool server, uint32_t reason, uint32_t peer_reason)
    : tcp_(std::move(tcp)), server_(server), reason_(reason), peer_reason_(peer_reason) {
    fill_slot();
}

Connection::Connection(UniqueFd tcp, bool server, Link link, std::chrono::microseconds spin)
    : tcp_(std::move(tcp)), server_(server), link_(std::move(link)), spin_(spin) {
    fill_slot();
    add_holder();
}

std::unique_ptr<Connection> Connection::tcp_record(int tcp, bool server, uint32_t reason, uint32_t peer_reason) {
    std::unique_ptr<Connection> c(new Connection(UniqueFd(::fcntl(tcp, F_DUPFD_CLOEXEC, 0)), server, reason, peer_reason));
    c->tcp_.reset();
    return c;
}

Connection::~Connection() {
    close();
    StatsRegion::instance().release(slot_);
}

void Connection::fill_slot() {
    slot_ = StatsRegion::instance().acquire();
    if (!slot_) return;
    const auto local = local_endpoint(tcp_.get()).value_or(IpPort{});
    const auto peer = peer_endpoint(tcp_.get()).value_or(IpPort{});
    std::memcpy(slot_->local_addr, local.addr.data(), 16);
    std::memcpy(slot_->peer_addr, peer.addr.data(), 16);
    slot_->local_port = local.port;
    slot_->peer_port = peer.port;
    slot_->smcd = link_.has_value();
    slot_->server = server_;
    slot_->reason = reason_;
    slot_->peer_reason = peer_reason_;
    slot_->rx_ring = link_ ? link_->local.ring_size() : 0;
    slot_->tx_ring = link_ ? link_->peer.ring_size() : 0;
    slot_->local_token = link_ ? link_->local.token() : 0;
    slot_->peer_token = link_ ? link_->peer.token() : 0;
    for (auto* a : {&slot_->rx_consumed, &slot_->rx_peer_produced, &slot_->tx_produced, &slot_->tx_peer_consumed})
        a->store(0, kRelaxed);
    for (auto* a : {&slot_->sent_flags, &slot_->got_flags, &slot_->peer_died, &slot_->closed}) a->store(0, kRelaxed);
    slot_->gen.fetch_add(1, std::memory_order_release);  // even again: complete
    slot_->in_use.store(1, std::memory_order_release);
}

void Connection::set_nonblocking(bool on) {
    nonblocking_ = on;
    if (!link_) {
        const int flags = ::fcntl(tcp_.get(), F_GETFL);
        ::fcntl(tcp_.get(), F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
    }
}

int Connection::poll_fd() {
    if (!link_) return tcp_.get();
    if (!poll_fd_) {
        UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
        epoll_event e{};
        e.events = EPOLLIN;
        for (int fd : {link_->rx_wake.get(), link_->tx_wake.get()}) {
            e.data.fd = fd;
            ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &e);
        }
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.fd = tcp_.get();
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, tcp_.get(), &e);
        poll_fd_ = std::move(ep);
        // Start readable: data may already be waiting, and the first read() that finds none
        // resets it. From then on read() keeps "readable" true while data remains.
        signal(link_->rx_wake.get());
    }
    return poll_fd_.get();
}

ssize_t Connection::readv(const iovec* iov, int iovcnt) { return readv(iov, iovcnt, IoMode{nonblocking_, false}); }
ssize_t Connection::writev(const iovec* iov, int iovcnt) { return writev(iov, iovcnt, IoMode{nonblocking_, false}); }

ssize_t Connection::readv(const iovec* iov, int iovcnt, IoMode mode) {
    if (closed_) {
        errno = EBADF;
        return -1;
    }
    if (link_ && !moved_) return smcd_read(iov, iovcnt, mode);
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    const int flags = (mode.nonblock ? MSG_DONTWAIT : 0) | (mode.peek ? MSG_PEEK : 0);
    for (;;) {
        const ssize_t n = ::recvmsg(tcp_.get(), &msg, flags);
        if (n >= 0 || errno != EINTR) return n;
    }
}

ssize_t Connection::writev(const iovec* iov, int iovcnt, IoMode mode) {
    if (closed_) {
        errno = EBADF;
        return -1;
    }
    if (link_ && !moved_) return smcd_write(iov, iovcnt, mode);
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    const int flags = MSG_NOSIGNAL | (mode.nonblock ? MSG_DONTWAIT : 0);
    for (;;) {
        const ssize_t n = ::sendmsg(tcp_.get(), &msg, flags);
        if (n >= 0 || errno != EINTR) return n;
    }
}

void Connection::signal(int wake) {
    const uint64_t one = 1;
    if (::write(wake, &one, sizeof one) == sizeof one) Engine::instance().counters().wakeups_sent.fetch_add(1, kRelaxed);
}

void Connection::drain(int wake) {
    uint64_t v;
    while (::read(wake, &v, sizeof v) == sizeof v) {
    }
}

bool Connection::sleep_on(int wake) {
    pollfd p[2] = {{wake, POLLIN, 0}, {tcp_.get(), POLLIN | POLLRDHUP, 0}};
    const nfds_t n = tcp_eof_ ? 1 : 2;
    for (;;) {
        const int r = ::poll(p, n, -1);
        if (r > 0) break;
        if (r < 0 && errno != EINTR) return false;
    }
    if (n == 2 && p[1].revents) check_tcp();
    return true;
}

void Connection::check_tcp() {
    if (handed_off()) return;  // the socket carries the data now
    char c;
    const ssize_t n = ::recv(tcp_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF, a reset, or stray bytes: the peer has left this socket. One that closed properly
    // set its close flag first; without one it died (or broke the protocol).
    if (n > 0) protocol_error_ = true;
    const CdcWord w = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    if (!(w.conn_flags & (conn_flag::kPeerConnClosed | conn_flag::kPeerConnAbort)) && !peer_died_.exchange(true)) {
        wait_exited(link_->peer_pid, std::chrono::milliseconds(200));
        Engine::instance().sweep_rundirs();  // the dead peer cannot clean up after itself
    }
    tcp_eof_ = true;
}

Connection::PeerEnd Connection::peer_end() {
    const CdcWord w = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    if (slot_) {
        slot_->got_flags.store(w.conn_flags, kRelaxed);
        slot_->peer_died.store(peer_died_, kRelaxed);
    }
    if (w.conn_flags & conn_flag::kPeerConnAbort || protocol_error_) return PeerEnd::Aborted;
    if (w.conn_flags & conn_flag::kPeerConnClosed) return PeerEnd::Closed;
    if (peer_died_) {
        // A process that dies leaves as close() would: an abort if it had not read all we sent.
        const Cursor ours = CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor;
        const Cursor read = CdcWord::unpack(link_->peer.meta()->owner_consumed.load(kAcquire)).cursor;
        const auto unread = cursor_distance(read, ours, link_->peer.ring_size());
        return unread && *unread == 0 ? PeerEnd::Closed : PeerEnd::Aborted;
    }
    if (w.conn_flags & conn_flag::kPeerDoneWriting) return PeerEnd::DoneWriting;
    return PeerEnd::Open;
}

void Connection::abort_protocol() {
    protocol_error_ = true;
    publish_cons_word(std::nullopt, 0, 0, conn_flag::kPeerConnAbort);
    signal(link_->peer_rx_wake.get());
    signal(link_->peer_tx_wake.get());
}

void Connection::publish_cons_word(std::optional<Cursor> cursor, uint8_t set_prod, uint8_t clear_prod, uint8_t set_conn) {
    std::lock_guard lock(publish_mu_);
    if (cursor) cons_word_.cursor = *cursor;
    cons_word_.prod_flags = static_cast<uint8_t>((cons_word_.prod_flags | set_prod) & ~clear_prod);
    cons_word_.conn_flags |= set_conn;
    link_->peer.cons_slot().store(cons_word_.pack(), kSeqCst);
    if (slot_) slot_->sent_flags.store(cons_word_.conn_flags, kRelaxed);
}

void Connection::after_consume(bool force) {
    const Dmb& local = link_->local;
    const uint32_t ring = local.ring_size();
    const uint32_t unannounced = cursor_distance(announced_, consumed_, ring).value_or(0);
    if (unannounced == 0) return;
    const CdcWord writer = CdcWord::unpack(local.cons_slot().load(kAcquire));
    const bool asked = writer.prod_flags & (prod_flag::kWriteBlocked | prod_flag::kConsCursorUpdateRequest);
    const Cursor peer_prod = CdcWord::unpack(local.prod_slot().load(kRelaxed)).cursor;
    const uint32_t writer_free = ring - cursor_distance(announced_, peer_prod, ring).value_or(ring);
    const uint32_t limit = std::max(ring / 10, kMinWindowUpdate);
    if (!(force || asked || (unannounced > limit && writer_free <= ring / 2))) return;
    announced_ = consumed_;
    publish_cons_word(announced_, 0, 0, 0);
    auto& wants = link_->peer.meta()->writer_wants_signal;
    if (wants.load(kSeqCst) && wants.exchange(0)) signal(link_->peer_tx_wake.get());
}

ssize_t Connection::smcd_read(const iovec* iov, int iovcnt, IoMode mode) {
    std::unique_lock lock(rx_mu_);
    if (moved_) {  // take_over() ran while we waited for the lock
        lock.unlock();
        return readv(iov, iovcnt, mode);
    }
    if (iov_total(iov, iovcnt) == 0) return 0;
    Dmb& local = link_->local;
    const uint32_t ring = local.ring_size();
    bool spun = false;
    for (;;) {
        if (shut_rd_) return 0;
        if (closed_) {
            errno = EBADF;
            return -1;
        }
        const CdcWord prod = CdcWord::unpack(local.prod_slot().load(kAcquire));
        const auto avail = cursor_distance(consumed_, prod.cursor, ring);
        if (!avail) {
            abort_protocol();
            errno = ECONNRESET;
            return -1;
        }
        if (*avail > 0) {
            IovPos at;
            const size_t n = ring_copy<false>(local.ring(), ring, consumed_.count, iov, iovcnt, at, *avail);
            if (mode.peek) return static_cast<ssize_t>(n);
            consumed_ = cursor_add(consumed_, static_cast<uint32_t>(n), ring);
            local.meta()->owner_consumed.store(pack_cursor(consumed_), std::memory_order_release);
            if (slot_) {
                slot_->rx_consumed.store(pack_cursor(consumed_), kRelaxed);
                slot_->rx_peer_produced.store(prod.pack(), kRelaxed);
            }
            auto& c = Engine::instance().counters();
            c.rx_bytes.fetch_add(n, kRelaxed);
            c.rx_calls.fetch_add(1, kRelaxed);
            after_consume(false);
            // Level-triggered readiness: data is left that the peer will not signal again.
            if (n < *avail && rx_armed_) {
                if (local.meta()->reader_wants_signal.exchange(0)) signal(link_->rx_wake.get());
                rx_armed_ = false;
            }
            return static_cast<ssize_t>(n);
        }
        if (handed_off()) {
            lock.unlock();
            take_over();
            return readv(iov, iovcnt, mode);
        }
        const PeerEnd end = peer_end();
        if (end == PeerEnd::Aborted) {
            errno = ECONNRESET;
            return -1;
        }
        if (end != PeerEnd::Open) {
            // The close flag came after the last data; look once more for data sent before it.
            const CdcWord again = CdcWord::unpack(local.prod_slot().load(kAcquire));
            if (again.cursor != prod.cursor) continue;
            return 0;
        }
        if (!mode.nonblock && !spun && spin_.count() > 0) {
            spun = true;
            const uint64_t p0 = local.prod_slot().load(kRelaxed), c0 = local.cons_slot().load(kRelaxed);
            const auto until = Clock::now() + spin_;
            for (unsigned i = 0;; ++i) {
                cpu_relax();
                if (local.prod_slot().load(kRelaxed) != p0 || local.cons_slot().load(kRelaxed) != c0) break;
                if ((i & 63) == 0 && Clock::now() >= until) break;
            }
            continue;
        }
        // Nothing to read: publish what we consumed (a blocked writer may wait for it), reset
        // our readiness, ask for a signal, and look once more before giving up or sleeping.
        after_consume(true);
        drain(link_->rx_wake.get());
        local.meta()->reader_wants_signal.store(1, kSeqCst);
        rx_armed_ = true;
        if (local.prod_slot().load(kSeqCst) != prod.pack() || peer_end() != PeerEnd::Open) continue;
        if (mode.nonblock) {
            errno = EAGAIN;
            return -1;
        }
        if (!sleep_on(link_->rx_wake.get())) return -1;
        spun = false;
    }
}

ssize_t Connection::smcd_write(const iovec* iov, int iovcnt, IoMode mode) {
    std::unique_lock lock(tx_mu_);
    if (moved_) {  // take_over() ran while we waited for the lock
        lock.unlock();
        return writev(iov, iovcnt, mode);
    }
    const size_t total = iov_total(iov, iovcnt);
    if (total == 0) return 0;
    Dmb& peer = link_->peer;
    const Dmb& local = link_->local;
    const uint32_t ring = peer.ring_size();
    IovPos at;
    size_t done = 0;
    bool spun = false;
    auto fail = [&](int err) -> ssize_t {
        if (done > 0) return static_cast<ssize_t>(done);
        errno = err;
        return -1;
    };
    while (done < total) {
        if (shut_wr_ || closed_) return fail(closed_ ? EBADF : EPIPE);
        const CdcWord reader = CdcWord::unpack(local.cons_slot().load(kAcquire));
        if ((reader.conn_flags & conn_flag::kMovedToTcp) || (done == 0 && !spun && handed_off())) {
            if (done > 0) break;  // what went into the ring is resent by take_over()
            lock.unlock();
            take_over();
            return writev(iov, iovcnt, mode);
        }
        const PeerEnd end = peer_end();
        if (end == PeerEnd::Aborted) return fail(ECONNRESET);
        if (end == PeerEnd::Closed) return fail(EPIPE);
        const auto used = cursor_distance(reader.cursor, produced_, ring);
        if (!used || *used > ring) {
            abort_protocol();
            return fail(ECONNRESET);
        }
        const uint32_t space = ring - *used;
        if (space > 0) {
            const size_t n = ring_copy<true>(peer.ring(), ring, produced_.count, iov, iovcnt, at,
                                             std::min<size_t>(space, total - done));
            produced_ = cursor_add(produced_, static_cast<uint32_t>(n), ring);
            peer.prod_slot().store(pack_cursor(produced_), kSeqCst);
            done += n;
            if (slot_) {
                slot_->tx_produced.store(pack_cursor(produced_), kRelaxed);
                slot_->tx_peer_consumed.store(pack_cursor(reader.cursor), kRelaxed);
            }
            if (tx_armed_) {
                tx_armed_ = false;
                // Withdrawn before the reader signalled: signal ourselves instead, for a waiter
                // (an epoll set) that armed the flag too and now relies on that signal.
                if (link_->local.meta()->writer_wants_signal.exchange(0)) signal(link_->tx_wake.get());
                publish_cons_word(std::nullopt, 0, prod_flag::kWriteBlocked, 0);
            }
            auto& wants = peer.meta()->reader_wants_signal;
            if (wants.load(kSeqCst) && wants.exchange(0)) signal(link_->peer_rx_wake.get());
            spun = false;
            continue;
        }
        Engine::instance().counters().tx_buffer_full.fetch_add(1, kRelaxed);
        if (mode.nonblock && done > 0) break;
        if (!mode.nonblock && !spun && spin_.count() > 0) {
            spun = true;
            const uint64_t c0 = local.cons_slot().load(kRelaxed);
            const auto until = Clock::now() + spin_;
            for (unsigned i = 0;; ++i) {
                cpu_relax();
                if (local.cons_slot().load(kRelaxed) != c0) break;
                if ((i & 63) == 0 && Clock::now() >= until) break;
            }
            continue;
        }
        // Full: tell the reader we are blocked (SMC write_blocked), ask for a signal, re-check.
        drain(link_->tx_wake.get());
        link_->local.meta()->writer_wants_signal.store(1, kSeqCst);
        if (!tx_armed_) publish_cons_word(std::nullopt, prod_flag::kWriteBlocked, 0, 0);
        tx_armed_ = true;
        if (local.cons_slot().load(kSeqCst) != reader.pack() || peer_end() != PeerEnd::Open) continue;
        if (handed_off()) {  // another process holding our side moved it (the peer's move is above)
            if (done > 0) break;
            lock.unlock();
            take_over();
            return writev(iov, iovcnt, mode);
        }
        if (mode.nonblock) return fail(EAGAIN);
        if (!sleep_on(link_->tx_wake.get())) return fail(errno);
        spun = false;
    }
    auto& c = Engine::instance().counters();
    c.tx_bytes.fetch_add(done, kRelaxed);
    c.tx_calls.fetch_add(1, kRelaxed);
    return static_cast<ssize_t>(done);
}

int Connection::shutdown(int how) {
    if (closed_) {
        errno = EBADF;
        return -1;
    }
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        errno = EINVAL;
        return -1;
    }
    if (!link_ || moved_) return ::shutdown(tcp_.get(), how);
    if ((how == SHUT_RD || how == SHUT_RDWR) && !shut_rd_.exchange(true)) {
        signal(link_->rx_wake.get());  // readable now (EOF): tell our own waiters
    }
    if ((how == SHUT_WR || how == SHUT_RDWR) && !shut_wr_.exchange(true)) {
        // SHUT_RDWR closes the SMC connection as Linux smc_shutdown does; SHUT_WR half-closes.
        const uint32_t unread = cursor_distance(consumed_now(),
                                                CdcWord::unpack(link_->local.prod_slot().load(kAcquire)).cursor,
                                                link_->local.ring_size()).value_or(0);
        uint8_t flag = conn_flag::kPeerDoneWriting;
        if (how == SHUT_RDWR) flag = unread ? conn_flag::kPeerConnAbort : conn_flag::kPeerConnClosed;
        publish_cons_word(std::nullopt, 0, 0, flag);
        signal(link_->peer_rx_wake.get());
        signal(link_->peer_tx_wake.get());
        signal(link_->tx_wake.get());  // writable now (EPIPE): tell our own waiters
    }
    return 0;
}

void Connection::close() {
    if (closed_.exchange(true)) return;
    if (slot_) slot_->closed.store(1, kRelaxed);
    if (detached_) return;  // another process carries on with the connection
    if (link_ && !moved_ && handed_off()) take_over();  // resend what the peer had not read
    // Moved to TCP, the socket is the kernel's alone: it ends when the last descriptor naming
    // it closes (ours with this object), in whichever process that is; a posix_spawn child
    // that we never heard of may hold it still.
    if (moved_) return;
    if (link_) {
        const bool already = sent_conn_flags() & (conn_flag::kPeerConnClosed | conn_flag::kPeerConnAbort);
        if (!already && !peer_died_) {
            const uint32_t unread = cursor_distance(consumed_now(),
                                                    CdcWord::unpack(link_->local.prod_slot().load(kAcquire)).cursor,
                                                    link_->local.ring_size()).value_or(0);
            const uint8_t flag = unread ? conn_flag::kPeerConnAbort : conn_flag::kPeerConnClosed;
            publish_cons_word(std::nullopt, 0, 0, flag);
            signal(link_->peer_rx_wake.get());
            signal(link_->peer_tx_wake.get());
        }
    }
    // The FIN that follows the close flag tells a peer blocked in poll() at once; it also wakes
    // our own threads still waiting on this connection.
    if (tcp_) ::shutdown(tcp_.get(), SHUT_RDWR);
}

Readiness Connection::readiness() const {
    Readiness r;
    if (!link_) return r;
    if (moved_) return tcp_readiness();
    const Dmb& local = link_->local;
    const uint32_t ring = local.ring_size();
    const CdcWord prod = CdcWord::unpack(local.prod_slot().load(kAcquire));
    const CdcWord cons = CdcWord::unpack(local.cons_slot().load(kAcquire));
    const Cursor consumed = consumed_now();
    const auto avail = cursor_distance(consumed, prod.cursor, ring);
    bool aborted = (cons.conn_flags & conn_flag::kPeerConnAbort) || protocol_error_ || !avail;
    bool peer_gone = cons.conn_flags & conn_flag::kPeerConnClosed;
    if (peer_died_) {
        // As peer_end(): a dead peer that had read everything we sent closed; otherwise aborted.
        const Cursor ours = CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor;
        const Cursor read = CdcWord::unpack(link_->peer.meta()->owner_consumed.load(kAcquire)).cursor;
        const auto unread = cursor_distance(read, ours, link_->peer.ring_size());
        (unread && *unread == 0 ? peer_gone : aborted) = true;
    }
    const bool peer_done = peer_gone || (cons.conn_flags & conn_flag::kPeerDoneWriting);
    r.err = aborted;
    r.rdhup = peer_done || r.err;
    r.in = (avail && *avail > 0) || r.rdhup || shut_rd_;
    const auto used = cursor_distance(cons.cursor, CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor,
                                      link_->peer.ring_size());
    const bool space = used && *used < link_->peer.ring_size();
    r.out = space || r.err || peer_gone || shut_wr_;
    r.hup = r.err || (peer_done && shut_wr_);
    return r;
}

Readiness Connection::arm(bool want_in, bool want_out, bool drain_first) {
    if (!link_) return {};
    if (moved_) return tcp_readiness();
    if (want_in) {
        // Publish what we consumed first: a writer may be waiting for it while we sleep.
        if (std::unique_lock lock(rx_mu_, std::try_to_lock); lock.owns_lock()) after_consume(true);
        if (drain_first) drain(link_->rx_wake.get());
        link_->local.meta()->reader_wants_signal.store(1, kSeqCst);
    }
    if (want_out) {
        std::unique_lock lock(tx_mu_, std::try_to_lock);
        if (drain_first) drain(link_->tx_wake.get());
        link_->local.meta()->writer_wants_signal.store(1, kSeqCst);
        if (lock.owns_lock() && !tx_armed_) {
            publish_cons_word(std::nullopt, prod_flag::kWriteBlocked, 0, 0);
            tx_armed_ = true;
        }
    }
    return readiness();
}

void Connection::on_tcp_event() {
    if (link_ && !moved_ && !tcp_eof_) check_tcp();
}

uint64_t Connection::rx_mark() const {
    if (!link_) return 0;
    const CdcWord p = CdcWord::unpack(link_->local.prod_slot().load(kAcquire));
    const CdcWord c = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    return CdcWord{p.cursor, 0, c.conn_flags}.pack() ^ (peer_died_ ? 1ULL << 63 : 0);
}

uint64_t Connection::tx_mark() const {
    if (!link_) return 0;
    return CdcWord::unpack(link_->local.cons_slot().load(kAcquire)).pack();
}

size_t Connection::readable_bytes() const {
    if (!link_) return 0;
    if (moved_) {
        int n = 0;
        return ::ioctl(tcp_.get(), FIONREAD, &n) == 0 ? static_cast<size_t>(n) : 0;
    }
    const Cursor consumed = consumed_now();
    const Cursor prod = CdcWord::unpack(link_->local.prod_slot().load(kAcquire)).cursor;
    return cursor_distance(consumed, prod, link_->local.ring_size()).value_or(0);
}

size_t Connection::unsent_bytes() const {
    if (!link_) return 0;
    if (moved_) {
        int n = 0;
        return ::ioctl(tcp_.get(), SIOCOUTQ, &n) == 0 ? static_cast<size_t>(n) : 0;
    }
    const Cursor cons = CdcWord::unpack(link_->local.cons_slot().load(kAcquire)).cursor;
    const Cursor prod = CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor;
    return cursor_distance(cons, prod, link_->peer.ring_size()).value_or(0);
}

size_t Connection::writable_bytes() const {
    return link_ ? link_->peer.ring_size() - std::min<size_t>(unsent_bytes(), link_->peer.ring_size()) : 0;
}

std::vector<int> Connection::own_fds() const {
    std::vector<int> out;
    if (tcp_) out.push_back(tcp_.get());
    if (link_)
        for (const UniqueFd* fd : {&link_->rx_wake, &link_->tx_wake, &link_->peer_rx_wake, &link_->peer_tx_wake})
            if (*fd) out.push_back(fd->get());
    return out;
}

bool Connection::handed_off() const {
    if (!link_) return false;
    if (moved_) return true;
    const uint8_t theirs = CdcWord::unpack(link_->local.cons_slot().load(kAcquire)).conn_flags;
    const uint8_t ours = CdcWord::unpack(link_->peer.cons_slot().load(kAcquire)).conn_flags;
    return (theirs | ours) & conn_flag::kMovedToTcp;
}

size_t Connection::hand_off() {
    if (!link_ || moved_ || closed_) return 0;
    if (handed_off()) {  // the peer moved first: skip what we read of its resend, resend ours
        take_over();
        return 0;
    }
    // Other threads of this process die with the exec, maybe inside a call: what they
    // completed is in the words read here (owner_consumed, the prod slot we publish), what
    // they had not is resent or never counted.
    std::unique_lock rx(rx_mu_, std::try_to_lock);
    std::unique_lock tx(tx_mu_, std::try_to_lock);
    const Dmb& local = link_->local;
    const Cursor consumed = consumed_now();
    const CdcWord reader = CdcWord::unpack(local.cons_slot().load(kAcquire));
    const Cursor produced = CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor;
    const Cursor peer_produced = CdcWord::unpack(local.prod_slot().load(kAcquire)).cursor;
    const bool peer_alive = !peer_died_ && !protocol_error_ &&
                            !(reader.conn_flags & (conn_flag::kPeerConnClosed | conn_flag::kPeerConnAbort));
    // The peer has read up to the cursor it announced, maybe further: we resend from there and
    // tell it where that is, and it skips what it had already read.
    link_->peer.meta()->resent_from.store(pack_cursor(reader.cursor), kSeqCst);
    publish_cons_word(consumed, 0, prod_flag::kWriteBlocked, conn_flag::kMovedToTcp);
    for (int fd : {link_->peer_rx_wake.get(), link_->peer_tx_wake.get(), link_->rx_wake.get(), link_->tx_wake.get()})
        signal(fd);  // the peer's waiters, and ours in other processes holding this side (fork)
    const uint32_t ours = cursor_distance(reader.cursor, produced, link_->peer.ring_size()).value_or(0);
    if (peer_alive && ours > 0) send_ring(link_->peer, reader.cursor, ours);
    if (shut_wr_) ::shutdown(tcp_.get(), SHUT_WR);
    if (shut_rd_) ::shutdown(tcp_.get(), SHUT_RD);
    mark_moved();
    return peer_alive ? 0 : cursor_distance(consumed, peer_produced, local.ring_size()).value_or(0);
}

size_t Connection::unread_to(int fd) const {
    if (!link_) return 0;
    const Dmb& local = link_->local;
    const uint32_t size = local.ring_size();
    const Cursor consumed = consumed_now();
    const Cursor produced = CdcWord::unpack(local.prod_slot().load(kAcquire)).cursor;
    uint32_t left = cursor_distance(consumed, produced, size).value_or(0);
    uint32_t pos = consumed.count % size;
    size_t done = 0;
    while (left > 0) {
        const ssize_t k = ::send(fd, local.ring() + pos, std::min(left, size - pos), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        done += static_cast<size_t>(k);
        left -= static_cast<uint32_t>(k);
        pos = (pos + static_cast<uint32_t>(k)) % size;
    }
    return done;
}

void Connection::take_over() {
    if (!link_ || moved_) return;
    std::lock_guard rx(rx_mu_);
    std::lock_guard tx(tx_mu_);
    if (moved_) return;
    const CdcWord theirs = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    if (theirs.conn_flags & conn_flag::kMovedToTcp) {
        // The peer resent from `resent_from` what it had written; we read up to consumed_.
        const Cursor from = CdcWord::unpack(link_->local.meta()->resent_from.load(kAcquire)).cursor;
        const auto seen = cursor_distance(from, consumed_, link_->local.ring_size());
        const auto unread = cursor_distance(theirs.cursor, produced_, link_->peer.ring_size());
        if (!seen || !unread) {
            protocol_error_ = true;  // cursors that cannot be: reset, as for any bad cursor
            ::shutdown(tcp_.get(), SHUT_RDWR);
        } else if (skip_tcp(*seen) && *unread > 0) {
            send_ring(link_->peer, theirs.cursor, *unread);
        }
        if (shut_wr_) ::shutdown(tcp_.get(), SHUT_WR);
    }
    // Otherwise another process holding our side moved it and resent what was ours to resend.
    if (shut_rd_) ::shutdown(tcp_.get(), SHUT_RD);
    mark_moved();
}

void Connection::mark_moved() {
    moved_ = true;
    if (!slot_) return;
    slot_->smcd = 0;
    slot_->reason = static_cast<uint32_t>(DeclineCode::HandOff);
}

bool Connection::send_ring(const Dmb& ring, Cursor from, uint32_t n) {
    // Enough send buffer for all of it, so it never waits for the peer to read (a peer that
    // writes to us before it reads would otherwise wait for us in turn).
    int have = 0;
    socklen_t len = sizeof have;
    if (::getsockopt(tcp_.get(), SOL_SOCKET, SO_SNDBUF, &have, &len) == 0 && static_cast<uint32_t>(have) < 2 * n) {
        const int want = static_cast<int>(n + 64 * 1024);
        if (::setsockopt(tcp_.get(), SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
            ::setsockopt(tcp_.get(), SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    }
    const uint32_t size = ring.ring_size();
    uint32_t pos = from.count % size;
    while (n > 0) {
        const uint32_t chunk = std::min(n, size - pos);
        const ssize_t k = ::send(tcp_.get(), ring.ring() + pos, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0) {
            if (!retry_after_error(tcp_.get(), POLLOUT)) return false;
            continue;
        }
        n -= static_cast<uint32_t>(k);
        pos = (pos + static_cast<uint32_t>(k)) % size;
    }
    return true;
}

bool Connection::skip_tcp(size_t n) {
    char buf[16 * 1024];
    while (n > 0) {
        const ssize_t k = ::recv(tcp_.get(), buf, std::min(n, sizeof buf), MSG_DONTWAIT);
        if (k == 0) return false;
        if (k < 0) {
            if (!retry_after_error(tcp_.get(), POLLIN)) return false;
            continue;
        }
        n -= static_cast<size_t>(k);
    }
    return true;
}

Readiness Connection::tcp_readiness() const {
    pollfd p{tcp_.get(), POLLIN | POLLOUT | POLLRDHUP, 0};
    Readiness r;
    if (::poll(&p, 1, 0) <= 0) return r;
    r.in = p.revents & (POLLIN | POLLHUP | POLLERR);
    r.out = p.revents & (POLLOUT | POLLERR);
    r.rdhup = p.revents & POLLRDHUP;
    r.hup = p.revents & POLLHUP;
    r.err = p.revents & POLLERR;
    return r;
}

void Connection::add_holder(pid_t pid) {
    if (!link_) return;
    const int32_t me = pid > 0 ? pid : ::getpid();
    for (auto& p : link_->local.meta()->holder_pids) {
        int32_t expected = 0;
        if (p.load(kRelaxed) == me || p.compare_exchange_strong(expected, me, kSeqCst)) return;
    }
}

void Connection::release() {
    if (link_) {
        // Another live process still holding the connection keeps it open.
        const int32_t me = ::getpid();
        bool others = false;
        for (auto& p : link_->local.meta()->holder_pids) {
            int32_t pid = p.load(kSeqCst);
            if (pid == me) p.compare_exchange_strong(pid, 0, kSeqCst);
            else if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) others = true;
        }
        if (others) detached_ = true;
    }
    close();
}

void Connection::rehome_stats() {
    ConnSlot* old = slot_;  // in the parent's region: the parent releases it
    slot_ = StatsRegion::instance().acquire();
    if (!slot_ || !old) return;
    std::memcpy(slot_->local_addr, old->local_addr, 16);
    std::memcpy(slot_->peer_addr, old->peer_addr, 16);
    slot_->local_port = old->local_port;
    slot_->peer_port = old->peer_port;
    slot_->smcd = old->smcd;
    slot_->server = old->server;
    slot_->reason = old->reason;
    slot_->peer_reason = old->peer_reason;
    slot_->rx_ring = old->rx_ring;
    slot_->tx_ring = old->tx_ring;
    slot_->local_token = old->local_token;
    slot_->peer_token = old->peer_token;
    for (auto [to, from] : {std::pair{&slot_->rx_consumed, &old->rx_consumed},
                            std::pair{&slot_->rx_peer_produced, &old->rx_peer_produced},
                            std::pair{&slot_->tx_produced, &old->tx_produced},
                            std::pair{&slot_->tx_peer_consumed, &old->tx_peer_consumed}})
        to->store(from->load(kRelaxed), kRelaxed);
    for (auto [to, from] : {std::pair{&slot_->sent_flags, &old->sent_flags}, std::pair{&slot_->got_flags, &old->got_flags},
                            std::pair{&slot_->peer_died, &old->peer_died}, std::pair{&slot_->closed, &old->closed}})
        to->store(from->load(kRelaxed), kRelaxed);
    slot_->gen.fetch_add(1, std::memory_order_release);
    slot_->in_use.store(1, std::memory_order_release);
}

uint8_t Connection::sent_conn_flags() const {
    std::lock_guard lock(publish_mu_);
    return cons_word_.conn_flags;
}

SmcState derive_state(bool smcd, bool closed, uint8_t sent, uint8_t got, bool peer_died) {
    using namespace conn_flag;
    if (!smcd) return closed ? SmcState::Closed : SmcState::Active;
    if (got & kPeerConnAbort || peer_died) return closed ? SmcState::Closed : SmcState::ProcessAbort;
    if (sent & kPeerConnAbort) return SmcState::PeerAbortWait;
    const bool sent_closed = sent & kPeerConnClosed, got_closed = got & kPeerConnClosed;
    const bool sent_done = sent & kPeerDoneWriting, got_done = got & kPeerDoneWriting;
    if (sent_closed && got_closed) return SmcState::Closed;
    if (sent_closed) return got_done ? SmcState::PeerFinCloseWait : SmcState::PeerCloseWait2;
    if (got_closed) return SmcState::AppFinCloseWait;
    if (sent_done) return got_done ? SmcState::AppCloseWait2 : SmcState::PeerCloseWait1;
    if (got_done) return SmcState::AppCloseWait1;
    return SmcState::Active;
}

SmcState Connection::state() const {
    const uint8_t got = link_ ? CdcWord::unpack(link_->local.cons_slot().load(kAcquire)).conn_flags : 0;
    return derive_state(link_.has_value(), closed_, link_ ? sent_conn_flags() : 0, got, peer_died_);
}

ConnectionInfo Connection::info() const {
    ConnectionInfo i;
    i.smcd = link_.has_value();
    i.server = server_;
    i.fallback_reason = reason_;
    i.peer_reason = peer_reason_;
    i.state = state();
    if (link_) {
        i.rx_ring = link_->local.ring_size();
        i.tx_ring = link_->peer.ring_size();
        i.rx_consumed = consumed_now();
        const CdcWord rx = CdcWord::unpack(link_->local.prod_slot().load(kRelaxed));
        const CdcWord rx_cons = CdcWord::unpack(link_->local.cons_slot().load(kRelaxed));
        i.rx_peer_produced = rx.cursor;
        i.tx_peer_consumed = rx_cons.cursor;
        i.rx_conn_flags = rx_cons.conn_flags;
        i.tx_produced = CdcWord::unpack(link_->peer.prod_slot().load(kRelaxed)).cursor;
        i.tx_conn_flags = sent_conn_flags();
    }
    return i;
}

}  // namespace shunt::lo
