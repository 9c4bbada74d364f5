// PROXY protocol v2 header (see proxy_protocol.hpp).
#include "proxy/proxy_protocol.hpp"

namespace shunt::proxy {

std::string proxy_v2_header(const SockAddr& client, const SockAddr& front) {
    static const char kSig[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
    std::string h(kSig, sizeof kSig);
    const bool ok = client.len > 0 && front.len > 0 && client.family() == front.family() &&
                    (client.family() == AF_INET || client.family() == AF_INET6);
    if (!ok) {
        h += '\x20';  // v2, LOCAL
        h += '\x00';
        h += std::string(2, '\0');
        return h;
    }
    const bool v4 = client.family() == AF_INET;
    h += '\x21';
    h += v4 ? '\x11' : '\x21';
    const uint16_t len = v4 ? 12 : 36;
    h += static_cast<char>(len >> 8);
    h += static_cast<char>(len & 0xff);
    for (const SockAddr* a : {&client, &front}) {
        const auto ip = a->ip();  // bytes() views into it: it must outlive the append
        const auto b = ip.bytes();
        h.append(reinterpret_cast<const char*>(b.data()), b.size());
    }
    for (const SockAddr* a : {&client, &front}) {
        h += static_cast<char>(a->port() >> 8);
        h += static_cast<char>(a->port() & 0xff);
    }
    return h;
}

}  // namespace shunt::proxy
