#include "core/socket_owner.hpp"

#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>

#include "core/unique_fd.hpp"

namespace shunt {
namespace {

std::optional<uint64_t> socket_inode(const IpPort& local, const IpPort& remote, int family) {
    UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!nl) return std::nullopt;
    struct {
        nlmsghdr nlh;
        inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = static_cast<uint8_t>(family);
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0u;
    msg.req.id.idiag_sport = htons(local.port);
    msg.req.id.idiag_dport = htons(remote.port);
    msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (family == AF_INET) {
        std::memcpy(msg.req.id.idiag_src, local.addr.data() + 12, 4);
        std::memcpy(msg.req.id.idiag_dst, remote.addr.data() + 12, 4);
    } else {
        std::memcpy(msg.req.id.idiag_src, local.addr.data(), 16);
        std::memcpy(msg.req.id.idiag_dst, remote.addr.data(), 16);
    }
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(nl.get(), &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return std::nullopt;
    char buf[8192];
    const ssize_t n = ::recv(nl.get(), buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    // Walk the reply by copying each header out: no casts into the byte buffer.
    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= static_cast<size_t>(n)) {
        nlmsghdr h;
        std::memcpy(&h, buf + off, sizeof h);
        if (h.nlmsg_len < sizeof h || off + h.nlmsg_len > static_cast<size_t>(n)) return std::nullopt;
        if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY) return std::nullopt;  // NLMSG_ERROR: no such socket
        inet_diag_msg d;
        if (h.nlmsg_len < NLMSG_LENGTH(sizeof d)) return std::nullopt;
        std::memcpy(&d, buf + off + NLMSG_HDRLEN, sizeof d);
        if (d.idiag_inode) return d.idiag_inode;
        off += NLMSG_ALIGN(h.nlmsg_len);
    }
    return std::nullopt;
}

}  // namespace

bool process_holds_tcp_socket(pid_t pid, const IpPort& local, const IpPort& remote) {
    auto inode = local.is_v4() ? socket_inode(local, remote, AF_INET) : std::nullopt;
    if (!inode) inode = socket_inode(local, remote, AF_INET6);  // also a dual-stack socket
    if (!inode) return false;
    const std::string want = "socket:[" + std::to_string(*inode) + "]";
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool found = false;
    while (dirent* e = ::readdir(d)) {
        char target[64] = {};
        const std::string link = dir + "/" + e->d_name;
        const ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
        if (len > 0 && want == target) {
            found = true;
            break;
        }
    }
    ::closedir(d);
    return found;
}

}  // namespace shunt
