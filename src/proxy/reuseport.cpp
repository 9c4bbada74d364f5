// The reuseport listener group and its CPU-steering cBPF program (see reuseport.hpp).
#include "proxy/reuseport.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "proxy/sockaddr.hpp"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

namespace shunt::proxy {

std::vector<sock_filter> reuseport_cpu_program(const std::vector<int>& cpus) {
    std::vector<sock_filter> p;
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)));
    for (size_t i = 0; i < cpus.size(); ++i) {
        // if (A == cpu_i) return i; (jt = 0: next insn is the return, jf = 1: skip it)
        p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(cpus[i]), 0, 1));
        p.push_back(BPF_STMT(BPF_RET | BPF_K, static_cast<uint32_t>(i)));
    }
    p.push_back(BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, static_cast<uint32_t>(cpus.size())));
    p.push_back(BPF_STMT(BPF_RET | BPF_A, 0));
    return p;
}

unsigned reuseport_index_for_cpu(const std::vector<int>& cpus, int cpu) {
    for (size_t i = 0; i < cpus.size(); ++i)
        if (cpus[i] == cpu) return static_cast<unsigned>(i);
    return static_cast<unsigned>(cpu) % static_cast<unsigned>(cpus.size());
}

std::vector<UniqueFd> open_listener_group(const HostPort& listen, const std::vector<int>& cpus,
                                          int backlog) {
    const SockAddr addr = resolve_one(listen, true);
    std::vector<UniqueFd> out;
    for (size_t i = 0; i < cpus.size(); ++i) {
        UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
        const int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
        if (::bind(fd.get(), addr.get(), addr.len) < 0)
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("bind {}", listen.to_string()));
        if (::listen(fd.get(), backlog) < 0)
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("listen {}", listen.to_string()));
        out.push_back(std::move(fd));
    }
    auto prog = reuseport_cpu_program(cpus);
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    if (::setsockopt(out.front().get(), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) < 0)
        throw std::system_error(errno, std::generic_category(), "SO_ATTACH_REUSEPORT_CBPF");
    return out;
}

}  // namespace shunt::proxy
