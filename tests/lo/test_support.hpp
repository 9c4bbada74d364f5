#pragma once
// Helpers for lo tests: a private rundir per test and a client/server pair over loopback.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <string>

#include "shunt/lo.hpp"

namespace shunt::test {

class TempRundir {
public:
    TempRundir() {
        char tmpl[] = "/tmp/shunt-test-XXXXXX";
        path_ = ::mkdtemp(tmpl);
        std::filesystem::permissions(path_, std::filesystem::perms::owner_all);
    }
    ~TempRundir() { std::filesystem::remove_all(path_); }
    const std::string& path() const { return path_; }
    // Files left in the rundir apart from the GID and empty directories.
    size_t leftover_entries() const {
        size_t n = 0;
        for (auto& e : std::filesystem::recursive_directory_iterator(path_))
            if (!e.is_directory() && e.path().filename() != "gid") ++n;
        return n;
    }

private:
    std::string path_;
};

struct Pair {
    lo::Stream client, server;
};

inline Pair connect_pair(const lo::Options& server_opt, const lo::Options& client_opt) {
    auto listener = lo::Listener::listen("127.0.0.1", 0, server_opt);
    auto accepted = std::async(std::launch::async, [&] { return listener.accept(); });
    Pair p;
    p.client = lo::Stream::connect("127.0.0.1", listener.port(), client_opt);
    p.server = accepted.get();
    return p;
}

// Deterministic bytes for stream `seed` at offset `pos`.
inline uint8_t pattern(uint64_t seed, uint64_t pos) {
    uint64_t x = (pos >> 3) * 0x9E3779B97F4A7C15ULL ^ seed;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ULL;
    return static_cast<uint8_t>(x >> (8 * (pos & 7)));
}

inline lo::Options options_for(const TempRundir& r) {
    lo::Options o;
    o.rundir = r.path();
    o.buffer_size = 64 * 1024;
    return o;
}

}  // namespace shunt::test
