// Sending (Linux smc_tx), with no copy of our own: the application's bytes go straight into the
// peer's DMB ring, then the producer cursor moves; a full ring sets write_blocked and waits.
#include "lo/connection.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/spin.hpp"
#include "lo/connection_internal.hpp"
#include "lo/engine.hpp"

namespace shunt::lo {

ssize_t Connection::smcd_write(const iovec* iov, int iovcnt, IoMode mode) {
    std::unique_lock lock(tx_mu_);
    if (moved_) {  // take_over() ran while we waited for the lock
        lock.unlock();
        return writev(iov, iovcnt, mode);
    }
    const size_t total = iov_total(iov, iovcnt);
    if (total == 0) return 0;
    resync_tx();
    Dmb& peer = link_->peer;
    const Dmb& local = link_->local;
    const uint32_t ring = peer.ring_size();
    IovPos at;
    size_t done = 0;
    bool spun = false, waited = false;
    Waiting wait;
    auto fail = [&](int err) -> ssize_t {
        if (done > 0) return static_cast<ssize_t>(done);
        errno = err;
        return -1;
    };
    while (done < total) {
        if (shut_wr_ || closed_) return fail(closed_ ? EBADF : EPIPE);
        const CdcWord reader = CdcWord::unpack(local.cons_slot().load(kAcquire));
        if ((reader.conn_flags & conn_flag::kMovedToTcp) || ((waited || (done == 0 && !spun)) && handed_off())) {
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
            wait.done(tx_spin_);
            spun = false;
            continue;
        }
        Engine::instance().counters().tx_buffer_full.fetch_add(1, kRelaxed);
        if (mode.nonblock && done > 0) break;
        if (!mode.nonblock && !spun) {
            spun = true;
            const uint64_t c0 = local.cons_slot().load(kRelaxed);
            if ((waited = wait.spin(tx_spin_, [&] { return local.cons_slot().load(kRelaxed) != c0; }))) continue;
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
        if (const int err = wait.sleep(*this, link_->tx_wake.get(), SO_SNDTIMEO)) return fail(err);
        waited = true;
    }
    auto& c = Engine::instance().counters();
    c.tx_bytes.fetch_add(done, kRelaxed);
    c.tx_calls.fetch_add(1, kRelaxed);
    return static_cast<ssize_t>(done);
}

uint64_t Connection::tx_mark() const {
    if (!link_) return 0;
    return CdcWord::unpack(link_->local.cons_slot().load(kAcquire)).pack();
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

}  // namespace shunt::lo
