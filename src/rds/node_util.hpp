#pragma once
// Small helpers the node's files share.
#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "rds/frame.hpp"
#include "shunt/rds.hpp"

namespace shunt::rds {

// epoll tags of the node's own descriptors (connections are tagged with their Conn*).
inline constexpr uint64_t kTagListen = 1, kTagWake = 2, kTagInfo = 3;

[[noreturn]] inline void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

inline std::string ip_str(uint32_t ip) { return Endpoint{ip, 0}.ip_string(); }

// Appends a frame's encoding to `out` (for the few bytes written outside the batches: HELLO).
inline void append_frame(std::vector<uint8_t>& out, const Frame& f) {
    const auto h = encode_header(f);
    out.insert(out.end(), h.begin(), h.end());
}

}  // namespace shunt::rds
