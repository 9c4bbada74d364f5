// Moving a live connection to TCP (an exec with it open, urgent data): each side resends over
// the TCP socket what the other had not read, exact cursors saying what that is, and from then
// on the kernel carries the connection.
#include "lo/connection.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/spin.hpp"
#include "lo/connection_internal.hpp"
#include "shunt/decline.hpp"

namespace shunt::lo {

namespace {

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

bool Connection::handed_off() const {
    if (!link_) return false;
    if (moved_) return true;
    const uint8_t theirs = CdcWord::unpack(link_->local.cons_slot().load(kAcquire)).conn_flags;
    const uint8_t ours = CdcWord::unpack(link_->peer.cons_slot().load(kAcquire)).conn_flags;
    return (theirs | ours) & conn_flag::kMovedToTcp;
}

size_t Connection::hand_off(std::chrono::microseconds lock_wait) {
    if (!link_ || moved_ || closed_) return 0;
    if (handed_off()) {  // the peer moved first: skip what we read of its resend, resend ours
        take_over();
        return 0;
    }
    // Other threads of this process die with the exec, maybe inside a call: what they
    // completed is in the words read here (owner_consumed, the prod slot we publish), what
    // they had not is resent or never counted.
    std::unique_lock rx(rx_mu_, std::defer_lock);
    std::unique_lock tx(tx_mu_, std::defer_lock);
    auto take_locks = [&] {
        if (!rx.owns_lock()) (void)rx.try_lock();
        if (!tx.owns_lock()) (void)tx.try_lock();
        return rx.owns_lock() && tx.owns_lock();
    };
    if (!take_locks()) spin_until(lock_wait, take_locks);
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
    resync_rx();
    resync_tx();
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

}  // namespace shunt::lo
