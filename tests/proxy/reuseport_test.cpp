// The CPU-steering reuseport program: its mapping, and the kernel running it on loopback, where
// a SYN is processed on the CPU of the thread that sends it.
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "core/unique_fd.hpp"
#include "proxy/proxy.hpp"
#include "proxy/reuseport.hpp"
#include "proxy/sockaddr.hpp"

namespace shunt::proxy {
namespace {

TEST(Reuseport, IndexForCpu) {
    const std::vector<int> cpus{4, 2, 7};
    EXPECT_EQ(reuseport_index_for_cpu(cpus, 4), 0u);
    EXPECT_EQ(reuseport_index_for_cpu(cpus, 2), 1u);
    EXPECT_EQ(reuseport_index_for_cpu(cpus, 7), 2u);
    EXPECT_EQ(reuseport_index_for_cpu(cpus, 5), 5u % 3);  // no shard there: spread
}

TEST(Reuseport, ProgramShape) {
    const auto p = reuseport_cpu_program({3, 1});
    ASSERT_EQ(p.size(), 1u + 2 * 2 + 2);
    EXPECT_EQ(p[0].code, BPF_LD | BPF_W | BPF_ABS);
    EXPECT_EQ(p[0].k, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU));
    EXPECT_EQ(p[1].k, 3u);
    EXPECT_EQ(p[2].k, 0u);
    EXPECT_EQ(p[3].k, 1u);
    EXPECT_EQ(p[4].k, 1u);
    EXPECT_EQ(p[5].code, BPF_ALU | BPF_MOD | BPF_K);
    EXPECT_EQ(p[5].k, 2u);
}

uint16_t free_port() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
    auto a = make_sockaddr(*rss::IpAddress::parse("127.0.0.1"), 0);
    EXPECT_EQ(::bind(fd.get(), a.get(), a.len), 0);
    return local_name(fd.get()).port();
}

void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

// Connects from each CPU in turn and checks which listener of the group gets the connection.
void check_group(const std::vector<int>& cpus) {
    const uint16_t port = free_port();
    auto group = open_listener_group(HostPort{"127.0.0.1", port}, cpus, 16);
    ASSERT_EQ(group.size(), cpus.size());
    const auto target = make_sockaddr(*rss::IpAddress::parse("127.0.0.1"), port);
    for (int cpu : cpus) {
        pin(cpu);
        UniqueFd c(::socket(AF_INET, SOCK_STREAM, 0));
        ASSERT_EQ(::connect(c.get(), target.get(), target.len), 0);
        std::vector<pollfd> p;
        for (auto& l : group) p.push_back({l.get(), POLLIN, 0});
        ASSERT_EQ(::poll(p.data(), p.size(), 5000), 1) << "exactly one listener is readable";
        for (size_t i = 0; i < p.size(); ++i) {
            if (!p[i].revents) continue;
            EXPECT_EQ(i, reuseport_index_for_cpu(cpus, cpu)) << "SYN from CPU " << cpu;
            UniqueFd a(::accept(group[i].get(), nullptr, nullptr));
            ASSERT_TRUE(a);
            int incoming = -1;
            socklen_t len = sizeof incoming;
            ASSERT_EQ(::getsockopt(a.get(), SOL_SOCKET, SO_INCOMING_CPU, &incoming, &len), 0);
            EXPECT_EQ(incoming, cpu);
        }
    }
    pin(cpus.front());
}

TEST(Reuseport, KernelPicksTheListenerOfTheSynCpu) {
    const auto cpus = allowed_cpus();
    if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs";
    const std::vector<int> two{cpus[0], cpus[1]};
    check_group(two);
    check_group({two[1], two[0]});  // reversed: index != CPU number
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int c : cpus) CPU_SET(c, &all);
    pthread_setaffinity_np(pthread_self(), sizeof all, &all);
}

}  // namespace
}  // namespace shunt::proxy
