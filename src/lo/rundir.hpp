#pragma once
// The rendezvous directory (docs/security.md): how two processes learn, before any byte is
// sent, that the other end of a TCP connection is a shunt endpoint on the same host.
//
//   <rundir>/gid                 the host GID (128 bits, hex), created once, atomically; every
//                                process sharing the directory (containers too) shares it, as
//                                processes on one kernel share the loopback-ism device
//   <rundir>/listen/<port>/<id>  one file per live listener: its network namespace and local
//                                addresses; the listener holds flock(LOCK_EX) on it for as long
//                                as it lives, so an entry whose lock can be taken is dead, is
//                                never trusted, and is removed by whoever notices
//   <rundir>/conn/c-<hash>       a client's announcement of its 4-tuple: a listening UNIX
//                                socket, created before the SYN and removed when the handshake
//                                ends; the server connects to it to learn that the peer speaks CLC
//
// The directory must belong to us and be closed to others (0700), or nothing is accelerated.
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "clc/builders.hpp"
#include "core/inet.hpp"
#include "core/result.hpp"
#include "core/unique_fd.hpp"

namespace shunt::lo {

// The client's view: client (local) and server (remote) endpoints of one TCP connection.
struct FourTuple {
    IpPort client;
    IpPort server;
    bool operator==(const FourTuple&) const = default;
};

// A live listener's registration; unregisters when destroyed.
class Registration {
public:
    Registration() = default;
    Registration(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)), owner_(::getpid()) {}
    Registration(Registration&&) = default;
    Registration& operator=(Registration&& o) noexcept;
    ~Registration();
    const std::string& path() const { return path_; }

private:
    void remove();
    UniqueFd fd_;
    std::string path_;
    // Only the process that registered removes the entry: a forked child (an nginx worker)
    // that closes its copy of the listening socket leaves the parent's registration alone.
    pid_t owner_ = 0;
};

// A client's announcement: a listening SOCK_SEQPACKET socket at conn/c-<hash>.
class Announcement {
public:
    Announcement() = default;
    Announcement(UniqueFd sock, std::string path) : sock_(std::move(sock)), path_(std::move(path)) {}
    Announcement(Announcement&&) = default;
    Announcement& operator=(Announcement&& o) noexcept;
    ~Announcement();
    int fd() const { return sock_.get(); }
    // Stop announcing: nobody can connect any more.
    void withdraw();

private:
    UniqueFd sock_;
    std::string path_;
};

class Rundir {
public:
    Rundir() = default;
    Rundir(Rundir&& o) noexcept : path_(std::move(o.path_)), gid_(o.gid_), known_(std::move(o.known_)) {}

    // Opens (creating if needed) the rundir: `path` if not empty, else $SHUNT_RUNDIR, else
    // /run/shunt for root, $XDG_RUNTIME_DIR/shunt, or /tmp/shunt-$UID. Error: a sentence.
    static Result<Rundir, std::string> open(const std::string& path = "");
    static std::string default_path();

    const std::string& path() const { return path_; }
    const clc::Gid128& gid() const { return gid_; }

    // Registers a listener bound to `bound` (wildcard address: all addresses of this netns).
    Result<Registration, int> register_listener(const IpPort& bound) const;
    // True if a live listener registered here accepts TCP connections to `dest` from this netns.
    bool has_live_listener(const IpPort& dest) const;

    Result<Announcement, int> announce(const FourTuple& t) const;
    // Removes what dead processes left behind: registrations whose lock is free, and
    // announcements older than any handshake can last. Returns the number removed.
    size_t sweep() const;
    // Where a client with tuple t announces itself (also used by the server to find it).
    std::string announcement_path(const FourTuple& t) const;

private:
    // Registrations seen recently, so that checking one is open+flock+close instead of a
    // directory scan. No descriptor is kept: nothing stays open between connections.
    struct KnownListener {
        uint16_t port;
        std::string path;
        std::string content;
    };
    bool known_listener_accepts(const IpPort& dest, uint64_t netns) const;

    std::string path_;
    clc::Gid128 gid_;
    mutable std::mutex known_mu_;
    mutable std::vector<KnownListener> known_;
};

// This process's network namespace (inode of /proc/self/ns/net), 0 if unknown. Read once: a
// process that changes namespace (setns) keeps the first one's registrations.
uint64_t current_netns();

}  // namespace shunt::lo
