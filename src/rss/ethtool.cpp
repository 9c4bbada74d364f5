// Reading a NIC's RSS configuration through the SIOCETHTOOL ioctl (what `ethtool -x` and
// `ethtool -n IFACE rx-flow-hash tcp4` show). docs/rss-algebra.md: on Linux the key is random per boot
// unless the admin sets one, the RETA is driver-specific and the hash may not be Toeplitz or may
// leave out the ports, so a port allocator must read all of it rather than assume the defaults.
// Software devices (lo, veth) answer ETHTOOL_GRSSH with EOPNOTSUPP; that is reported, not thrown.
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "core/unique_fd.hpp"
#include "shunt/rss.hpp"

namespace shunt::rss {
namespace {

int ethtool_ioctl(int fd, const std::string& ifname, void* cmd) {
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, ifname.data(), ifname.size());
    ifr.ifr_data = static_cast<char*>(cmd);
    return ::ioctl(fd, SIOCETHTOOL, &ifr) < 0 ? errno : 0;
}

std::optional<uint64_t> flow_hash_fields(int fd, const std::string& ifname, uint32_t flow_type,
                                         int* err) {
    ethtool_rxnfc nfc{};
    nfc.cmd = ETHTOOL_GRXFH;
    nfc.flow_type = flow_type;
    if (int e = ethtool_ioctl(fd, ifname, &nfc)) {
        *err = e;
        return std::nullopt;
    }
    return nfc.data;
}

}  // namespace

bool NicRssInfo::ports_hashed(uint64_t rxh_fields) {
    return (rxh_fields & RXH_L4_B_0_1) && (rxh_fields & RXH_L4_B_2_3);
}

std::optional<NicModel> NicRssInfo::model(std::string* why) const {
    auto fail = [&](std::string msg) -> std::optional<NicModel> {
        if (why) *why = std::move(msg);
        return std::nullopt;
    };
    if (!has_rxfh)
        return fail(fmt::format("{} exposes no RSS key/RETA (ETHTOOL_GRSSH: {})", ifname,
                                std::strerror(rxfh_errno)));
    auto k = ToeplitzKey::from_bytes(key);
    if (!k)
        return fail(fmt::format("{}: RSS key of {} bytes is outside 40..60", ifname, key.size()));
    const size_t n = reta.size();
    if (n < Reta::kMinSize || n > Reta::kMaxSize || (n & (n - 1)) != 0)
        return fail(
            fmt::format("{}: RETA of {} entries is not a power of two in 4..65536", ifname, n));
    return NicModel{*k, Reta::from_entries(reta)};
}

NicRssInfo query_nic(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ)
        throw std::invalid_argument(fmt::format("bad interface name '{}'", ifname));
    if (::if_nametoindex(ifname.c_str()) == 0)
        throw std::system_error(errno, std::generic_category(), "interface " + ifname);
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::system_error(errno, std::generic_category(), "socket");

    NicRssInfo info;
    info.ifname = ifname;

    ethtool_rxnfc rings{};
    rings.cmd = ETHTOOL_GRXRINGS;
    if (int e = ethtool_ioctl(fd.get(), ifname, &rings))
        info.rx_rings_error = std::strerror(e);
    else
        info.rx_rings = static_cast<uint32_t>(rings.data);

    // ETHTOOL_GRSSH twice: sizes first, then the key and the table into a buffer behind the header.
    ethtool_rxfh head{};
    head.cmd = ETHTOOL_GRSSH;
    if (int e = ethtool_ioctl(fd.get(), ifname, &head)) {
        info.rxfh_errno = e;
    } else {
        const size_t hdr = offsetof(ethtool_rxfh, rss_config);
        const size_t indir_bytes = size_t{head.indir_size} * sizeof(uint32_t);
        std::vector<uint32_t> buf((hdr + indir_bytes + head.key_size + 3) / 4 + 1, 0);
        auto* full = reinterpret_cast<ethtool_rxfh*>(buf.data());
        full->cmd = ETHTOOL_GRSSH;
        full->indir_size = head.indir_size;
        full->key_size = head.key_size;
        if (int e2 = ethtool_ioctl(fd.get(), ifname, full)) {
            info.rxfh_errno = e2;
        } else {
            info.has_rxfh = true;
            info.hfunc = full->hfunc;
            const auto* base = reinterpret_cast<const uint8_t*>(buf.data()) + hdr;
            info.reta.resize(full->indir_size);
            std::memcpy(info.reta.data(), base, size_t{full->indir_size} * sizeof(uint32_t));
            info.key.assign(base + size_t{full->indir_size} * sizeof(uint32_t),
                            base + size_t{full->indir_size} * sizeof(uint32_t) + full->key_size);
        }
    }

    int err4 = 0, err6 = 0;
    info.tcp4_fields = flow_hash_fields(fd.get(), ifname, TCP_V4_FLOW, &err4);
    info.tcp6_fields = flow_hash_fields(fd.get(), ifname, TCP_V6_FLOW, &err6);
    info.rxfh_fields_errno = err4 ? err4 : err6;
    return info;
}

std::string describe_hash_fields(uint64_t f) {
    struct Name {
        uint64_t bit;
        const char* name;
    };
    static constexpr Name kNames[] = {
        {RXH_L2DA, "L2 dst"},           {RXH_VLAN, "VLAN"},
        {RXH_L3_PROTO, "L3 proto"},     {RXH_IP_SRC, "IP src"},
        {RXH_IP_DST, "IP dst"},         {RXH_L4_B_0_1, "L4 bytes 0-1"},
        {RXH_L4_B_2_3, "L4 bytes 2-3"}, {uint64_t{static_cast<uint32_t>(RXH_DISCARD)}, "discard"},
    };
    std::string s;
    for (const auto& n : kNames) {
        if (!(f & n.bit)) continue;
        if (!s.empty()) s += ", ";
        s += n.name;
    }
    return s.empty() ? "none" : s;
}

}  // namespace shunt::rss
