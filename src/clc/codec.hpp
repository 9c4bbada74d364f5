#pragma once
// Encoding and decoding of CLC messages. Decoding validates the way Linux smc_clc.c does
// (eyecatchers, exact lengths, counts <= 8, offsets where the layout puts them, DMBE size
// <= 6) and never reads outside the span it is given.
#include <cstdint>
#include <span>
#include <vector>

#include "clc/error.hpp"
#include "clc/messages.hpp"

namespace shunt::clc {

// The 8-byte header alone: enough for a stream reader to know how many bytes to take.
// Checks eyecatcher, type, version and that length is within [12, kMaxMessageLen].
Result<Header> decode_header(std::span<const uint8_t> bytes);

// Exactly one whole message: bytes.size() must equal the header's length.
Result<Message> decode(std::span<const uint8_t> bytes);

std::vector<uint8_t> encode(const Proposal& m);
std::vector<uint8_t> encode(const AcceptConfirm& m);
std::vector<uint8_t> encode(const Decline& m);
std::vector<uint8_t> encode(const Message& m);

}  // namespace shunt::clc
