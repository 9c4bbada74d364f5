#pragma once
// A client that follows the lo rendezvous faithfully (announce, connect, answer the server's
// hello with "go") and then lets the test send whatever CLC bytes it likes on the TCP socket.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <stdexcept>

#include "core/fd_passing.hpp"
#include "core/inet.hpp"
#include "lo/rundir.hpp"
#include "lo/side_channel.hpp"

namespace shunt::test {
using lo::FourTuple;
using lo::kMaxSideMessage;
using lo::Rundir;

struct FakeClient {
    UniqueFd tcp;
    UniqueFd side;
    FakeClient(const Rundir& rundir, uint16_t port) {
        tcp.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(tcp.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) < 0) throw std::runtime_error("bind");
        const FourTuple t{*local_endpoint(tcp.get()), *IpPort::parse("127.0.0.1", port)};
        auto ann = rundir.announce(t);
        if (!ann) throw std::runtime_error("announce failed");
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        dst.sin_port = htons(port);
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(tcp.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0) throw std::runtime_error("connect");
        pollfd p{ann->fd(), POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) throw std::runtime_error("server never reached the announcement");
        side.reset(::accept4(ann->fd(), nullptr, nullptr, SOCK_CLOEXEC));
        auto hello = receive_with_fds(side.get(), kMaxSideMessage, 0, std::chrono::milliseconds(5000));
        if (!hello) throw std::runtime_error("no hello");
        const char go = 'G';
        if (::send(side.get(), &go, 1, 0) != 1) throw std::runtime_error("go");
    }
};


}  // namespace shunt::test
