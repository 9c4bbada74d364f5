// Admin socket (see admin.hpp).
#include "proxy/admin.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "core/unique_fd.hpp"

namespace shunt::proxy {

namespace {
sockaddr_un unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        throw std::system_error(ENAMETOOLONG, std::generic_category(), path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}
}  // namespace

AdminServer::AdminServer(std::string path, AdminHandler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {
    const sockaddr_un a = unix_address(path_);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    ::unlink(path_.c_str());
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0 || ::listen(fd_, 16) < 0) {
        const int e = errno;
        ::close(fd_);
        throw std::system_error(e, std::generic_category(), fmt::format("admin socket {}", path_));
    }
    struct stat st{};
    if (::stat(path_.c_str(), &st) == 0) inode_ = st.st_ino;
}

AdminServer::~AdminServer() {
    ::close(fd_);
    struct stat st{};
    if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
}

void AdminServer::run(const std::atomic<bool>& stop) {
    while (!stop.load()) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        UniqueFd c(::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) continue;
        timeval tv{1, 0};
        ::setsockopt(c.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string line;
        char buf[512];
        while (line.find('\n') == std::string::npos && line.size() < 4096) {
            const ssize_t n = ::read(c.get(), buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<size_t>(n));
        }
        if (const auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
        std::string answer;
        try {
            answer = handler_(line, c.get());
        } catch (const std::exception& e) {
            answer = fmt::format("error: {}\n", e.what());
        }
        for (size_t off = 0; off < answer.size();) {
            const ssize_t n = ::send(c.get(), answer.data() + off, answer.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<size_t>(n);
        }
    }
}

std::string admin_request(const std::string& path, const std::string& command) {
    const sockaddr_un a = unix_address(path);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0)
        throw std::system_error(errno, std::generic_category(), fmt::format("connect {}", path));
    const std::string line = command + "\n";
    if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw std::system_error(errno, std::generic_category(), "send");
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

}  // namespace shunt::proxy
