// rds frame headers: Linux's struct rds_header layout, RDS extension encoding (docs/rds-protocol.md).
#include "rds/frame.hpp"

#include <algorithm>
#include <array>

#include "core/bytes.hpp"

namespace shunt::rds {
namespace {

// shunt's extension types, above the range Linux and UEK use (0..8).
enum ExtType : uint8_t { kExtNone = 0, kExtKind = 0x81, kExtFragment = 0x82, kExtHello = 0x83, kExtCredit = 0x84 };

// Body sizes (no length byte on the wire: the type implies it).
constexpr size_t ext_size(uint8_t type) {
    switch (type) {
        case kExtKind: return 1;
        case kExtFragment: return 8;
        case kExtHello: return 12;
        case kExtCredit: return 12;
        default: return SIZE_MAX;
    }
}

Unexpected<FrameError> fail(FrameError e) { return Unexpected{e}; }

bool has_payload(Kind k) { return k == Kind::Data || k == Kind::Ping || k == Kind::Pong; }

}  // namespace

const char* to_string(FrameError e) {
    switch (e) {
        case FrameError::UnknownExtension: return "unknown extension header";
        case FrameError::NoKind: return "no frame kind";
        case FrameError::BadKind: return "bad frame kind";
        case FrameError::MissingFragment: return "data frame without fragment header";
        case FrameError::FragmentTooLarge: return "fragment larger than 64 KiB";
        case FrameError::MessageTooLarge: return "message larger than 1 MiB";
        case FrameError::FragmentOutside: return "fragment outside its message";
        case FrameError::UnexpectedPayload: return "payload on a frame that has none";
        case FrameError::BadSequence: return "sequence 0";
        case FrameError::BadHello: return "bad hello";
        case FrameError::MissingHello: return "hello frame without hello header";
        case FrameError::MissingCredit: return "ack frame without credit header";
        case FrameError::BadWindowSequence: return "credit with window sequence 0";
    }
    return "bad frame";
}

FrameResult<Frame> decode_header(std::span<const uint8_t, kHeaderLen> bytes) {
    ByteReader r(bytes);
    Frame f;
    f.sequence = r.be64();
    f.ack = r.be64();
    f.len = r.be32();
    f.sport = r.be16();
    f.dport = r.be16();
    f.flags = r.u8();
    r.skip(1 + 4 + 2);  // h_credit, h_padding, h_csum: unused over TCP
    bool kind_seen = false, frag_seen = false, hello_seen = false, credit_seen = false;
    size_t at = kHeaderLen - kExtSpace;
    while (at < kHeaderLen) {
        const uint8_t type = bytes[at];
        if (type == kExtNone) break;
        const size_t body = ext_size(type);
        if (body == SIZE_MAX || at + 1 + body > kHeaderLen) return fail(FrameError::UnknownExtension);
        ByteReader e(bytes, at + 1);
        if (type == kExtKind) {
            const uint8_t k = e.u8();
            if (k < 1 || k > 6) return fail(FrameError::BadKind);
            f.kind = static_cast<Kind>(k);
            kind_seen = true;
        } else if (type == kExtFragment) {
            f.frag_offset = e.be32();
            f.msg_len = e.be32();
            frag_seen = true;
        } else if (type == kExtCredit) {
            f.window = e.be32();
            f.window_seq = e.be64();
            credit_seen = true;
        } else {
            f.hello.lane = e.be16();
            f.hello.lanes = e.be16();
            f.hello.incarnation = e.be64();
            hello_seen = true;
        }
        at += 1 + body;
    }
    if (!kind_seen) return fail(FrameError::NoKind);
    if (f.len > kMaxFragment) return fail(FrameError::FragmentTooLarge);
    if (!has_payload(f.kind) && f.len != 0) return fail(FrameError::UnexpectedPayload);
    switch (f.kind) {
        case Kind::Data:
            if (!frag_seen) return fail(FrameError::MissingFragment);
            if (f.msg_len > kMaxMessage) return fail(FrameError::MessageTooLarge);
            if (uint64_t{f.frag_offset} + f.len > f.msg_len) return fail(FrameError::FragmentOutside);
            if (f.sequence == 0) return fail(FrameError::BadSequence);
            break;
        case Kind::Ack:
            if (f.ack == 0) return fail(FrameError::BadSequence);
            if (!credit_seen) return fail(FrameError::MissingCredit);
            if (f.window_seq == 0) return fail(FrameError::BadWindowSequence);
            break;
        case Kind::Unreachable:
            if (f.sequence == 0) return fail(FrameError::BadSequence);
            break;
        case Kind::Hello:
            if (!hello_seen) return fail(FrameError::MissingHello);
            if (f.hello.lanes == 0 || f.hello.lanes > kMaxLanes || f.hello.lane >= f.hello.lanes ||
                f.hello.incarnation == 0)
                return fail(FrameError::BadHello);
            break;
        case Kind::Ping:
        case Kind::Pong:
            break;
    }
    // Fields that mean nothing for this kind are dropped, so decode(encode(f)) == f.
    if (f.kind != Kind::Data) f.frag_offset = f.msg_len = 0;
    if (f.kind != Kind::Hello) f.hello = {};
    if (f.kind != Kind::Ack) f.ack = f.window = 0, f.window_seq = 0;
    return f;
}

std::array<uint8_t, kHeaderLen> encode_header(const Frame& f) {
    std::vector<uint8_t> out;
    out.reserve(kHeaderLen);
    ByteWriter w(out);
    w.be64(f.sequence);
    w.be64(f.kind == Kind::Ack ? f.ack : 0);
    w.be32(f.len);
    w.be16(f.sport);
    w.be16(f.dport);
    w.u8(f.flags);
    w.zeros(1 + 4 + 2);
    w.u8(kExtKind);
    w.u8(static_cast<uint8_t>(f.kind));
    if (f.kind == Kind::Data) {
        w.u8(kExtFragment);
        w.be32(f.frag_offset);
        w.be32(f.msg_len);
    } else if (f.kind == Kind::Hello) {
        w.u8(kExtHello);
        w.be16(f.hello.lane);
        w.be16(f.hello.lanes);
        w.be64(f.hello.incarnation);
    } else if (f.kind == Kind::Ack) {
        w.u8(kExtCredit);
        w.be32(f.window);
        w.be64(f.window_seq);
    }
    w.zeros(kHeaderLen - out.size());
    std::array<uint8_t, kHeaderLen> a;
    std::copy(out.begin(), out.end(), a.begin());
    return a;
}

}  // namespace shunt::rds
