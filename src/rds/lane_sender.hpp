#pragma once
// What one lane sends, and what it must keep until the peer acks it (see docs/rds-protocol.md):
//
// * messages of one socket pair leave in order (a FIFO per pair);
// * pairs take turns one fragment (<= 64 KiB) at a time, so a small message never waits behind
//   more than one fragment of a large one on the same lane (the kernel sends whole messages);
// * a message is kept until an application-level ack for its pair covers it, never freed on a
//   TCP-level signal (the source of the kernel's loss bugs);
// * when the lane's TCP connection fails, every unacked message is sent again, in order, from
//   its first byte, marked RETRANSMITTED; the receiver drops what it already has.
//
// Pure bookkeeping, no I/O: the lane's event loop asks next_frame() for bytes to write.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "rds/frame.hpp"
#include "rds/message.hpp"

namespace shunt::rds {

struct OutFrame {
    Frame header;
    std::span<const uint8_t> payload;               // valid while `keep` lives
    std::shared_ptr<const std::vector<uint8_t>> keep;
};

class LaneSender {
public:
    void enqueue(Message m);
    // The next frame to write, or nothing when every queued byte is out.
    std::optional<OutFrame> next_frame();
    // The peer queued every message of `pair` up to `seq`: they are freed wherever they are
    // (written, or waiting to be written again after a reset). Repeated acks are harmless.
    // False if it acks a sequence never queued (a protocol error: close the lane).
    // `freed`, if given, receives how many messages and payload bytes the ack released.
    struct Freed {
        size_t messages = 0;
        size_t bytes = 0;
    };
    // `buffers`, if given, receives the payloads of the freed messages (for reuse).
    bool on_ack(PairKey pair, uint64_t seq, Freed* freed = nullptr,
                std::vector<std::shared_ptr<const std::vector<uint8_t>>>* buffers = nullptr);
    // The unacked message `seq` of `pair`, if this lane holds it (for reports naming its id).
    const Message* find(PairKey pair, uint64_t seq) const;
    // Messages of `pair` not acked yet (queued or written).
    size_t unacked(PairKey pair) const;
    // The connection under the lane failed: all unacked messages go out again, in order.
    void reset_for_retransmit();
    // The peer restarted (new incarnation): nothing it had will be delivered. Returns every
    // message not acked, in order per pair, and forgets them.
    std::vector<Message> fail_all();

    size_t unacked_messages() const;
    size_t queued_bytes() const { return queued_bytes_; }
    bool idle() const { return rotation_.empty(); }

private:
    struct Flow {
        std::deque<Message> pending;    // not fully written yet; front may be partly written
        uint32_t front_offset = 0;      // bytes of pending.front() already written
        std::deque<Message> in_flight;  // written, not acked
        uint64_t last_seq = 0;          // highest sequence ever queued for the pair
    };
    void drop_from_rotation(PairKey key);
    std::map<PairKey, Flow> flows_;
    std::deque<PairKey> rotation_;  // pairs with pending bytes, in turn order
    size_t queued_bytes_ = 0;       // payload bytes held (pending + in flight)
};

}  // namespace shunt::rds
