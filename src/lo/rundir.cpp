#include "lo/rundir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/random.hpp"

namespace shunt::lo {
namespace {

// Our directory with exactly `mode`. The rundir itself is 0711 and conn/ 01733 (sticky) so
// that a server which dropped privileges (an nginx worker running as nobody) can still reach
// a client's announcement; listen/ stays 0700. Who may then speak is decided by credentials
// and proof of holding the connection (handshake.cpp), not by the directory.
Result<bool, std::string> ensure_dir(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST)
        return Unexpected{fmt::format("cannot create {}: {}", path, std::strerror(errno))};
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) return Unexpected{fmt::format("{}: {}", path, std::strerror(errno))};
    if (!S_ISDIR(st.st_mode)) return Unexpected{fmt::format("{} is not a directory", path)};
    if (st.st_uid != ::geteuid())
        return Unexpected{fmt::format("{} belongs to uid {}, not to us ({})", path, st.st_uid, ::geteuid())};
    if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) < 0)
        return Unexpected{fmt::format("cannot set mode {:o} on {}: {}", mode, path, std::strerror(errno))};
    return true;
}

std::optional<clc::Gid128> parse_gid(const std::string& text) {
    if (text.size() < 32) return std::nullopt;
    clc::Gid128 g;
    for (size_t i = 0; i < 32; ++i) {
        const char c = text[i];
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else return std::nullopt;
        uint64_t& half = i < 16 ? g.hi : g.lo;
        half = half << 4 | static_cast<uint64_t>(v);
    }
    return g;
}

Result<clc::Gid128, std::string> load_or_create_gid(const std::string& dir) {
    const std::string path = dir + "/gid";
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::ifstream in(path);
        if (in) {
            std::string text;
            std::getline(in, text);
            if (auto g = parse_gid(text)) return *g;
            return Unexpected{fmt::format("{} is corrupt", path)};
        }
        // Write the whole file under a private name, then link it into place: readers see
        // either no GID or a complete one, and of two racing creators exactly one wins.
        const std::string tmp = fmt::format("{}/.gid.{:016x}", dir, random_u64());
        {
            std::ofstream out(tmp);
            out << fmt::format("{:016x}{:016x}\n", random_u64(), random_u64());
            if (!out.flush()) return Unexpected{fmt::format("cannot write {}", tmp)};
        }
        const int rc = ::link(tmp.c_str(), path.c_str());
        const int err = errno;
        ::unlink(tmp.c_str());
        if (rc < 0 && err != EEXIST) return Unexpected{fmt::format("cannot create {}: {}", path, std::strerror(err))};
    }
    return Unexpected{fmt::format("cannot read {}", path)};
}

uint64_t fnv1a(const void* data, size_t len, uint64_t h = 0xcbf29ce484222325ULL) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < len; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

// Addresses a connection from this netns to a wildcard listener here may use.
std::vector<std::string> local_addresses() {
    std::vector<std::string> out;
    ifaddrs* ifa = nullptr;
    if (::getifaddrs(&ifa) < 0) return out;
    for (ifaddrs* i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        if (auto ep = IpPort::from_sockaddr(i->ifa_addr)) out.push_back(ep->ip_string());
    }
    ::freeifaddrs(ifa);
    return out;
}

bool entry_accepts(const std::string& content, const IpPort& dest, uint64_t netns) {
    std::istringstream in(content);
    std::string key, value;
    bool same_netns = false, addr_match = false;
    while (in >> key >> value) {
        if (key == "netns") same_netns = std::strtoull(value.c_str(), nullptr, 10) == netns;
        else if (key == "addr") {
            auto a = IpPort::parse(value, dest.port);
            addr_match = addr_match || (a && a->addr == dest.addr);
        }
    }
    // Loopback addresses only reach a listener in our own network namespace.
    return addr_match && (!dest.is_loopback() || same_netns);
}

}  // namespace

uint64_t current_netns() {
    static const uint64_t netns = [] {
        struct stat st {};
        return ::stat("/proc/self/ns/net", &st) < 0 ? uint64_t{0} : uint64_t{st.st_ino};
    }();
    return netns;
}

std::string Rundir::default_path() {
    if (const char* p = std::getenv("SHUNT_RUNDIR"); p && *p) return p;
    if (::geteuid() == 0) return "/run/shunt";
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/shunt";
    return fmt::format("/tmp/shunt-{}", ::geteuid());
}

Result<Rundir, std::string> Rundir::open(const std::string& path) {
    Rundir r;
    r.path_ = path.empty() ? default_path() : path;
    for (auto [d, mode] : {std::pair{r.path_, mode_t{0711}}, std::pair{r.path_ + "/listen", mode_t{0700}},
                           std::pair{r.path_ + "/conn", mode_t{01733}}}) {
        auto ok = ensure_dir(d, mode);
        if (!ok) return Unexpected{ok.error()};
    }
    // A UNIX socket path must fit in sun_path.
    if (r.announcement_path({}).size() >= sizeof(sockaddr_un::sun_path))
        return Unexpected{fmt::format("rundir path {} is too long for UNIX sockets", r.path_)};
    auto gid = load_or_create_gid(r.path_);
    if (!gid) return Unexpected{gid.error()};
    r.gid_ = *gid;
    return r;
}

