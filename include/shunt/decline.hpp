#pragma once
// SMC CLC Decline diagnosis codes (Linux SMC_CLC_DECL_*). The same numbers name every fallback
// reason in shunt: on the wire in a Decline, in `shunt stat`, in `shunt stats`, in logs.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace shunt {

enum class DeclineCode : uint32_t {
    Mem = 0x01010000,
    TimeoutCl = 0x02010000,
    TimeoutAl = 0x02020000,
    CnfErr = 0x03000000,
    PeerNoSmc = 0x03010000,
    IpSec = 0x03020000,
    NoSmcDev = 0x03030000,
    NoSmcdDev = 0x03030001,
    NoSmcrDev = 0x03030002,
    NoIsm2Supp = 0x03030003,
    NoV2Ext = 0x03030004,
    NoV2DExt = 0x03030005,
    NoSeid = 0x03030006,
    NoSmcd2Dev = 0x03030007,
    NoUeid = 0x03030008,
    ReleaseErr = 0x03030009,
    MaxConnErr = 0x0303000a,
    MaxLinkErr = 0x0303000b,
    ModeUnsupp = 0x03040000,
    RmbeEc = 0x03050000,
    OptUnsupp = 0x03060000,
    DiffPrefix = 0x03070000,
    GetVlanErr = 0x03080000,
    IsmVlanErr = 0x03090000,
    NoActLink = 0x030a0000,
    NoSrvLink = 0x030b0000,
    VersMismat = 0x030c0000,
    MaxDmb = 0x030d0000,
    NoRoute = 0x030e0000,
    NoIndirect = 0x030f0000,
    SyncErr = 0x04000000,
    PeerDecl = 0x05000000,
    IntErr = 0x09990000,
    ErrRtok = 0x09990001,
    ErrRdyLnk = 0x09990002,
    ErrRegBuf = 0x09990003,
    // shunt's own, never on the wire: an SMC-D connection that moved to TCP mid-life (an exec
    // with the connection open, urgent data), and a connection to a listener of the same
    // process (whose accept() may run only after connect() returns).
    HandOff = 0x0a000001,
    SameProcess = 0x0a000002,
};

struct DeclineInfo {
    DeclineCode code;
    std::string_view name;     // as smcss / smcd stats print it, e.g. "NOSMCD2DEV"
    std::string_view meaning;  // one line for people
};

// Every known code, in numeric order.
std::span<const DeclineInfo> decline_codes();
// nullptr for a code not in the table (a newer peer may send one).
const DeclineInfo* find_decline(uint32_t code);
// "NOSMCD2DEV", or "0x0303abcd" for an unknown code.
std::string decline_name(uint32_t code);
// Accepts a name ("NOSMCD2DEV", case-insensitive) or a number ("0x03030007").
std::optional<uint32_t> parse_decline(std::string_view text);

}  // namespace shunt
