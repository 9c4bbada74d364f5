// Configuration parsing: values, defaults, and errors that name the file and line.
#include <gtest/gtest.h>

#include "proxy/config.hpp"

namespace shunt::proxy {
namespace {

const char* kGood = R"(
[global]
cpus = "0-1"
max_connections = 500
admin = "/tmp/x.sock"

[rss]
model = "m.toml"
port_range = "40000-40999"
sources = ["10.0.0.1", "10.0.0.3"]

[timeouts]
connect = "2s"
client_idle = 30000
server_idle = "1m"

[health]
interval = "500ms"
rise = 3

[[backend]]
name = "web"
balance = "leastconn"
servers = ["10.0.0.2:80", { name = "b", address = "backend.example:8080" }]

[[frontend]]
listen = "0.0.0.0:8080"
backend = "web"
)";

TEST(Config, ParsesEverySection) {
    const Config c = parse_config(kGood, "good.toml");
    EXPECT_EQ(c.cpus, (std::vector<int>{0, 1}));
    EXPECT_EQ(c.max_connections, 500u);
    EXPECT_EQ(c.admin_socket, "/tmp/x.sock");
    EXPECT_EQ(c.model_file, "m.toml");
    EXPECT_EQ(c.port_range.lo, 40000);
    EXPECT_EQ(c.port_range.hi, 40999);
    EXPECT_EQ(c.sources.size(), 2u);
    EXPECT_EQ(c.connect_timeout, Millis(2000));
    EXPECT_EQ(c.client_idle, Millis(30000));
    EXPECT_EQ(c.server_idle, Millis(60000));
    EXPECT_EQ(c.health.interval, Millis(500));
    EXPECT_EQ(c.health.rise, 3);
    EXPECT_EQ(c.health.fall, 2);
    ASSERT_EQ(c.backends.size(), 1u);
    EXPECT_EQ(c.backends[0].balance, Balance::kLeastConn);
    ASSERT_EQ(c.backends[0].servers.size(), 2u);
    EXPECT_EQ(c.backends[0].servers[0].name, "10.0.0.2:80");
    EXPECT_EQ(c.backends[0].servers[1].name, "b");
    EXPECT_EQ(c.backends[0].servers[1].address.host, "backend.example");
    EXPECT_EQ(c.backends[0].servers[1].address.port, 8080);
    ASSERT_EQ(c.frontends.size(), 1u);
    EXPECT_EQ(c.frontends[0].backend, 0u);
}

// The error text starts with "file:line:".
std::string error_of(const std::string& text) {
    try {
        parse_config(text, "bad.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

TEST(Config, SyntaxErrorNamesFileAndLine) {
    const auto e = error_of("[global]\nmax_connections = 5\n[[backend]\nname = \"x\"\n");
    EXPECT_EQ(e.rfind("bad.toml:3:", 0), 0u) << e;
}

TEST(Config, UnknownKeyNamesItsLine) {
    const auto e = error_of("[global]\nmax_conections = 5\n");
    EXPECT_EQ(e.rfind("bad.toml:2:", 0), 0u) << e;
    EXPECT_NE(e.find("max_conections"), std::string::npos) << e;
}

TEST(Config, BadValuesNameTheirLine) {
    const std::string tail = "[[backend]]\nname = \"b\"\nservers = [\"1.2.3.4:80\"]\n";
    EXPECT_EQ(error_of("[timeouts]\nconnect = \"5 parsecs\"\n" + tail).rfind("bad.toml:2:", 0), 0u);
    EXPECT_EQ(error_of(tail + "[[frontend]]\nlisten = \"0.0.0.0\"\nbackend = \"b\"\n").rfind("bad.toml:5:", 0),
              0u);
    const auto e = error_of(tail + "[[frontend]]\nlisten = \"0.0.0.0:80\"\nbackend = \"nope\"\n");
    EXPECT_EQ(e.rfind("bad.toml:6:", 0), 0u) << e;
    EXPECT_NE(e.find("nope"), std::string::npos);
    EXPECT_EQ(error_of("[[backend]]\nname = \"b\"\nservers = [\"1.2.3.4:0\"]\n").rfind("bad.toml:3:", 0), 0u);
    EXPECT_EQ(error_of("[global]\ncpus = \"3-1\"\n").rfind("bad.toml:2:", 0), 0u);
    EXPECT_EQ(error_of("[rss]\nport_range = \"0-10\"\n").rfind("bad.toml:2:", 0), 0u);
}

TEST(Config, NeedsAFrontend) {
    EXPECT_NE(error_of("[global]\n").find("frontend"), std::string::npos);
}

TEST(Config, HostPort) {
    auto a = parse_host_port("[fd00::1]:443");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "fd00::1");
    EXPECT_EQ(a->to_string(), "[fd00::1]:443");
    EXPECT_FALSE(parse_host_port("fd00::1:443"));
    EXPECT_FALSE(parse_host_port("host:"));
    EXPECT_FALSE(parse_host_port("host:65536"));
    EXPECT_FALSE(parse_host_port(":80"));
    EXPECT_TRUE(parse_host_port("localhost:80"));
}

TEST(Config, DurationsAndCpuLists) {
    EXPECT_EQ(parse_duration("250ms"), Millis(250));
    EXPECT_EQ(parse_duration("3s"), Millis(3000));
    EXPECT_EQ(parse_duration("2m"), Millis(120000));
    EXPECT_EQ(parse_duration("17"), Millis(17));
    EXPECT_FALSE(parse_duration("s"));
    EXPECT_FALSE(parse_duration("5h"));
    EXPECT_EQ(parse_cpu_list("0-2,5"), (std::vector<int>{0, 1, 2, 5}));
    EXPECT_EQ(parse_cpu_list("3,1,3"), (std::vector<int>{3, 1}));
    EXPECT_FALSE(parse_cpu_list(""));
    EXPECT_FALSE(parse_cpu_list("1-"));
    EXPECT_FALSE(parse_cpu_list("a"));
}

}  // namespace
}  // namespace shunt::proxy
