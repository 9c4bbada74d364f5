#include "clc/builders.hpp"

#include <algorithm>
#include <bit>

namespace shunt::clc {

Proposal loopback_proposal(const Gid128& gid, std::span<const Eid> ueids) {
    Proposal p;
    p.version = 2;
    p.typev1 = SmcType::None;
    p.typev2 = SmcType::D;
    p.v2.release = kRelease;
    p.v2.feature_mask = kFeatureEmulatedIsm;
    p.v2.ueids.assign(ueids.begin(), ueids.end());
    p.v2.gids = {{gid.hi, kLoopbackChid}, {gid.lo, kLoopbackChid}};
    return p;
}

namespace {
AcceptConfirm loopback_ac(MsgType type, const Gid128& gid, const Eid& eid, const BufferOffer& dmb,
                          bool first_contact, const Eid& hostname) {
    AcceptConfirm m;
    m.type = type;
    m.version = 2;
    m.first_contact = first_contact;
    m.gid = gid.hi;
    m.gid_ext = gid.lo;
    m.dmb_token = dmb.dmb_token;
    m.dmbe_size = dmb.dmbe_size;
    m.chid = kLoopbackChid;
    m.eid = eid;
    if (first_contact) {
        m.fce.os_type = kOsLinux;
        m.fce.release = kRelease;
        m.fce.hostname = hostname;
        m.fce.feature_mask = kFeatureEmulatedIsm;
    }
    return m;
}
}  // namespace

AcceptConfirm loopback_accept(const Gid128& gid, const Eid& eid, const BufferOffer& dmb,
                              bool first_contact, const Eid& hostname) {
    return loopback_ac(MsgType::Accept, gid, eid, dmb, first_contact, hostname);
}

AcceptConfirm loopback_confirm(const Gid128& gid, const Eid& eid, const BufferOffer& dmb,
                               bool first_contact, const Eid& hostname) {
    return loopback_ac(MsgType::Confirm, gid, eid, dmb, first_contact, hostname);
}

Decline decline(uint32_t diagnosis) {
    Decline d;
    d.version = 2;
    d.diagnosis = diagnosis;
    d.os_type = kOsLinux;
    return d;
}

const Eid* match_ueid(std::span<const Eid> proposed, std::span<const Eid> local) {
    for (const Eid& p : proposed)
        if (std::find(local.begin(), local.end(), p) != local.end()) return &p;
    return nullptr;
}

uint8_t compress_dmbe_size(size_t bytes) {
    constexpr size_t kMin = size_t{1} << 14;
    if (bytes <= kMin) return 0;
    const size_t c = std::bit_width(bytes - 1) - 14;  // log2 of the next power of two, minus 14
    return static_cast<uint8_t>(std::min<size_t>(c, kMaxDmbeSize));
}

size_t dmbe_bytes(uint8_t compressed) { return size_t{1} << (compressed + 14); }

}  // namespace shunt::clc
