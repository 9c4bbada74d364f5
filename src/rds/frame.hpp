#pragma once
// The shunt rds wire format: every frame on a lane is a 48-byte header in the layout of Linux
// `struct rds_header` followed by h_len payload bytes. The
// fields keep their RDS meaning where RDS has one, and carry what the kernel lacks (docs/rds-protocol.md):
//
//   h_sequence  per (sender socket, receiver socket) message sequence, from 1: duplicates are
//               dropped, a gap is an error, and order can be checked across lanes
//   h_ack       ACK frames: highest sequence of that socket pair queued to the receiving socket
//               (an application-level ack; the sender frees messages only on it)
//   h_len       payload bytes in this frame (a fragment of at most kMaxFragment bytes)
//   h_sport/h_dport  RDS ports of the sender and receiver socket
//   h_flags     RDS flags (0x04 RETRANSMITTED is kept)
//   h_exthdr    RDS extension headers (type byte, fixed-size body, 0 ends the list), with
//               shunt's own types: KIND (what the frame is), FRAGMENT (offset and total length
//               of the message), HELLO (lane index, lane count, 64-bit incarnation), CREDIT
//               (on ACK frames: bytes the receiving socket can still take, the per-destination
//               flow-control window that replaces the kernel's congestion bitmap, and the
//               window's ordering number: windows travel on several lanes and may arrive out of
//               order, so only a higher number than the last one applied counts)
//
// h_ack is 0, h_credit, h_padding and h_csum are 0 on send and ignored on receive, as RDS/TCP does.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace shunt::rds {

inline constexpr size_t kHeaderLen = 48;
inline constexpr size_t kExtSpace = 16;
inline constexpr uint32_t kMaxMessage = 1 << 20;   // 1 MiB
inline constexpr uint32_t kMaxFragment = 64 << 10;  // a small message never waits behind more
inline constexpr uint16_t kMaxLanes = 255;

namespace flag {
inline constexpr uint8_t kRetransmitted = 0x04;
}

enum class Kind : uint8_t {
    Data = 1,         // a fragment of a message
    Ack = 2,          // h_ack for the pair (h_dport's socket sent what h_sport's socket acks)
    Hello = 3,        // first frame on every lane connection, both directions
    Unreachable = 4,  // the message h_sequence to h_sport was not delivered: no socket bound
    Ping = 5,         // rds-ping: answered with Pong
    Pong = 6,
};

struct Hello {
    uint16_t lane = 0;
    uint16_t lanes = 0;
    uint64_t incarnation = 0;
    bool operator==(const Hello&) const = default;
};

struct Frame {
    Kind kind = Kind::Data;
    uint64_t sequence = 0;
    uint64_t ack = 0;
    uint32_t len = 0;
    uint16_t sport = 0, dport = 0;
    uint8_t flags = 0;
    uint32_t frag_offset = 0;  // Data: where this fragment starts in the message
    uint32_t msg_len = 0;      // Data: length of the whole message
    Hello hello;               // Hello only
    uint32_t window = 0;       // Ack only: credit, in bytes, of the socket h_sport names
    uint64_t window_seq = 0;   // Ack only: ordering number of `window` (from 1, per socket
                               // and peer; a window is applied only if newer than the last)
    bool operator==(const Frame&) const = default;

    bool last_fragment() const { return frag_offset + len == msg_len; }
};

enum class FrameError {
    UnknownExtension,  // an extension type we cannot size
    NoKind,            // no KIND extension
    BadKind,
    MissingFragment,   // Data without FRAGMENT
    FragmentTooLarge,  // h_len above kMaxFragment
    MessageTooLarge,   // FRAGMENT total above kMaxMessage
    FragmentOutside,   // offset + h_len beyond the message
    UnexpectedPayload, // payload on a frame kind that has none
    BadSequence,       // sequence 0 where one is required
    BadHello,          // lane >= lanes, lanes 0 or above kMaxLanes, incarnation 0
    MissingHello,
    MissingCredit,     // Ack without CREDIT
    BadWindowSequence, // CREDIT with ordering number 0
};
const char* to_string(FrameError e);

template <class T>
using FrameResult = shunt::Result<T, FrameError>;

// Exactly kHeaderLen bytes. Validates everything the header alone can tell.
FrameResult<Frame> decode_header(std::span<const uint8_t, kHeaderLen> bytes);
// The header of `f` (its payload, f.len bytes, follows on the wire).
std::array<uint8_t, kHeaderLen> encode_header(const Frame& f);

}  // namespace shunt::rds
