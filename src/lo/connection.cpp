// A connection's life as a whole (the SMC core): construction from a handshake or a fallback,
// its line in `shunt stat`, the plain-TCP data path, and the state smcss shows. The protocol
// layers live beside it, one per file, as in Linux net/smc: cdc.cpp (cursors, close flags,
// wake-ups), rx.cpp, tx.cpp, close.cpp, hand_off.cpp (moving to TCP), readiness.cpp.
#include "lo/connection.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/inet.hpp"
#include "lo/connection_internal.hpp"
#include "lo/engine.hpp"

namespace shunt::lo {

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
    : tcp_(std::move(tcp)), server_(server), link_(std::move(link)), rx_spin_(spin), tx_spin_(spin) {
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

std::vector<int> Connection::own_fds() const {
    std::vector<int> out;
    if (tcp_) out.push_back(tcp_.get());
    if (link_)
        for (const UniqueFd* fd : {&link_->rx_wake, &link_->tx_wake, &link_->peer_rx_wake, &link_->peer_tx_wake})
            if (*fd) out.push_back(fd->get());
    return out;
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
