// connect_aligned over loopback: the socket really uses the allocator's port, the reply tuple
// hashes to the wanted queue, and a port whose 4-tuple is taken is skipped and given back.
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "core/tcp.hpp"
#include "shunt/rss.hpp"
#include "test_util.hpp"

namespace shunt::rss {
namespace {

using test::ip;

uint16_t local_port_of(int fd, bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                        : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (rc < 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

struct Loopback {
    UniqueFd listener;
    uint16_t port;
    explicit Loopback(const std::string& host) : listener(tcp_listen(host, 0)) {
        port = local_port_of(listener.get(), false);
    }
};

// A fresh random range per allocator: the loopback namespace is shared with whatever else runs on
// the machine, and sockets of an earlier run may still sit in TIME_WAIT on fixed port numbers.
PortRange random_range() {
    std::random_device rd;
    const auto lo = static_cast<uint16_t>(33000 + rd() % 26000);
    return PortRange{lo, static_cast<uint16_t>(lo + 2047)};
}

PortAllocator::Config loopback_config(const IpAddress& local, bool shuffle) {
    PortAllocator::Config c;
    c.model = NicModel::make_default(4);
    c.local = local;
    c.range = random_range();
    c.shuffle = shuffle;
    c.seed = 3;
    return c;
}

void check_connections(const std::string& host, const ConnectOptions& opt) {
    Loopback srv(host);
    const IpAddress local = ip(host);
    PortAllocator a(loopback_config(local, true));
    for (uint32_t q = 0; q < 4; ++q) {
        Target t = a.target(local, srv.port, q);
        AlignedSocket s = connect_aligned(a, t, opt);
        ASSERT_GE(s.fd(), 0);
        EXPECT_EQ(local_port_of(s.fd(), false), s.local_port());
        EXPECT_TRUE(a.held(s.local_port()));
        UniqueFd peer = tcp_accept(srv.listener.get());
        EXPECT_EQ(local_port_of(peer.get(), true), s.local_port());
        EXPECT_EQ(test::reference_queue(a.model(), local, s.local_port(), local, srv.port), q);
        const uint16_t port = s.local_port();
        s.close();
        EXPECT_FALSE(a.held(port)) << "closing the socket returns the port";
    }
}

TEST(ConnectAligned, Ipv4LoopbackPreferredMethod) {
    check_connections("127.0.0.1", {});
}

TEST(ConnectAligned, Ipv4LoopbackReuseAddrFallback) {
    ConnectOptions opt;
    opt.prefer_local_port_range = false;
    check_connections("127.0.0.1", opt);
}

TEST(ConnectAligned, Ipv6Loopback) {
    std::unique_ptr<Loopback> probe;
    try {
        probe = std::make_unique<Loopback>("::1");
    } catch (const std::exception& e) {
        GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    probe.reset();
    check_connections("::1", {});
}

// Occupy the 4-tuple of the port the allocator will hand out next; connect_aligned must skip it,
// succeed with the next port, and return the skipped one to the allocator.
TEST(ConnectAligned, SkipsAPortWhoseFourTupleIsTaken) {
    for (bool prefer_range : {true, false}) {
        SCOPED_TRACE(prefer_range ? "IP_LOCAL_PORT_RANGE" : "SO_REUSEADDR+bind");
        Loopback srv("127.0.0.1");
        const IpAddress local = ip("127.0.0.1");
        PortAllocator a(loopback_config(local, false));
        Target t = a.target(local, srv.port, 1);
        const auto next = a.acquire(t);
        ASSERT_TRUE(next);
        ASSERT_TRUE(a.release(*next));  // LIFO: it is handed out first again

        UniqueFd squatter(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int one = 1;
        ::setsockopt(squatter.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons(*next);
        ASSERT_EQ(::bind(squatter.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0)
            << std::strerror(errno);
        sin.sin_port = htons(srv.port);
        ASSERT_EQ(::connect(squatter.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0)
            << std::strerror(errno);
        UniqueFd accepted = tcp_accept(srv.listener.get());

        ConnectOptions opt;
        opt.prefer_local_port_range = prefer_range;
        AlignedSocket s = connect_aligned(a, t, opt);
        EXPECT_NE(s.local_port(), *next);
        // >= 2: the first port is certainly taken; other sockets on this host may take more.
        EXPECT_GE(s.attempts(), 2);
        EXPECT_EQ(local_port_of(s.fd(), false), s.local_port());
        EXPECT_EQ(test::reference_queue(a.model(), local, s.local_port(), local, srv.port), 1u);
        EXPECT_FALSE(a.held(*next)) << "the rejected port went back to the allocator";
    }
}

TEST(ConnectAligned, RefusedConnectionIsAnErrorAndReturnsThePort) {
    Loopback srv("127.0.0.1");
    const uint16_t dead = srv.port;
    srv.listener.reset();  // nobody listens there now
    const IpAddress local = ip("127.0.0.1");
    PortAllocator a(loopback_config(local, false));
    Target t = a.target(local, dead, 0);
    EXPECT_THROW(connect_aligned(a, t), std::system_error);
    const PortRange r = a.index().range();
    for (uint32_t p = r.lo; p <= r.hi; ++p) ASSERT_FALSE(a.held(static_cast<uint16_t>(p)));
}

TEST(PortsInUse, SeesOurListenerAndConnection) {
    Loopback srv("127.0.0.1");
    UniqueFd client = tcp_connect("127.0.0.1", srv.port);
    const uint16_t cport = local_port_of(client.get(), false);
    const auto used = tcp_ports_in_use(ip("127.0.0.1"));
    EXPECT_TRUE(std::binary_search(used.begin(), used.end(), srv.port));
    EXPECT_TRUE(std::binary_search(used.begin(), used.end(), cport));
    // Another address does not see 127.0.0.1's sockets (unless bound to the wildcard).
    const auto other = tcp_ports_in_use(ip("127.0.0.2"));
    EXPECT_FALSE(std::binary_search(other.begin(), other.end(), srv.port));

    // Fed to the allocator, they are never handed out.
    PortAllocator::Config c = loopback_config(ip("127.0.0.1"), true);
    c.range = PortRange{std::min(srv.port, cport), std::max(srv.port, cport)};
    c.excluded = used;
    PortAllocator a(std::move(c));
    for (uint32_t q = 0; q < 4; ++q) {
        Target t = a.target(ip("127.0.0.1"), 80, q);
        while (auto p = a.acquire(t)) ASSERT_TRUE(*p != srv.port && *p != cport);
    }
}

}  // namespace
}  // namespace shunt::rss
