#pragma once
// One lane's next write: frames gathered as an iovec list for a single sendmsg(), so the bytes
// go from where they already are (a message's buffer, a control frame's payload) straight into
// the kernel: one system call for many frames and no copy in between. Headers are encoded into
// slots the batch owns (a fixed array, so the iovecs pointing at them never move); message
// payloads are kept alive by a reference, control payloads are moved in.
//
// The caller (the node's I/O thread) fills it under the node lock, writes it without the lock,
// and marks what the kernel took with consumed(); a partly written batch waits for EPOLLOUT and
// nothing new joins it, so a frame queued later waits behind at most this batch (about
// kWriteBatch bytes) plus what TCP_NOTSENT_LOWAT lets the kernel hold.
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "rds/frame.hpp"

namespace shunt::rds {

class OutBatch {
public:
    static constexpr size_t kMaxFrames = 256;

    OutBatch();
    bool empty() const { return at_ == iov_.size(); }
    size_t frames() const { return frames_; }
    size_t bytes() const { return bytes_; }
    // No more frames should join: the frame slots are used up or `max_bytes` is reached.
    bool full(size_t max_bytes) const { return frames_ >= kMaxFrames || bytes_ >= max_bytes; }

    // Bytes the caller keeps alive and unchanged until the batch is cleared.
    void add_borrowed(std::span<const uint8_t> bytes);
    // Raw bytes the batch owns (an injected test frame).
    void add_owned(std::vector<uint8_t> bytes);
    // A frame whose payload lives in `keep` (a message buffer shared with the lane's sender).
    void add_frame(const Frame& header, std::span<const uint8_t> payload, std::shared_ptr<const std::vector<uint8_t>> keep);
    // A frame whose payload the batch owns (a ping or pong).
    void add_frame(const Frame& header, std::vector<uint8_t> payload);

    // One sendmsg() of what is left (MSG_NOSIGNAL | MSG_DONTWAIT | extra_flags); returns its result.
    ssize_t send(int fd, int extra_flags) const;
    // The kernel took `n` more bytes.
    void consumed(size_t n);
    // Forgets everything (releases the payload references); capacity is kept for the next batch.
    void clear();

private:
    std::vector<std::array<uint8_t, kHeaderLen>> headers_;  // kMaxFrames slots, never resized
    std::vector<iovec> iov_;
    size_t at_ = 0;  // first iovec not fully written
    size_t frames_ = 0, bytes_ = 0;
    std::vector<std::shared_ptr<const std::vector<uint8_t>>> keep_;
    std::vector<std::vector<uint8_t>> owned_;  // moving a vector keeps its buffer where it is
};

}  // namespace shunt::rds
