/* One connection over shunt lo through the installed C API, built with pkg-config. */
#include <pthread.h>
#include <shunt/shunt.h>
#include <stdio.h>
#include <string.h>

static uint16_t port;
static int client_ok;

static void* client(void* arg) {
    (void)arg;
    shunt_stream* s = shunt_connect("127.0.0.1", port);
    char reply[4] = {0};
    client_ok = s && shunt_write(s, "ping", 4) == 4 && shunt_read(s, reply, 4) == 4 && memcmp(reply, "pong", 4) == 0;
    if (s) shunt_close(s);
    return NULL;
}

int main(void) {
    shunt_listener* l = shunt_listen("127.0.0.1", 0);
    if (!l) {
        perror("shunt_listen");
        return 1;
    }
    port = shunt_listener_port(l);
    pthread_t t;
    pthread_create(&t, NULL, client, NULL);
    shunt_stream* a = shunt_accept(l);
    char buf[4] = {0};
    const int server_ok = a && shunt_read(a, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0 && shunt_write(a, "pong", 4) == 4;
    pthread_join(t, NULL);
    printf("%s %s %s\n", a && shunt_accelerated(a) ? "SMCD" : "TCP", a ? shunt_decline_name(shunt_fallback_reason(a)) : "-",
           server_ok && client_ok ? "ping-pong ok" : "ping-pong FAILED");
    if (a) shunt_close(a);
    shunt_listener_close(l);
    return server_ok && client_ok ? 0 : 1;
}