Result<Registration, int> Rundir::register_listener(const IpPort& bound) const {
    const std::string dir = fmt::format("{}/listen/{}", path_, bound.port);
    std::string content = fmt::format("netns {}\n", current_netns());
    if (bound.is_wildcard()) {
        for (const std::string& a : local_addresses())
            if (bound.is_v4() == IpPort::parse(a, 0)->is_v4() || !bound.is_v4()) content += fmt::format("addr {}\n", a);
    } else {
        content += fmt::format("addr {}\n", bound.ip_string());
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) return Unexpected{errno};
        // Lock under a private name, then rename into place: an entry that is visible is
        // either locked by a live listener or dead.
        const uint64_t id = random_u64();
        const std::string tmp = fmt::format("{}/.new-{:016x}", dir, id);
        UniqueFd fd(::open(tmp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
        if (!fd) {
            if (errno == ENOENT) continue;  // the port directory was just removed; retry
            return Unexpected{errno};
        }
        if (::flock(fd.get(), LOCK_EX) < 0 || ::write(fd.get(), content.data(), content.size()) < 0) {
            const int err = errno;
            ::unlink(tmp.c_str());
            return Unexpected{err};
        }
        const std::string final_path = fmt::format("{}/{:016x}", dir, id);
        if (::rename(tmp.c_str(), final_path.c_str()) < 0) {
            const int err = errno;
            ::unlink(tmp.c_str());
            return Unexpected{err};
        }
        return Registration(std::move(fd), final_path);
    }
    return Unexpected{ENOENT};
}

bool Rundir::known_listener_accepts(const IpPort& dest, uint64_t netns) const {
    std::lock_guard lock(known_mu_);
    for (auto it = known_.begin(); it != known_.end();) {
        if (it->port != dest.port || !entry_accepts(it->content, dest, netns)) {
            ++it;
            continue;
        }
        UniqueFd fd(::open(it->path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd && ::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) return true;  // locked: alive
        if (fd) ::unlink(it->path.c_str());  // its listener is gone
        it = known_.erase(it);
    }
    return false;
}

bool Rundir::has_live_listener(const IpPort& dest) const {
    const uint64_t netns = current_netns();
    if (known_listener_accepts(dest, netns)) return true;
    const std::string dir = fmt::format("{}/listen/{}", path_, dest.port);
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool found = false;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const std::string path = dir + "/" + e->d_name;
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) continue;
        if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
            ::unlink(path.c_str());  // its listener is gone
            continue;
        }
        char buf[4096];
        const ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::string content(buf, static_cast<size_t>(n));
        found = found || entry_accepts(content, dest, netns);
        std::lock_guard lock(known_mu_);
        const bool known = std::any_of(known_.begin(), known_.end(), [&](const KnownListener& k) { return k.path == path; });
        if (!known) {
            constexpr size_t kMaxKnown = 64;
            if (known_.size() >= kMaxKnown) known_.erase(known_.begin());
            known_.push_back({dest.port, path, std::move(content)});
        }
    }
    ::closedir(d);
    return found;
}

size_t Rundir::sweep() const {
    namespace fs = std::filesystem;
    size_t removed = 0;
    std::error_code ec;
    for (const auto& port : fs::directory_iterator(path_ + "/listen", ec)) {
        for (const auto& entry : fs::directory_iterator(port.path(), ec)) {
            UniqueFd fd(::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC));
            if (fd && ::flock(fd.get(), LOCK_SH | LOCK_NB) == 0 && ::unlink(entry.path().c_str()) == 0) ++removed;
        }
        ::rmdir(port.path().c_str());
    }
    // A handshake lasts at most its CLC timeout; an announcement a minute old is orphaned.
    const auto cutoff = fs::file_time_type::clock::now() - std::chrono::seconds(60);
    for (const auto& entry : fs::directory_iterator(path_ + "/conn", ec)) {
        if (entry.last_write_time(ec) < cutoff && ::unlink(entry.path().c_str()) == 0) ++removed;
    }
    return removed;
}

std::string Rundir::announcement_path(const FourTuple& t) const {
    uint64_t h = fnv1a(t.client.addr.data(), 16);
    h = fnv1a(&t.client.port, 2, h);
    h = fnv1a(t.server.addr.data(), 16, h);
    h = fnv1a(&t.server.port, 2, h);
    return fmt::format("{}/conn/c-{:016x}", path_, h);
}

Result<Announcement, int> Rundir::announce(const FourTuple& t) const {
    const std::string path = announcement_path(t);
    UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) return Unexpected{errno};
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
            // Any user may connect (a server that dropped privileges); the handshake checks who.
            if (::chmod(path.c_str(), 0666) < 0 || ::listen(sock.get(), 4) < 0) {
                const int err = errno;
                ::unlink(path.c_str());
                return Unexpected{err};
            }
            return Announcement(std::move(sock), path);
        }
        // A 4-tuple is unique while the connection lives, so an existing entry is a leftover
        // of a client that died mid-handshake.
        if (errno != EADDRINUSE) return Unexpected{errno};
        ::unlink(path.c_str());
    }
    return Unexpected{EADDRINUSE};
}

Registration& Registration::operator=(Registration&& o) noexcept {
    if (this != &o) {
        remove();
        fd_ = std::move(o.fd_);
        path_ = std::move(o.path_);
        owner_ = o.owner_;
    }
    return *this;
}
Registration::~Registration() { remove(); }
void Registration::remove() {
    if (!fd_) return;
    if (owner_ != ::getpid()) {
        fd_.reset();
        return;
    }
    ::unlink(path_.c_str());
    const std::string dir = path_.substr(0, path_.rfind('/'));
    ::rmdir(dir.c_str());  // fails harmlessly while other listeners use the port
    fd_.reset();
}

Announcement& Announcement::operator=(Announcement&& o) noexcept {
    if (this != &o) {
        withdraw();
        sock_ = std::move(o.sock_);
        path_ = std::move(o.path_);
    }
    return *this;
}
Announcement::~Announcement() { withdraw(); }
void Announcement::withdraw() {
    if (!sock_) return;
    ::unlink(path_.c_str());
    sock_.reset();
}

}  // namespace shunt::lo
