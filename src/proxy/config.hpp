#pragma once
// The proxy's configuration: one description for all shards.
//
// Read from a TOML file (toml++) or built from command-line flags for the one-frontend,
// one-backend case. Nothing here is per shard or per RSS bucket: every shard runs the same
// configuration and derives its own aligned port pools from the NIC model at start. A malformed
// file is reported as "file:line:column: what" (ConfigError), with the line of the offending key.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "shunt/rss.hpp"

namespace shunt::proxy {

using Millis = std::chrono::milliseconds;

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// host:port as written; the host is an IPv4 address, a bracketed IPv6 address or a DNS name.
struct HostPort {
    std::string host;
    uint16_t port = 0;
    std::string to_string() const;
};
// "host:port", "[v6]:port"; nullopt if the port is missing or not in 1..65535.
std::optional<HostPort> parse_host_port(std::string_view text);

enum class Balance : uint8_t { kRoundRobin, kLeastConn };
const char* to_string(Balance b);

struct ServerConfig {
    std::string name;     // unique within its backend; defaults to the address text
    HostPort address;
};

struct BackendConfig {
    std::string name;
    Balance balance = Balance::kRoundRobin;
    std::vector<ServerConfig> servers;
    bool proxy_protocol = false;  // send a PROXY protocol v2 header first
};

struct FrontendConfig {
    std::string name;
    HostPort listen;
    size_t backend = 0;  // index into Config::backends
};

struct HealthConfig {
    bool enabled = true;
    Millis interval{1000};
    Millis timeout{1000};
    int rise = 2;  // consecutive successes that bring a server back
    int fall = 2;  // consecutive failures that take it out
};

struct Config {
    std::string origin;           // file name or "command line", for messages
    std::vector<int> cpus;        // one shard per CPU; empty = every CPU we may run on
    size_t max_connections = 10000;  // client sessions, whole process (split evenly over shards)
    std::string admin_socket;     // UNIX socket path; empty = none
    bool splice = true;           // bulk transfers switch to splice(2) through a pipe
    size_t backlog = 1024;

    // RSS: a model file (key, RETA, queue -> CPU) or an interface to read with ethtool.
    std::string model_file;
    std::string nic;
    bool align = true;                 // false: kernel-chosen ports even with a model
    std::vector<std::string> sources;  // local addresses for backend connections; empty = route
    rss::PortRange port_range{};

    Millis connect_timeout{5000};
    Millis client_idle{60000};
    Millis server_idle{60000};
    Millis grace{10000};  // graceful stop: how long to let sessions drain
    int retries = 1;      // connection attempts on other servers after a failed connect
    Millis resolve_interval{30000};  // re-resolve servers given by DNS name; 0 = never

    HealthConfig health;
    std::vector<FrontendConfig> frontends;
    std::vector<BackendConfig> backends;
};

// Parses a configuration file. Throws ConfigError("path:line:col: ...") on any error, including
// unknown keys (a typo must not be silently ignored).
Config load_config(const std::string& path);
Config parse_config(std::string_view text, const std::string& origin);

// "250ms", "5s", "2m", or an integer number of milliseconds.
std::optional<Millis> parse_duration(std::string_view text);
// "0-3,6,8-9" -> {0,1,2,3,6,8,9}; nullopt on a malformed list.
std::optional<std::vector<int>> parse_cpu_list(std::string_view text);

// Checks cross-references and values (also used for flag-built configurations); throws
// ConfigError naming `origin`.
void validate(const Config& c);

}  // namespace shunt::proxy
