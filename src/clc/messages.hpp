#pragma once
// CLC handshake messages of SMC-D v1/v2 in decoded form, as Linux net/smc/smc_clc.h sends them
// (docs/wire-format.md). Only codec.cpp knows byte offsets; everything else in
// shunt speaks these structs. Parts of a message that the header says are absent are written
// as zero here and not at all on the wire, so a struct never carries derivable state.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace shunt::clc {

enum class MsgType : uint8_t { Proposal = 1, Accept = 2, Confirm = 3, Decline = 4 };
// typev1 / typev2 in header byte 7.
enum class SmcType : uint8_t { R = 0, D = 1, None = 2, Both = 3 };
constexpr bool indicates_d(SmcType t) { return t == SmcType::D || t == SmcType::Both; }

using Eyecatcher = std::array<uint8_t, 4>;
inline constexpr Eyecatcher kEyecatcherR{0xE2, 0xD4, 0xC3, 0xD9};  // "SMCR" in EBCDIC
inline constexpr Eyecatcher kEyecatcherD{0xE2, 0xD4, 0xC3, 0xC4};  // "SMCD" in EBCDIC

// Emulated-ISM devices (loopback, virtio-ism) use CHIDs 0xFF00..0xFFFF; loopback is 0xFFFF.
inline constexpr uint16_t kLoopbackChid = 0xFFFF;
constexpr bool is_emulated_chid(uint16_t chid) { return (chid & 0xFF00) == 0xFF00; }

inline constexpr size_t kEidLen = 32;
using Eid = std::array<char, kEidLen>;  // ASCII, blank padded
inline constexpr size_t kMaxEids = 8;
inline constexpr size_t kMaxGidEntries = 8;
inline constexpr size_t kMaxIpv6Prefixes = 8;
inline constexpr uint8_t kMaxDmbeSize = 6;  // 2^(6+14) = 1 MiB
inline constexpr uint8_t kRelease = 1;      // SMC v2.1
inline constexpr uint16_t kFeatureEmulatedIsm = 0x0001;
inline constexpr uint8_t kOsLinux = 2;

// Fixed sizes (docs/wire-format.md).
inline constexpr size_t kHeaderLen = 8;
inline constexpr size_t kTrailerLen = 4;
inline constexpr size_t kSmcdAcceptConfirmLenV1 = 48;
inline constexpr size_t kSmcdAcceptConfirmLenV2 = 78;
inline constexpr size_t kFceLenV20 = 36;
inline constexpr size_t kFceLenV21 = 52;
inline constexpr size_t kDeclineLenV1 = 28;
inline constexpr size_t kDeclineLenV2 = 44;
// Largest Proposal: base, SMC-D area, 8 IPv6 prefixes, 8 UEIDs, 8 GID entries, trailer.
inline constexpr size_t kMaxMessageLen = 40 + 40 + (8 + 17 * 8) + (40 + 32 * 8) + (48 + 10 * 8) + 4;

struct Header {
    Eyecatcher eyecatcher{};
    MsgType type{};
    uint16_t length = 0;
    uint8_t version = 0;
    uint8_t type_bits = 0;  // low nibble of byte 7: typev2 << 2 | typev1, or flag | typev1
};

struct GidChid {
    uint64_t gid = 0;
    uint16_t chid = 0;
    bool operator==(const GidChid&) const = default;
};

struct Ipv6Prefix {
    std::array<uint8_t, 16> prefix{};
    uint8_t prefix_len = 0;
    bool operator==(const Ipv6Prefix&) const = default;
};

// Written iff typev1 != None.
struct IpPrefixArea {
    std::array<uint8_t, 4> ipv4_subnet{};  // network order
    uint8_t ipv4_prefix_len = 0;
    std::vector<Ipv6Prefix> ipv6;  // at most kMaxIpv6Prefixes
    bool operator==(const IpPrefixArea&) const = default;
};

