#pragma once
// Turns the bytes of one lane's TCP stream into frames, parsing headers in place. Feed it
// whatever recv() returned; it calls back once per complete frame with the payload. Memory is
// bounded: a partial frame (at most a header and one 64 KiB fragment) is all it keeps. A
// malformed header stops the reader for good: the lane must be closed, its error logged.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "rds/frame.hpp"

namespace shunt::rds {

class FrameReader {
public:
    using OnFrame = std::function<void(const Frame&, std::span<const uint8_t> payload)>;

    // Parses `bytes`; returns the error that stopped the reader, if any (also for later calls).
    std::optional<FrameError> feed(std::span<const uint8_t> bytes, const OnFrame& on_frame);
    std::optional<FrameError> error() const { return error_; }
    // Bytes of a frame started but not complete.
    size_t pending() const { return pending_.size(); }

private:
    // Parses one frame at the front of `data` if it is complete: returns bytes used, 0 if it
    // needs more, or sets error_.
    size_t parse_one(std::span<const uint8_t> data, const OnFrame& on_frame);

    std::vector<uint8_t> pending_;
    std::optional<FrameError> error_;
};

}  // namespace shunt::rds
