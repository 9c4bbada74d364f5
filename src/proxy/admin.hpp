#pragma once
// The admin socket: a UNIX stream socket taking one command line per connection.
//   stats [json|prometheus]              per-shard counters and server states
//   set server BACKEND/SERVER addr HOST:PORT   move a server; shards retarget in O(1)
// The answer ends when the proxy closes the connection. Errors start with "error: ".
#include <atomic>
#include <functional>
#include <string>

namespace shunt::proxy {

using AdminHandler = std::function<std::string(const std::string& command)>;

// Serves `path` until `stop` is set (checked every 200 ms); removes the socket file on return.
// Throws std::system_error if the socket cannot be bound.
class AdminServer {
  public:
    AdminServer(std::string path, AdminHandler handler);
    ~AdminServer();
    void run(const std::atomic<bool>& stop);

  private:
    std::string path_;
    AdminHandler handler_;
    int fd_ = -1;
};

// Client side: sends one command, returns the whole answer. Throws std::system_error.
std::string admin_request(const std::string& path, const std::string& command);

}  // namespace shunt::proxy
