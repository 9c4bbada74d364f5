// The C API: thin wrappers that turn exceptions into NULL + errno.
#include <cerrno>
#include <exception>
#include <new>
#include <string>
#include <system_error>

#include "shunt/decline.hpp"
#include "shunt/lo.hpp"
#include "shunt/shunt.h"

struct shunt_stream {
    shunt::lo::Stream s;
};
struct shunt_listener {
    shunt::lo::Listener l;
};

namespace {
template <class F>
auto guarded(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::system_error& e) {
        errno = e.code().value();
    } catch (const std::bad_alloc&) {
        errno = ENOMEM;
    } catch (const std::exception&) {
        errno = EINVAL;
    }
    return nullptr;
}
}  // namespace

extern "C" {

shunt_listener* shunt_listen(const char* host, uint16_t port) {
    return guarded([&] { return new shunt_listener{shunt::lo::Listener::listen(host ? host : "", port)}; });
}
int shunt_listener_fd(const shunt_listener* l) { return l->l.fd(); }
uint16_t shunt_listener_port(const shunt_listener* l) { return l->l.port(); }
shunt_stream* shunt_accept(shunt_listener* l) {
    return guarded([&] { return new shunt_stream{l->l.accept()}; });
}
void shunt_listener_close(shunt_listener* l) { delete l; }

shunt_stream* shunt_connect(const char* host, uint16_t port) {
    return guarded([&] { return new shunt_stream{shunt::lo::Stream::connect(host, port)}; });
}
ssize_t shunt_read(shunt_stream* s, void* buf, size_t len) { return s->s.read(buf, len); }
ssize_t shunt_write(shunt_stream* s, const void* buf, size_t len) { return s->s.write(buf, len); }
ssize_t shunt_readv(shunt_stream* s, const struct iovec* iov, int n) { return s->s.readv(iov, n); }
ssize_t shunt_writev(shunt_stream* s, const struct iovec* iov, int n) { return s->s.writev(iov, n); }
int shunt_shutdown(shunt_stream* s, int how) { return s->s.shutdown(how); }
int shunt_set_nonblocking(shunt_stream* s, int on) {
    s->s.set_nonblocking(on != 0);
    return 0;
}
int shunt_poll_fd(shunt_stream* s) { return s->s.poll_fd(); }
void shunt_close(shunt_stream* s) { delete s; }
int shunt_accelerated(const shunt_stream* s) { return s->s.accelerated() ? 1 : 0; }
uint32_t shunt_fallback_reason(const shunt_stream* s) { return s->s.fallback_reason(); }

const char* shunt_decline_name(uint32_t code) {
    if (const shunt::DeclineInfo* d = shunt::find_decline(code)) return d->name.data();
    return "UNKNOWN";
}

}  // extern "C"
