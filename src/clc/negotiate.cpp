#include "clc/negotiate.hpp"

#include <algorithm>

#include "shunt/decline.hpp"

namespace shunt::clc {
namespace {
constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }

bool is_our_device(uint16_t chid, uint64_t gid, uint64_t gid_ext, const LocalIdentity& me) {
    return chid == kLoopbackChid && gid == me.gid.hi && gid_ext == me.gid.lo;
}
}  // namespace

std::variant<ServerChoice, uint32_t> choose_on_proposal(const Proposal& p, const LocalIdentity& me) {
    // Loopback exists only as an SMC-Dv2 device; a v1-only peer cannot use it.
    if (p.version < 2) return code(DeclineCode::VersMismat);
    if (p.typev2 == SmcType::None) return code(DeclineCode::NoV2Ext);
    if (!indicates_d(p.typev2)) return code(DeclineCode::NoV2DExt);
    if (p.v2.ueids.empty() && !p.v2.seid_enabled) return code(DeclineCode::NoUeid);
    const Eid* eid = match_ueid(p.v2.ueids, me.ueids);
    if (!eid) return code(DeclineCode::NoSmcd2Dev);
    const auto devices = smcd_devices(p.v2);
    const bool same_host = std::any_of(devices.begin(), devices.end(), [&](const SmcdDevice& d) {
        return is_our_device(d.chid, d.gid, d.gid_ext, me);
    });
    if (!same_host) return code(DeclineCode::NoSmcd2Dev);
    if (p.v2.release == 0 && !(p.v2.feature_mask & kFeatureEmulatedIsm))
        return code(DeclineCode::NoSmcd2Dev);  // a v2.0 peer cannot know 128-bit GIDs
    return ServerChoice{*eid, std::min(p.v2.release, kRelease)};
}

uint32_t check_accept(const AcceptConfirm& a, const LocalIdentity& me) {
    if (a.type != MsgType::Accept || a.version < 2) return code(DeclineCode::VersMismat);
    if (!is_our_device(a.chid, a.gid, a.gid_ext, me)) return code(DeclineCode::NoSmcd2Dev);
    if (std::find(me.ueids.begin(), me.ueids.end(), a.eid) == me.ueids.end())
        return code(DeclineCode::NoSmcd2Dev);
    if (a.first_contact && a.fce.release > kRelease) return code(DeclineCode::ReleaseErr);
    return 0;
}

uint32_t check_confirm(const AcceptConfirm& c, const AcceptConfirm& sent_accept, const LocalIdentity& me) {
    if (c.type != MsgType::Confirm || c.version < 2) return code(DeclineCode::VersMismat);
    if (!is_our_device(c.chid, c.gid, c.gid_ext, me)) return code(DeclineCode::NoSmcd2Dev);
    if (c.eid != sent_accept.eid) return code(DeclineCode::NoSmcd2Dev);
    if (c.first_contact != sent_accept.first_contact) return code(DeclineCode::SyncErr);
    if (c.first_contact && c.fce.release != sent_accept.fce.release) return code(DeclineCode::ReleaseErr);
    return 0;
}

}  // namespace shunt::clc
