// CLC byte layouts (docs/wire-format.md header/trailer, §4 Proposal, §5 Accept/Confirm, §6 Decline).
#include "clc/codec.hpp"

#include <stdexcept>

#include "core/bytes.hpp"

namespace shunt::clc {
namespace {

constexpr size_t kProposalBaseLen = 40;
constexpr size_t kSmcdAreaLen = 40;
constexpr size_t kPrefixHeaderLen = 8;
constexpr size_t kIpv6PrefixLen = 17;
constexpr size_t kV2ExtLen = 40;
constexpr size_t kSmcdV2ExtLen = 48;
constexpr size_t kGidEntryLen = 10;
// v2_ext_offset counts from the end of its own field (byte 52) to the v2 extension.
constexpr size_t kV2ExtOffsetBase = kProposalBaseLen + 12;
constexpr size_t kV2ExtOffsetMin = kSmcdAreaLen - 12;
// smcd_v2_ext_offset counts from byte 8 of the v2 extension.
constexpr size_t kSmcdV2ExtOffsetMin = kV2ExtLen - 8;
constexpr uint8_t kFirstContactBit = 0x08;  // also "out of sync" in a Decline

Unexpected<Error> fail(ErrorKind kind, const char* field) { return Unexpected{Error{kind, field}}; }

bool is_eyecatcher(const Eyecatcher& e) { return e == kEyecatcherR || e == kEyecatcherD; }

uint8_t byte7(uint8_t version, uint8_t low_nibble) {
    return static_cast<uint8_t>(version << 4 | (low_nibble & 0x0F));
}

// Writes the header with a zero length; finish() patches it and appends the trailer.
void begin(ByteWriter& w, const Eyecatcher& eye, MsgType type, uint8_t b7) {
    w.bytes(eye);
    w.u8(static_cast<uint8_t>(type));
    w.be16(0);
    w.u8(b7);
}
std::vector<uint8_t> finish(std::vector<uint8_t> out, const Eyecatcher& eye) {
    ByteWriter w(out);
    w.bytes(eye);
    w.patch_be16(5, static_cast<uint16_t>(out.size()));
    return out;
}

size_t prefix_area_len(const IpPrefixArea& a) {
    return kPrefixHeaderLen + kIpv6PrefixLen * a.ipv6.size();
}

void write_prefix_area(ByteWriter& w, const IpPrefixArea& a) {
    w.bytes(a.ipv4_subnet);
    w.u8(a.ipv4_prefix_len);
    w.zeros(2);
    w.u8(static_cast<uint8_t>(a.ipv6.size()));
    for (const Ipv6Prefix& p : a.ipv6) {
        w.bytes(p.prefix);
        w.u8(p.prefix_len);
    }
}

Result<IpPrefixArea> read_prefix_area(ByteReader& r, size_t end) {
    IpPrefixArea a;
    if (r.pos() + kPrefixHeaderLen > end) return fail(ErrorKind::Length, "header.length");
    a.ipv4_subnet = r.array<uint8_t, 4>();
    a.ipv4_prefix_len = r.u8();
    r.skip(2);
    const uint8_t count = r.u8();
    if (count > kMaxIpv6Prefixes) return fail(ErrorKind::Count, "proposal.ipv6_prefix_cnt");
    if (r.pos() + kIpv6PrefixLen * count > end) return fail(ErrorKind::Length, "header.length");
    a.ipv6.resize(count);
    for (Ipv6Prefix& p : a.ipv6) {
        p.prefix = r.array<uint8_t, 16>();
        p.prefix_len = r.u8();
    }
    return a;
}

void check_counts(const Proposal& m) {
    if (m.ip_prefix.ipv6.size() > kMaxIpv6Prefixes || m.v2.ueids.size() > kMaxEids ||
        m.v2.gids.size() > kMaxGidEntries)
        throw std::length_error("CLC proposal: more than 8 prefixes, UEIDs or GID entries");
}

Result<Message> decode_proposal(const Header& h, std::span<const uint8_t> bytes) {
    const size_t end = bytes.size() - kTrailerLen;  // where the trailer starts
    ByteReader r(bytes, kHeaderLen);
    Proposal m;
    m.version = h.version;
    m.typev1 = static_cast<SmcType>(h.type_bits & 0x3);
    m.typev2 = h.version >= 2 ? static_cast<SmcType>(h.type_bits >> 2 & 0x3) : SmcType::None;
    if (end < kProposalBaseLen) return fail(ErrorKind::Length, "header.length");
    m.peer_id = r.array<uint8_t, 8>();
    m.roce_gid = r.array<uint8_t, 16>();
    m.roce_mac = r.array<uint8_t, 6>();
    const uint16_t iparea_offset = r.be16();

    auto read_smcd_area = [&](size_t at) -> uint16_t {
        r.seek(at);
        m.ism_gid = r.be64();
        m.ism_chid = r.be16();
        const uint16_t v2_ext_offset = r.be16();
        r.skip(28);  // vendor OUI, vendor options, reserved
        return v2_ext_offset;
    };

    if (h.version == 1) {
        // v1: the prefix area follows the optional SMC-D area; Linux finds the SMC-D area only
        // when iparea_offset equals its size.
        if (m.typev1 == SmcType::None) return fail(ErrorKind::Value, "header.typev1");
        if (indicates_d(m.typev1) && iparea_offset != kSmcdAreaLen)
            return fail(ErrorKind::Offset, "proposal.iparea_offset");
        if (kProposalBaseLen + size_t{iparea_offset} > end)
            return fail(ErrorKind::Offset, "proposal.iparea_offset");
        if (indicates_d(m.typev1)) read_smcd_area(kProposalBaseLen);
        r.seek(kProposalBaseLen + iparea_offset);
        auto prefix = read_prefix_area(r, end);
        if (!prefix) return Unexpected{prefix.error()};
        m.ip_prefix = std::move(*prefix);
        if (r.pos() != end) return fail(ErrorKind::Length, "header.length");
        return Message{std::move(m)};
    }

    // v2: base, SMC-D area, [prefix area], [v2 extension, [SMC-Dv2 extension]], trailer,
    // each part right after the previous one.
    if (end < kProposalBaseLen + kSmcdAreaLen) return fail(ErrorKind::Length, "header.length");
    if (iparea_offset != (m.typev1 != SmcType::None ? kSmcdAreaLen : 0))
        return fail(ErrorKind::Offset, "proposal.iparea_offset");
    const uint16_t v2_ext_offset = read_smcd_area(kProposalBaseLen);
    if (m.typev1 != SmcType::None) {
        auto prefix = read_prefix_area(r, end);
        if (!prefix) return Unexpected{prefix.error()};
        m.ip_prefix = std::move(*prefix);
    }
    if (m.typev2 == SmcType::None) {
        if (v2_ext_offset != 0) return fail(ErrorKind::Offset, "proposal.v2_ext_offset");
    } else {
        if (v2_ext_offset != r.pos() - kV2ExtOffsetBase)
            return fail(ErrorKind::Offset, "proposal.v2_ext_offset");
        const size_t ext_start = r.pos();
        if (ext_start + kV2ExtLen > end) return fail(ErrorKind::Length, "header.length");
        const uint8_t eid_cnt = r.u8();
        const uint8_t gid_cnt = r.u8();
        r.skip(1);
        const uint8_t flag = r.u8();
        r.skip(2);
        const uint16_t smcd_v2_ext_offset = r.be16();
        if (eid_cnt > kMaxEids) return fail(ErrorKind::Count, "proposal.eid_cnt");
        if (indicates_d(m.typev2) && gid_cnt > kMaxGidEntries)
            return fail(ErrorKind::Count, "proposal.ism_gid_cnt");
        m.v2.release = flag >> 4;
        m.v2.seid_enabled = flag & 0x01;
        m.v2.roce_v2_gid = r.array<uint8_t, 16>();
        m.v2.max_conns = r.u8();
        m.v2.max_links = r.u8();
        m.v2.feature_mask = r.be16();
        r.skip(12);
        if (r.pos() + kEidLen * eid_cnt > end) return fail(ErrorKind::Length, "header.length");
        m.v2.ueids.resize(eid_cnt);
        for (Eid& e : m.v2.ueids) e = r.array<char, kEidLen>();
        if (indicates_d(m.typev2)) {
            if (smcd_v2_ext_offset != kSmcdV2ExtOffsetMin + kEidLen * eid_cnt)
                return fail(ErrorKind::Offset, "proposal.smcd_v2_ext_offset");
            if (r.pos() + kSmcdV2ExtLen + kGidEntryLen * gid_cnt > end)
                return fail(ErrorKind::Length, "header.length");
            m.v2.seid = r.array<char, kEidLen>();
            r.skip(16);
            m.v2.gids.resize(gid_cnt);
            for (GidChid& g : m.v2.gids) {
                g.gid = r.be64();
                g.chid = r.be16();
            }
        } else if (smcd_v2_ext_offset != 0) {
            return fail(ErrorKind::Offset, "proposal.smcd_v2_ext_offset");
        }
    }
    if (r.overrun()) return fail(ErrorKind::Truncated, "proposal");
    if (r.pos() != end) return fail(ErrorKind::Length, "header.length");
    return Message{std::move(m)};
}

Result<Message> decode_accept_confirm(const Header& h, std::span<const uint8_t> bytes) {
    const auto typev1 = static_cast<SmcType>(h.type_bits & 0x3);
    if (typev1 != SmcType::R && typev1 != SmcType::D) return fail(ErrorKind::Value, "header.typev1");
    if (typev1 == SmcType::R) return fail(ErrorKind::Unsupported, "header.typev1");
    AcceptConfirm m;
    m.type = h.type;
    m.version = h.version;
    m.first_contact = h.type_bits & kFirstContactBit;
    const size_t len = bytes.size();
    size_t fce_len = 0;
    if (h.version == 1) {
        if (len != kSmcdAcceptConfirmLenV1) return fail(ErrorKind::Length, "header.length");
    } else if (!m.first_contact) {
        if (len != kSmcdAcceptConfirmLenV2) return fail(ErrorKind::Length, "header.length");
    } else {
        fce_len = len - kSmcdAcceptConfirmLenV2;
        if (len < kSmcdAcceptConfirmLenV2 || (fce_len != kFceLenV20 && fce_len != kFceLenV21))
            return fail(ErrorKind::Length, "header.length");
    }
    ByteReader r(bytes, kHeaderLen);
    m.gid = r.be64();
    m.dmb_token = r.be64();
    m.dmbe_idx = r.u8();
    m.dmbe_size = r.u8() >> 4;
    r.skip(2);
    m.link_id = r.be32();
    if (m.dmbe_size > kMaxDmbeSize) return fail(ErrorKind::Value, "accept_confirm.dmbe_size");
    if (h.version >= 2) {
        m.chid = r.be16();
        m.eid = r.array<char, kEidLen>();
        m.gid_ext = r.be64();
        if (fce_len) {
            r.skip(1);
            const uint8_t os_release = r.u8();
            m.fce.os_type = os_release >> 4;
            m.fce.release = os_release & 0x0F;
            r.skip(2);
            m.fce.hostname = r.array<char, kEidLen>();
            // The 36-byte form is release 0's; release >= 1 always has the 52-byte tail.
            if ((m.fce.release == 0) != (fce_len == kFceLenV20))
                return fail(ErrorKind::Length, "accept_confirm.fce");
            if (fce_len == kFceLenV21) {
                r.skip(2);  // max_conns, max_links (SMC-R only)
                m.fce.feature_mask = r.be16();
                r.skip(12);  // vendor options, reserved
            }
        }
    }
    if (r.overrun()) return fail(ErrorKind::Truncated, "accept_confirm");
    return Message{std::move(m)};
}

Result<Message> decode_decline(const Header& h, std::span<const uint8_t> bytes) {
    const size_t want = h.version == 1 ? kDeclineLenV1 : kDeclineLenV2;
    if (bytes.size() != want) return fail(ErrorKind::Length, "header.length");
    ByteReader r(bytes, kHeaderLen);
    Decline m;
    m.version = h.version;
    m.out_of_sync = h.type_bits & kFirstContactBit;
    m.peer_id = r.array<uint8_t, 8>();
    m.diagnosis = r.be32();
    m.os_type = r.u8() >> 4;
    r.skip(3);
    if (h.version >= 2)
        for (uint32_t& d : m.more_diagnosis) d = r.be32();
    if (r.overrun()) return fail(ErrorKind::Truncated, "decline");
    return Message{std::move(m)};
}

}  // namespace

Result<Header> decode_header(std::span<const uint8_t> bytes) {
    if (bytes.size() < kHeaderLen) return fail(ErrorKind::Truncated, "header");
    ByteReader r(bytes);
    Header h;
    h.eyecatcher = r.array<uint8_t, 4>();
    const uint8_t type = r.u8();
    h.length = r.be16();
    const uint8_t b7 = r.u8();
    h.version = b7 >> 4;
    h.type_bits = b7 & 0x0F;
    if (!is_eyecatcher(h.eyecatcher)) return fail(ErrorKind::BadEyecatcher, "header.eyecatcher");
    if (type < 1 || type > 4) return fail(ErrorKind::Type, "header.type");
    h.type = static_cast<MsgType>(type);
    if (h.version < 1) return fail(ErrorKind::Version, "header.version");
    if (h.length < kHeaderLen + kTrailerLen || h.length > kMaxMessageLen)
        return fail(ErrorKind::Length, "header.length");
    return h;
}

Result<Message> decode(std::span<const uint8_t> bytes) {
    auto h = decode_header(bytes);
    if (!h) return Unexpected{h.error()};
    if (bytes.size() < h->length) return fail(ErrorKind::Truncated, "header.length");
    if (bytes.size() > h->length) return fail(ErrorKind::Length, "header.length");
    if (h->type != MsgType::Decline) {
        Eyecatcher trailer;
        std::copy(bytes.end() - kTrailerLen, bytes.end(), trailer.begin());
        if (!is_eyecatcher(trailer)) return fail(ErrorKind::BadTrailer, "trailer.eyecatcher");
    }
    switch (h->type) {
        case MsgType::Proposal: return decode_proposal(*h, bytes);
        case MsgType::Accept:
        case MsgType::Confirm: return decode_accept_confirm(*h, bytes);
        case MsgType::Decline: return decode_decline(*h, bytes);
    }
    return fail(ErrorKind::Type, "header.type");
}

std::vector<uint8_t> encode(const Proposal& m) {
    check_counts(m);
    const bool v2 = m.version >= 2;
    const SmcType typev2 = v2 ? m.typev2 : SmcType::None;
    const bool has_prefix = m.typev1 != SmcType::None;
    // v2 always carries the SMC-D area; v1 only when it offers SMC-D.
    const bool has_smcd_area = v2 || indicates_d(m.typev1);
    std::vector<uint8_t> out;
    out.reserve(kMaxMessageLen);
    ByteWriter w(out);
    // v1 has no typev2: its bits 3-2 are the (zero) flag and reserved bits.
    const uint8_t typev2_bits = v2 ? static_cast<uint8_t>(uint8_t(typev2) << 2) : 0;
    begin(w, kEyecatcherR, MsgType::Proposal,
          byte7(m.version, static_cast<uint8_t>(typev2_bits | uint8_t(m.typev1))));
    w.bytes(m.peer_id);
    w.bytes(m.roce_gid);
    w.bytes(m.roce_mac);
    w.be16(has_smcd_area && has_prefix ? kSmcdAreaLen : 0);
    if (has_smcd_area) {
        w.be64(m.ism_gid);
        w.be16(m.ism_chid);
        const size_t v2_ext_offset =
            typev2 == SmcType::None
                ? 0
                : kV2ExtOffsetMin + (has_prefix ? prefix_area_len(m.ip_prefix) : 0);
        w.be16(static_cast<uint16_t>(v2_ext_offset));
        w.zeros(28);
    }
    if (has_prefix) write_prefix_area(w, m.ip_prefix);
    if (typev2 != SmcType::None) {
        const bool d = indicates_d(typev2);
        w.u8(static_cast<uint8_t>(m.v2.ueids.size()));
        w.u8(static_cast<uint8_t>(d ? m.v2.gids.size() : 0));
        w.u8(0);
        w.u8(static_cast<uint8_t>((m.v2.release & 0x0F) << 4 | (m.v2.seid_enabled ? 1 : 0)));
        w.zeros(2);
        w.be16(static_cast<uint16_t>(d ? kSmcdV2ExtOffsetMin + kEidLen * m.v2.ueids.size() : 0));
        w.bytes(m.v2.roce_v2_gid);
        w.u8(m.v2.max_conns);
        w.u8(m.v2.max_links);
        w.be16(m.v2.feature_mask);
        w.zeros(12);
        for (const Eid& e : m.v2.ueids) w.bytes(e);
        if (d) {
            w.bytes(m.v2.seid);
            w.zeros(16);
            for (const GidChid& g : m.v2.gids) {
                w.be64(g.gid);
                w.be16(g.chid);
            }
        }
    }
    return finish(std::move(out), kEyecatcherR);
}

std::vector<uint8_t> encode(const AcceptConfirm& m) {
    if (m.dmbe_size > kMaxDmbeSize) throw std::invalid_argument("CLC accept/confirm: DMBE size > 6");
    std::vector<uint8_t> out;
    out.reserve(kSmcdAcceptConfirmLenV2 + kFceLenV21);
    ByteWriter w(out);
    begin(w, kEyecatcherD, m.type,
          byte7(m.version, (m.first_contact ? kFirstContactBit : 0) | uint8_t(SmcType::D)));
    w.be64(m.gid);
    w.be64(m.dmb_token);
    w.u8(m.dmbe_idx);
    w.u8(static_cast<uint8_t>(m.dmbe_size << 4));
    w.zeros(2);
    w.be32(m.link_id);
    if (m.version == 1) {
        w.zeros(12);
    } else {
        w.be16(m.chid);
        w.bytes(m.eid);
        w.be64(m.gid_ext);
        if (m.first_contact) {
            w.u8(0);
            w.u8(static_cast<uint8_t>((m.fce.os_type & 0x0F) << 4 | (m.fce.release & 0x0F)));
            w.zeros(2);
            w.bytes(m.fce.hostname);
            if (m.fce.release >= 1) {
                w.zeros(2);
                w.be16(m.fce.feature_mask);
                w.zeros(12);
            }
        }
    }
    return finish(std::move(out), kEyecatcherD);
}

std::vector<uint8_t> encode(const Decline& m) {
    std::vector<uint8_t> out;
    out.reserve(kDeclineLenV2);
    ByteWriter w(out);
    begin(w, kEyecatcherR, MsgType::Decline,
          byte7(m.version, m.out_of_sync ? kFirstContactBit : 0));
    w.bytes(m.peer_id);
    w.be32(m.diagnosis);
    w.u8(static_cast<uint8_t>(m.os_type << 4));
    w.zeros(3);
    if (m.version >= 2)
        for (uint32_t d : m.more_diagnosis) w.be32(d);
    return finish(std::move(out), kEyecatcherR);
}

std::vector<uint8_t> encode(const Message& m) {
    return std::visit([](const auto& msg) { return encode(msg); }, m);
}

}  // namespace shunt::clc
