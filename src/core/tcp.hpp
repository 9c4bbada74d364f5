#pragma once
// Plain blocking TCP helpers for tools and tests. Errors throw std::system_error naming the call.
#include <cstdint>
#include <string>

#include "core/unique_fd.hpp"

namespace shunt {

UniqueFd tcp_listen(const std::string& host, uint16_t port, int backlog = 128);
UniqueFd tcp_connect(const std::string& host, uint16_t port);
UniqueFd tcp_accept(int listen_fd);
// Writes all of buf or throws.
void write_all(int fd, const void* buf, size_t len);
// Reads exactly len bytes; returns false on EOF before that.
bool read_exact(int fd, void* buf, size_t len);

}  // namespace shunt
