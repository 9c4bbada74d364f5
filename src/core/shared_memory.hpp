#pragma once
// Shared memory that belongs to exactly the processes holding its file descriptor: a memfd
// (no name in any filesystem, nothing in /dev/shm, freed when the last holder exits, even by
// SIGKILL), sealed against resizing so a peer can never make our mapping fault.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace shunt {

class SharedMemory {
public:
    SharedMemory() = default;
    SharedMemory(SharedMemory&& o) noexcept;
    SharedMemory& operator=(SharedMemory&& o) noexcept;
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;
    ~SharedMemory();

    // A new zeroed, sealed region of `size` bytes. Error: errno.
    static Result<SharedMemory, int> create(size_t size, const char* name);
    // Maps a region received from a peer after checking it is a sealed memfd of exactly
    // `size` bytes. Takes ownership of fd. Error: errno (EBADF/EINVAL for a wrong buffer).
    static Result<SharedMemory, int> attach(UniqueFd fd, size_t size);

    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    int fd() const { return fd_.get(); }
    // The mapping stays valid after the descriptor is closed.
    void close_fd() { fd_.reset(); }

private:
    SharedMemory(UniqueFd fd, uint8_t* data, size_t size) : fd_(std::move(fd)), data_(data), size_(size) {}
    void unmap();

    UniqueFd fd_;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace shunt
