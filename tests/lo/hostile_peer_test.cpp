// Peers that break the protocol: a malformed or truncated CLC message is answered with a
// Decline, both sides continue on plain TCP, and nothing crashes or hangs.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <future>

#include "clc/builders.hpp"
#include "clc/transfer.hpp"
#include "core/fd_passing.hpp"
#include "core/inet.hpp"
#include "core/tcp.hpp"
#include "lo/engine.hpp"
#include "lo/side_channel.hpp"
#include "shunt/decline.hpp"
#include "fake_client.hpp"
#include "test_support.hpp"

namespace shunt::lo {
namespace {

using test::FakeClient;
using test::options_for;
using test::TempRundir;
constexpr uint32_t code(DeclineCode c) { return static_cast<uint32_t>(c); }

TEST(LoHostilePeer, MalformedProposalIsDeclinedAndTheConnectionStaysTcp) {
    TempRundir dir;
    auto opt = options_for(dir);
    auto listener = Listener::listen("127.0.0.1", 0, opt);
    auto rundir = *Engine::instance().rundir(opt.rundir);
    auto accepted = std::async(std::launch::async, [&] { return listener.accept(); });
    FakeClient fake(*rundir, listener.port());
    // A Proposal whose v2 extension offset points nowhere.
    const clc::Eid ueid[] = {clc::pad_blank("SHUNT")};
    auto bad = clc::encode(clc::loopback_proposal(rundir->gid(), ueid));
    bad[51] = 0x99;
    write_all(fake.tcp.get(), bad.data(), bad.size());
    auto reply = clc::receive_message(fake.tcp.get(), std::chrono::milliseconds(5000));
    ASSERT_TRUE(reply) << reply.error().message();
    const auto* d = std::get_if<clc::Decline>(&*reply);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->diagnosis, code(DeclineCode::SyncErr));
    Stream s = accepted.get();
    EXPECT_FALSE(s.accelerated());
    EXPECT_EQ(s.fallback_reason(), code(DeclineCode::SyncErr));
    write_all(fake.tcp.get(), "after", 5);
    char buf[8];
    ASSERT_EQ(s.read(buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "after");
}

TEST(LoHostilePeer, TruncatedProposalTimesOutIntoADecline) {
    TempRundir dir;
    auto opt = options_for(dir);
    opt.clc_timeout = std::chrono::milliseconds(300);
    auto listener = Listener::listen("127.0.0.1", 0, opt);
    auto rundir = *Engine::instance().rundir(opt.rundir);
    auto accepted = std::async(std::launch::async, [&] { return listener.accept(); });
    FakeClient fake(*rundir, listener.port());
    const clc::Eid ueid[] = {clc::pad_blank("SHUNT")};
    const auto whole = clc::encode(clc::loopback_proposal(rundir->gid(), ueid));
    write_all(fake.tcp.get(), whole.data(), 100);  // then nothing
    auto reply = clc::receive_message(fake.tcp.get(), std::chrono::milliseconds(5000));
    ASSERT_TRUE(reply) << reply.error().message();
    ASSERT_TRUE(std::holds_alternative<clc::Decline>(*reply));
    EXPECT_EQ(std::get<clc::Decline>(*reply).diagnosis, code(DeclineCode::TimeoutCl));
    Stream s = accepted.get();
    EXPECT_EQ(s.fallback_reason(), code(DeclineCode::TimeoutCl));
    ASSERT_EQ(s.write("tcp", 3), 3);
    char buf[3];
    ASSERT_TRUE(read_exact(fake.tcp.get(), buf, 3));
}

TEST(LoHostilePeer, MalformedAcceptIsDeclinedByTheClient) {
    TempRundir dir;
    auto opt = options_for(dir);
    auto rundir = *Engine::instance().rundir(opt.rundir);
    // A fake server: registered like a real one, answers the Proposal with a broken Accept.
    UniqueFd lsock = tcp_listen("127.0.0.1", 0);
    const IpPort bound = *local_endpoint(lsock.get());
    auto reg = rundir->register_listener(bound);
    ASSERT_TRUE(reg);
    auto server = std::async(std::launch::async, [&]() -> uint32_t {
        UniqueFd c = tcp_accept(lsock.get());
        const FourTuple t{*peer_endpoint(c.get()), *local_endpoint(c.get())};
        UniqueFd side(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        const std::string path = rundir->announcement_path(t);
        std::strcpy(sa.sun_path, path.c_str());
        if (::connect(side.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return 1;
        const auto hello = encode(Hello{t});
        send_with_fds(side.get(), hello, {});
        char go;
        if (::recv(side.get(), &go, 1, 0) != 1) return 2;
        auto prop = clc::receive_message(c.get(), std::chrono::milliseconds(5000));
        if (!prop) return 3;
        auto accept = clc::encode(clc::loopback_accept(rundir->gid(), clc::pad_blank("SHUNT"), {1, 2}, true,
                                                       clc::pad_blank("x")));
        accept[25] = 0x90;  // DMBE size 9: more than SMC-D allows
        write_all(c.get(), accept.data(), accept.size());
        auto decl = clc::receive_message(c.get(), std::chrono::milliseconds(5000));
        if (!decl || !std::holds_alternative<clc::Decline>(*decl)) return 4;
        write_all(c.get(), "plain", 5);
        return std::get<clc::Decline>(*decl).diagnosis;
    });
    Stream s = Stream::connect("127.0.0.1", bound.port, opt);
    EXPECT_FALSE(s.accelerated());
    EXPECT_EQ(s.fallback_reason(), code(DeclineCode::SyncErr));
    EXPECT_EQ(server.get(), code(DeclineCode::SyncErr));
    char buf[5];
    ASSERT_EQ(s.read(buf, 5), 5);
    EXPECT_EQ(std::string(buf, 5), "plain");
}

}  // namespace
}  // namespace shunt::lo
