// Receiving (Linux smc_rx): copy out of our own DMB ring up to the peer's producer cursor, then
// publish the consumer cursor under the 10%-of-ring rule; wait (spin as the policy allows, then
// sleep) when the ring is empty.
#include "lo/connection.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/spin.hpp"
#include "lo/connection_internal.hpp"
#include "lo/engine.hpp"

namespace shunt::lo {

ssize_t Connection::smcd_read(const iovec* iov, int iovcnt, IoMode mode) {
    std::unique_lock lock(rx_mu_);
    if (moved_) {  // take_over() ran while we waited for the lock
        lock.unlock();
        return readv(iov, iovcnt, mode);
    }
    if (iov_total(iov, iovcnt) == 0) return 0;
    resync_rx();
    Dmb& local = link_->local;
    const uint32_t ring = local.ring_size();
    bool spun = false, waited = false;
    Waiting wait;
    for (;;) {
        // Another thread may have moved the connection to TCP while we waited (hand_off).
        if (waited && handed_off()) {
            lock.unlock();
            take_over();
            return readv(iov, iovcnt, mode);
        }
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
            wait.done(rx_spin_);
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
        if (!mode.nonblock && !spun) {
            spun = true;
            const uint64_t p0 = local.prod_slot().load(kRelaxed), c0 = local.cons_slot().load(kRelaxed);
            if ((waited = wait.spin(rx_spin_, [&] {
                     return local.prod_slot().load(kRelaxed) != p0 || local.cons_slot().load(kRelaxed) != c0;
                 })))
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
        if (const int err = wait.sleep(*this, link_->rx_wake.get(), SO_RCVTIMEO)) {
            errno = err;
            return -1;
        }
        waited = true;
    }
}

uint64_t Connection::rx_mark() const {
    if (!link_) return 0;
    const CdcWord p = CdcWord::unpack(link_->local.prod_slot().load(kAcquire));
    const CdcWord c = CdcWord::unpack(link_->local.cons_slot().load(kAcquire));
    return CdcWord{p.cursor, 0, c.conn_flags}.pack() ^ (peer_died_ ? 1ULL << 63 : 0);
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

}  // namespace shunt::lo
