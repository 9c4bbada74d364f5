#pragma once
// The admin socket: a UNIX stream socket taking one command line per connection.
//   stats [json|prometheus]              per-shard counters and server states
//   set server BACKEND/SERVER addr HOST:PORT   move a server; shards retarget in O(1)
//   takeover FRONTENDS CPUS              graceful reload: the listeners are passed (SCM_RIGHTS)
//                                        to the asking process, then this one drains and exits
// The answer ends when the proxy closes the connection. Errors start with "error: ".
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>

namespace shunt::proxy {

// Gets the command line and the connection (for commands that pass descriptors); returns the
// answer text.
using AdminHandler = std::function<std::string(const std::string& command, int connection)>;

// Serves `path` until `stop` is set (checked every 200 ms). On destruction removes the socket
// file unless another process has bound the path since (a reload).
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
    ino_t inode_ = 0;
};

// Client side: sends one command, returns the whole answer. Throws std::system_error.
std::string admin_request(const std::string& path, const std::string& command);

}  // namespace shunt::proxy
