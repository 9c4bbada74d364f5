#include "core/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace shunt {
namespace {
constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

Result<uint8_t*, int> map(int fd, size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Unexpected{errno};
    return static_cast<uint8_t*>(p);
}
}  // namespace

SharedMemory::SharedMemory(SharedMemory&& o) noexcept
    : fd_(std::move(o.fd_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& o) noexcept {
    if (this != &o) {
        unmap();
        fd_ = std::move(o.fd_);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

SharedMemory::~SharedMemory() { unmap(); }

void SharedMemory::unmap() {
    if (data_) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
}

Result<SharedMemory, int> SharedMemory::create(size_t size, const char* name) {
    UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return Unexpected{errno};
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) return Unexpected{errno};
    if (::fcntl(fd.get(), F_ADD_SEALS, kSeals) < 0) return Unexpected{errno};
    auto p = map(fd.get(), size);
    if (!p) return Unexpected{p.error()};
    return SharedMemory(std::move(fd), *p, size);
}

Result<SharedMemory, int> SharedMemory::attach(UniqueFd fd, size_t size) {
    // Only a sealed memfd of the agreed size: anything else (a file, a pipe, a region the peer
    // could shrink under us) is the wrong buffer.
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals < 0) return Unexpected{errno == EINVAL ? EBADF : errno};
    if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) return Unexpected{EINVAL};
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return Unexpected{errno};
    if (!S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) != size) return Unexpected{EINVAL};
    auto p = map(fd.get(), size);
    if (!p) return Unexpected{p.error()};
    return SharedMemory(std::move(fd), *p, size);
}

}  // namespace shunt
