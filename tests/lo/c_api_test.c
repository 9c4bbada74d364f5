/* The C API from C: a server thread and a client over shunt lo, then a plain-TCP fallback. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shunt/shunt.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static void* serve(void* arg) {
    shunt_listener* l = arg;
    shunt_stream* s = shunt_accept(l);
    CHECK(s != NULL);
    char buf[16] = {0};
    CHECK(shunt_read(s, buf, sizeof buf) == 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK(shunt_write(s, "pong", 4) == 4);
    CHECK(shunt_read(s, buf, sizeof buf) == 0); /* EOF after the client's shutdown */
    shunt_close(s);
    return NULL;
}

int main(void) {
    shunt_listener* l = shunt_listen("127.0.0.1", 0);
    CHECK(l != NULL);
    CHECK(shunt_listener_fd(l) >= 0);
    pthread_t t;
    pthread_create(&t, NULL, serve, l);
    shunt_stream* c = shunt_connect("127.0.0.1", shunt_listener_port(l));
    CHECK(c != NULL);
    CHECK(shunt_accelerated(c) == 1);
    CHECK(shunt_fallback_reason(c) == 0);
    CHECK(shunt_write(c, "ping", 4) == 4);
    char buf[8] = {0};
    CHECK(shunt_read(c, buf, sizeof buf) == 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    CHECK(shunt_shutdown(c, SHUT_WR) == 0);
    pthread_join(t, NULL);
    CHECK(shunt_write(c, "x", 1) == -1 && errno == EPIPE);
    shunt_close(c);
    shunt_listener_close(l);

    CHECK(shunt_connect("127.0.0.1", 1) == NULL); /* nothing listens on port 1 */
    CHECK(errno == ECONNREFUSED);
    CHECK(strcmp(shunt_decline_name(0x03030007), "NOSMCD2DEV") == 0);
    CHECK(strcmp(shunt_decline_name(0x12345678), "UNKNOWN") == 0);
    puts("C API: 1 passed, 0 failed");
    return 0;
}
