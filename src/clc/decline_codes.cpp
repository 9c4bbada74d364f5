// The one table of SMC Decline codes (docs/wire-format.md).
#include "shunt/decline.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace shunt {
namespace {

using C = DeclineCode;
constexpr std::array kTable{
    DeclineInfo{C::Mem, "MEM", "insufficient memory"},
    DeclineInfo{C::TimeoutCl, "TIMEOUT_CL", "timeout waiting for confirm link"},
    DeclineInfo{C::TimeoutAl, "TIMEOUT_AL", "timeout waiting for add link"},
    DeclineInfo{C::CnfErr, "CNFERR", "configuration error"},
    DeclineInfo{C::PeerNoSmc, "PEERNOSMC", "peer is not a shunt/SMC endpoint"},
    DeclineInfo{C::IpSec, "IPSEC", "IPsec in use"},
    DeclineInfo{C::NoSmcDev, "NOSMCDEV", "no SMC device"},
    DeclineInfo{C::NoSmcdDev, "NOSMCDDEV", "no SMC-D device"},
    DeclineInfo{C::NoSmcrDev, "NOSMCRDEV", "no SMC-R device"},
    DeclineInfo{C::NoIsm2Supp, "NOISM2SUPP", "no ISMv2 support"},
    DeclineInfo{C::NoV2Ext, "NOV2EXT", "peer sent no v2 extension"},
    DeclineInfo{C::NoV2DExt, "NOV2DEXT", "peer sent no SMC-Dv2 extension"},
    DeclineInfo{C::NoSeid, "NOSEID", "peer sent no SEID"},
    DeclineInfo{C::NoSmcd2Dev, "NOSMCD2DEV", "no matching SMC-Dv2 device (GID/CHID mismatch)"},
    DeclineInfo{C::NoUeid, "NOUEID", "peer sent no UEID"},
    DeclineInfo{C::ReleaseErr, "RELEASEERR", "release negotiation failed"},
    DeclineInfo{C::MaxConnErr, "MAXCONNERR", "max conns negotiation failed"},
    DeclineInfo{C::MaxLinkErr, "MAXLINKERR", "max links negotiation failed"},
    DeclineInfo{C::ModeUnsupp, "MODEUNSUPP", "SMC modes do not match"},
    DeclineInfo{C::RmbeEc, "RMBE_EC", "peer has eyecatcher in RMBE"},
    DeclineInfo{C::OptUnsupp, "OPTUNSUPP", "socket option not supported"},
    DeclineInfo{C::DiffPrefix, "DIFFPREFIX", "IP prefix/subnet mismatch"},
    DeclineInfo{C::GetVlanErr, "GETVLANERR", "cannot get VLAN id"},
    DeclineInfo{C::IsmVlanErr, "ISMVLANERR", "cannot register VLAN on ISM"},
    DeclineInfo{C::NoActLink, "NOACTLINK", "no active SMC-R link"},
    DeclineInfo{C::NoSrvLink, "NOSRVLINK", "SMC-R link from server not found"},
    DeclineInfo{C::VersMismat, "VERSMISMAT", "SMC version mismatch"},
    DeclineInfo{C::MaxDmb, "MAX_DMB", "DMB limit exceeded"},
    DeclineInfo{C::NoRoute, "NOROUTE", "SMC-Rv2: no route to peer"},
    DeclineInfo{C::NoIndirect, "NOINDIRECT", "SMC-Rv2: direct/indirect mismatch"},
    DeclineInfo{C::SyncErr, "SYNCERR", "synchronization error"},
    DeclineInfo{C::PeerDecl, "PEERDECL", "peer declined"},
    DeclineInfo{C::IntErr, "INTERR", "internal error"},
    DeclineInfo{C::ErrRtok, "ERR_RTOK", "rtoken handling failed"},
    DeclineInfo{C::ErrRdyLnk, "ERR_RDYLNK", "ib ready link failed"},
    DeclineInfo{C::ErrRegBuf, "ERR_REGBUF", "reg rdma bufs failed"},
    DeclineInfo{C::HandOff, "HANDOFF", "moved to TCP mid-life: an exec with the connection open, or urgent data"},
    DeclineInfo{C::SameProcess, "SAMEPROC", "the listener is in the connecting process, which may accept only later"},
};

static_assert(std::is_sorted(kTable.begin(), kTable.end(),
                             [](const DeclineInfo& a, const DeclineInfo& b) { return a.code < b.code; }));

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

}  // namespace

std::span<const DeclineInfo> decline_codes() { return kTable; }

const DeclineInfo* find_decline(uint32_t code) {
    auto it = std::lower_bound(kTable.begin(), kTable.end(), code,
                               [](const DeclineInfo& d, uint32_t c) { return uint32_t(d.code) < c; });
    return it != kTable.end() && uint32_t(it->code) == code ? &*it : nullptr;
}

std::string decline_name(uint32_t code) {
    if (const DeclineInfo* d = find_decline(code)) return std::string(d->name);
    return fmt::format("0x{:08x}", code);
}

std::optional<uint32_t> parse_decline(std::string_view text) {
    for (const DeclineInfo& d : kTable)
        if (iequals(d.name, text)) return uint32_t(d.code);
    if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
    uint32_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

}  // namespace shunt
