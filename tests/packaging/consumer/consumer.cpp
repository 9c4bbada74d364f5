// One connection over shunt lo through the installed C++ API: the client runs on its own
// thread (a thread cannot both connect to and accept from one listener).
#include <shunt/decline.hpp>
#include <shunt/lo.hpp>
#include <shunt/version.hpp>

#include <cstdio>
#include <cstring>
#include <thread>

int main() {
    auto listener = shunt::lo::Listener::listen("127.0.0.1", 0);
    const uint16_t port = listener.port();
    bool client_ok = false;
    std::thread client([&] {
        auto s = shunt::lo::Stream::connect("127.0.0.1", port);
        char reply[4] = {};
        client_ok = s.write("ping", 4) == 4 && s.read(reply, 4) == 4 && std::memcmp(reply, "pong", 4) == 0;
    });
    auto conn = listener.accept();
    char buf[4] = {};
    const bool server_ok = conn.read(buf, 4) == 4 && std::memcmp(buf, "ping", 4) == 0 && conn.write("pong", 4) == 4;
    client.join();
    std::printf("shunt %s: %s %s %s\n", shunt::kVersion, conn.accelerated() ? "SMCD" : "TCP",
                shunt::decline_name(conn.fallback_reason()).c_str(), server_ok && client_ok ? "ping-pong ok" : "ping-pong FAILED");
    return server_ok && client_ok ? 0 : 1;
}
