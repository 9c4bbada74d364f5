/* shunt C API: the lo transport for C and for other languages' FFI.
 *
 * Functions that create something return NULL and set errno on failure; the I/O functions
 * behave like their socket counterparts (-1 and errno: EAGAIN, EPIPE, ECONNRESET, ...).
 * Options come from the environment (SHUNT_BUFFER_SIZE, SHUNT_SPIN_US, SHUNT_RUNDIR, ...). */
#ifndef SHUNT_SHUNT_H
#define SHUNT_SHUNT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shunt_stream shunt_stream;
typedef struct shunt_listener shunt_listener;

shunt_listener* shunt_listen(const char* host, uint16_t port);
int shunt_listener_fd(const shunt_listener* l);
uint16_t shunt_listener_port(const shunt_listener* l);
shunt_stream* shunt_accept(shunt_listener* l);
void shunt_listener_close(shunt_listener* l);

shunt_stream* shunt_connect(const char* host, uint16_t port);
ssize_t shunt_read(shunt_stream* s, void* buf, size_t len);
ssize_t shunt_write(shunt_stream* s, const void* buf, size_t len);
ssize_t shunt_readv(shunt_stream* s, const struct iovec* iov, int iovcnt);
ssize_t shunt_writev(shunt_stream* s, const struct iovec* iov, int iovcnt);
int shunt_shutdown(shunt_stream* s, int how);
int shunt_set_nonblocking(shunt_stream* s, int on);
int shunt_poll_fd(shunt_stream* s);
void shunt_close(shunt_stream* s);

/* 1 if the stream runs over shared memory (SMC-D), 0 if it fell back to TCP. */
int shunt_accelerated(const shunt_stream* s);
/* The SMC DECL code for a fallback, 0 when accelerated; shunt_decline_name names it. */
uint32_t shunt_fallback_reason(const shunt_stream* s);
const char* shunt_decline_name(uint32_t code);

#ifdef __cplusplus
}
#endif

#endif /* SHUNT_SHUNT_H */
