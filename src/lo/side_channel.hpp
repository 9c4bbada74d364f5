#pragma once
// Messages on the UNIX socket that runs beside the TCP connection during the handshake. The
// CLC messages themselves travel in band on TCP; this channel carries only what TCP cannot:
// proof that the other end is the process holding this very connection, and the buffers.
//
//   server -> client  Hello   {magic, the 4-tuple as the server sees it}
//   server -> client  Buffers {magic, DMB token, DMB size} + fds [memfd, rx eventfd, tx eventfd]
//   client -> server  Buffers (same)
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lo/rundir.hpp"

namespace shunt::lo {

struct Hello {
    FourTuple tuple;
    bool operator==(const Hello&) const = default;
};

struct Buffers {
    uint64_t token = 0;
    uint32_t dmb_size = 0;
    bool operator==(const Buffers&) const = default;
};
inline constexpr size_t kBufferFds = 3;  // memfd, the owner's rx eventfd, the owner's tx eventfd

std::vector<uint8_t> encode(const Hello& m);
std::vector<uint8_t> encode(const Buffers& m);
std::optional<Hello> decode_hello(std::span<const uint8_t> bytes);
std::optional<Buffers> decode_buffers(std::span<const uint8_t> bytes);
inline constexpr size_t kMaxSideMessage = 64;

}  // namespace shunt::lo
