#pragma once
// What arrives from one peer host, across all its lanes: fragments reassembled into messages,
// checked against the per-pair sequence (docs/rds-protocol.md), and the acks owed in return.
//
// * a sequence below the next expected one is a duplicate (a retransmission of what was
//   delivered): dropped, and acked again in case the first ack was lost;
// * a sequence above it is a gap: a message was lost, which reliable delivery forbids, so it is
//   an error, never silently accepted (the kernel accepts gaps);
// * a retransmitted message restarts at offset 0 and replaces a partial one of the same sequence;
// * partial messages are bounded in total (kMaxReassembly) so a peer cannot exhaust memory.
// The caller queues each delivered message to its socket and only then acks it (ack_for), or
// reports it unreachable when no socket is bound to the port.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "rds/frame.hpp"
#include "rds/message.hpp"

namespace shunt::rds {

inline constexpr size_t kMaxReassembly = 64 << 20;

enum class ReceiveError {
    Gap,              // a sequence beyond the next expected one
    BadFragment,      // offset or length does not continue the message being reassembled
    TooMuchPartial,   // partial messages above kMaxReassembly
};
const char* to_string(ReceiveError e);

struct Delivered {
    Message message;
};
struct Duplicate {
    PairKey pair;
    uint64_t seq;
};
struct Partial {};  // a fragment was taken; the message is not complete yet
using ReceiveResult = std::variant<Delivered, Duplicate, Partial, ReceiveError>;

class Receiver {
public:
    // A Data frame (validated by decode_header) with its payload.
    ReceiveResult on_data(const Frame& f, std::span<const uint8_t> payload);
    // The cumulative ack to send for `pair`: every sequence up to it was delivered.
    uint64_t ack_for(PairKey pair) const;
    // The peer restarted: every pair starts again at sequence 1.
    void reset();
    size_t partial_bytes() const { return partial_bytes_; }

private:
    struct PairState {
        uint64_t next_seq = 1;
        std::optional<uint64_t> partial_seq;
        uint32_t partial_len = 0;  // total length of the message being reassembled
        std::vector<uint8_t> partial;
    };
    void drop_partial(PairState& s);
    std::map<PairKey, PairState> pairs_;
    size_t partial_bytes_ = 0;
};

}  // namespace shunt::rds
