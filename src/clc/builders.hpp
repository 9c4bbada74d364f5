#pragma once
// The message shapes Linux loopback-ism sends (docs/wire-format.md): v2 Proposal with typev1 None,
// the host GID as an Emulated-ISM pair with CHID 0xFFFF, release 1; SMC-Dv2 Accept/Confirm with a
// 52-byte first-contact extension; v2 Decline.
#include <cstdint>
#include <span>

#include "clc/messages.hpp"

namespace shunt::clc {

struct Gid128 {
    uint64_t hi = 0;
    uint64_t lo = 0;
    bool operator==(const Gid128&) const = default;
};

Proposal loopback_proposal(const Gid128& gid, std::span<const Eid> ueids);

struct BufferOffer {
    uint64_t dmb_token = 0;
    uint8_t dmbe_size = 0;  // compressed
};
AcceptConfirm loopback_accept(const Gid128& gid, const Eid& eid, const BufferOffer& dmb,
                              bool first_contact, const Eid& hostname);
AcceptConfirm loopback_confirm(const Gid128& gid, const Eid& eid, const BufferOffer& dmb,
                               bool first_contact, const Eid& hostname);
Decline decline(uint32_t diagnosis);

// The first UEID in `proposed` that is also in `local`, as Linux smc_clc_match_eid picks it.
const Eid* match_ueid(std::span<const Eid> proposed, std::span<const Eid> local);

// Compressed DMBE size for a wanted buffer size (rounds up to a power of two, min 16 KiB,
// at most kMaxDmbeSize) and back.
uint8_t compress_dmbe_size(size_t bytes);
size_t dmbe_bytes(uint8_t compressed);

}  // namespace shunt::clc
