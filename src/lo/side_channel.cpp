#include "lo/side_channel.hpp"

#include "core/bytes.hpp"

namespace shunt::lo {
namespace {
constexpr uint32_t kHelloMagic = 0x53484c48;    // "SHLH"
constexpr uint32_t kBuffersMagic = 0x53484c42;  // "SHLB"
constexpr size_t kHelloLen = 4 + 2 * 18;
constexpr size_t kBuffersLen = 4 + 8 + 4;

void put(ByteWriter& w, const IpPort& ep) {
    w.bytes(ep.addr);
    w.be16(ep.port);
}
IpPort get(ByteReader& r) {
    IpPort ep;
    ep.addr = r.array<uint8_t, 16>();
    ep.port = r.be16();
    return ep;
}
}  // namespace

std::vector<uint8_t> encode(const Hello& m) {
    std::vector<uint8_t> out;
    ByteWriter w(out);
    w.be32(kHelloMagic);
    put(w, m.tuple.client);
    put(w, m.tuple.server);
    return out;
}

std::vector<uint8_t> encode(const Buffers& m) {
    std::vector<uint8_t> out;
    ByteWriter w(out);
    w.be32(kBuffersMagic);
    w.be64(m.token);
    w.be32(m.dmb_size);
    return out;
}

std::optional<Hello> decode_hello(std::span<const uint8_t> bytes) {
    if (bytes.size() != kHelloLen) return std::nullopt;
    ByteReader r(bytes);
    if (r.be32() != kHelloMagic) return std::nullopt;
    Hello h;
    h.tuple.client = get(r);
    h.tuple.server = get(r);
    return h;
}

std::optional<Buffers> decode_buffers(std::span<const uint8_t> bytes) {
    if (bytes.size() != kBuffersLen) return std::nullopt;
    ByteReader r(bytes);
    if (r.be32() != kBuffersMagic) return std::nullopt;
    Buffers b;
    b.token = r.be64();
    b.dmb_size = r.be32();
    return b;
}

}  // namespace shunt::lo