// Written iff version >= 2 and typev2 != None. The SMC-Dv2 part (seid, gids) iff typev2 has D.
struct V2Extension {
    uint8_t release = kRelease;
    bool seid_enabled = false;
    std::array<uint8_t, 16> roce_v2_gid{};
    uint8_t max_conns = 0;
    uint8_t max_links = 0;
    uint16_t feature_mask = kFeatureEmulatedIsm;
    std::vector<Eid> ueids;  // at most kMaxEids
    Eid seid{};
    std::vector<GidChid> gids;  // at most kMaxGidEntries; an emulated device takes two
    bool operator==(const V2Extension&) const = default;
};

struct Proposal {
    uint8_t version = 2;
    SmcType typev1 = SmcType::None;
    SmcType typev2 = SmcType::D;  // ignored when version == 1
    std::array<uint8_t, 8> peer_id{};  // SMC-R system id
    std::array<uint8_t, 16> roce_gid{};
    std::array<uint8_t, 6> roce_mac{};
    uint64_t ism_gid = 0;  // native (SMC-Dv1) ISM slot
    uint16_t ism_chid = 0;
    IpPrefixArea ip_prefix;
    V2Extension v2;
    bool operator==(const Proposal&) const = default;
};

// Written iff first_contact and version >= 2. Release 0 has the 36-byte form, release >= 1 52.
struct FirstContactExt {
    uint8_t os_type = kOsLinux;
    uint8_t release = kRelease;
    Eid hostname{};  // blank padded
    uint16_t feature_mask = 0;  // release >= 1 only
    bool operator==(const FirstContactExt&) const = default;
};

// SMC-D Accept (server -> client) and Confirm (client -> server); same layout.
struct AcceptConfirm {
    MsgType type = MsgType::Accept;
    uint8_t version = 2;
    bool first_contact = false;
    uint64_t gid = 0;        // sender's GID (Emulated-ISM: high 64 bits)
    uint64_t dmb_token = 0;  // names the sender's receive buffer
    uint8_t dmbe_idx = 0;
    uint8_t dmbe_size = 0;  // compressed: 2^(n+14) bytes, n <= kMaxDmbeSize
    uint32_t link_id = 0;
    // version >= 2:
    uint16_t chid = 0;
    Eid eid{};
    uint64_t gid_ext = 0;  // Emulated-ISM: low 64 bits of the sender's GID
    FirstContactExt fce;
    bool operator==(const AcceptConfirm&) const = default;
};

struct Decline {
    uint8_t version = 2;
    bool out_of_sync = false;
    std::array<uint8_t, 8> peer_id{};
    uint32_t diagnosis = 0;  // a shunt::DeclineCode
    uint8_t os_type = kOsLinux;
    std::array<uint32_t, 4> more_diagnosis{};  // version >= 2
    bool operator==(const Decline&) const = default;
};

using Message = std::variant<Proposal, AcceptConfirm, Decline>;

MsgType type_of(const Message& m);
std::string_view to_string(MsgType t);

// Blank-padded EID from text. UEID rules (docs/wire-format.md): 1-32 chars of A-Z 0-9 '.' '-',
// first alphanumeric. Returns false (and leaves out untouched) if the text breaks them.
bool make_ueid(std::string_view text, Eid& out);
// Any text blank padded or cut to 32 bytes (for hostnames).
Eid pad_blank(std::string_view text);
std::string trim_blank(const Eid& eid);

// SMC-Dv2 devices named by a proposal's GID list. An emulated CHID takes two consecutive entries
// (high and low 64 bits of a 128-bit GID); an emulated entry without its pair is skipped, as Linux does.
struct SmcdDevice {
    uint16_t chid = 0;
    uint64_t gid = 0;
    uint64_t gid_ext = 0;
    bool operator==(const SmcdDevice&) const = default;
};
std::vector<SmcdDevice> smcd_devices(const V2Extension& v2);

}  // namespace shunt::clc
