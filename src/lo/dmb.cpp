#include "lo/dmb.hpp"

#include <cerrno>
#include <new>

namespace shunt::lo {

Dmb::Dmb(SharedMemory mem) : mem_(std::move(mem)) {
    ring_size_ = static_cast<uint32_t>(mem_.size() - kMetaLen - kCdcHeaderLen);
}

Result<Dmb, int> Dmb::create(size_t dmb_size, uint64_t token) {
    auto mem = SharedMemory::create(kMetaLen + dmb_size, "shunt-dmb");
    if (!mem) return Unexpected{mem.error()};
    auto* meta = new (mem->data()) DmbMeta{kDmbMagic, kDmbVersion, static_cast<uint32_t>(dmb_size), token, {0}, {0}, {}, {0}, {0}};
    (void)meta;
    mem->data()[kMetaLen] = kCdcType;
    return Dmb(std::move(*mem));
}

Result<Dmb, int> Dmb::attach(UniqueFd fd, size_t dmb_size, uint64_t token) {
    auto mem = SharedMemory::attach(std::move(fd), kMetaLen + dmb_size);
    if (!mem) return Unexpected{mem.error()};
    Dmb dmb(std::move(*mem));
    const DmbMeta* m = dmb.meta();
    if (m->magic != kDmbMagic || m->version != kDmbVersion || m->dmb_size != dmb_size || m->token != token)
        return Unexpected{EINVAL};
    return dmb;
}

}  // namespace shunt::lo
