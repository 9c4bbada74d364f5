// Closing (Linux smc_close): shutdown and close as RFC 7609 flags (peer_done_writing,
// peer_conn_closed, peer_conn_abort), and the holders that keep a connection open across fork.
#include "lo/connection.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "lo/connection_internal.hpp"

namespace shunt::lo {

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

}  // namespace shunt::lo
