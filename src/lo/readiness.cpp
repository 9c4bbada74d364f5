// What poll/select/epoll would say of the connection, and asking the peer for a wake-up before
// sleeping on it (arm): the preload's readiness emulation and the C/C++ API's poll_fd.
#include "lo/connection.hpp"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include "lo/connection_internal.hpp"

namespace shunt::lo {

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
    // Writable as TCP says it (sk_stream_is_writeable): free space at least half of what is
    // queued, so a program that writes a large block after poll() said writable rarely blocks.
    // With any free byte counting, two programs that each write blocks larger than the space
    // left and only then read (socat) could both block in write() with full rings.
    const bool space = used && 2 * (uint64_t{link_->peer.ring_size()} - *used) >= *used;
    r.out = space || r.err || peer_gone || shut_wr_;
    r.hup = r.err || (peer_done && shut_wr_);
    return r;
}

Readiness Connection::arm(bool want_in, bool want_out, bool drain_first) {
    if (!link_) return {};
    if (moved_) return tcp_readiness();
    if (want_in) {
        // Publish what we consumed first: a writer may be waiting for it while we sleep.
        if (std::unique_lock lock(rx_mu_, std::try_to_lock); lock.owns_lock()) {
            resync_rx();
            after_consume(true);
        }
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

}  // namespace shunt::lo
