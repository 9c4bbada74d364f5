"""Kernel socket semantics that a program relies on, checked plain and under `shunt run`:
a signal handler runs while the main thread blocks in sendall() (the call returns EINTR to
Python, which runs the handler and goes on), SO_RCVTIMEO ends a blocking recv() with EAGAIN,
urgent data (MSG_OOB) arrives beside the stream, and a process that connects to its own
listener from the thread that will accept is not kept waiting.

  semantics.py server PORT DIR     (DIR: files the two sides and the test script meet on)
  semantics.py client PORT DIR
  semantics.py selfconnect
"""
import hashlib
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

BIG = 16 << 20


def wait_file(path, secs=20):
    end = time.monotonic() + secs
    while not os.path.exists(path):
        if time.monotonic() > end:
            sys.exit(f"FAIL: {path} never appeared")
        time.sleep(0.005)


def recv_exact(conn, n):
    out = bytearray()
    while len(out) < n:
        b = conn.recv(n - len(out))
        if not b:
            sys.exit(f"FAIL: EOF after {len(out)} of {n} bytes")
        out += b
    return bytes(out)


def payload():
    return bytes((i * 7 + (i >> 11)) & 0xFF for i in range(1 << 16)) * (BIG >> 16)


def server(port, d):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("listening", flush=True)
    conn, _ = ls.accept()

    # 1. A signal while sendall() blocks: the handler must run before the peer reads.
    ran = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: ran.set())
    main = threading.get_ident()

    def poke():
        end = time.monotonic() + 15
        while not ran.is_set() and time.monotonic() < end:
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.005)
        if ran.is_set():
            open(os.path.join(d, "handler_ran"), "w").close()

    threading.Thread(target=poke, daemon=True).start()
    conn.sendall(payload())
    if not ran.is_set():
        sys.exit("FAIL: the signal handler never ran while sendall() blocked")
    print("sendall: the handler ran while it blocked", flush=True)
    # A dup2 that fails (a descriptor that is not open) leaves the connection as it was.
    spare = os.open("/dev/null", os.O_RDONLY)
    os.close(spare)
    try:
        os.dup2(spare, conn.fileno())
        sys.exit("FAIL: dup2 of a closed descriptor succeeded")
    except OSError:
        pass
    if recv_exact(conn, 3) != b"ok1":
        sys.exit("FAIL: the client did not confirm the payload")
    print("hold", flush=True)
    wait_file(os.path.join(d, "checked"))

    # 2. SO_RCVTIMEO: a blocking recv() gives up with EAGAIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", 0, 300000))
    t0 = time.monotonic()
    try:
        conn.recv(10)
        sys.exit("FAIL: recv() returned although nothing was sent")
    except BlockingIOError:
        took = time.monotonic() - t0
    if not 0.25 <= took <= 5:
        sys.exit(f"FAIL: SO_RCVTIMEO of 0.3 s ended recv() after {took:.3f} s")
    print(f"SO_RCVTIMEO: EAGAIN after {took:.2f} s", flush=True)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, bytes(16))

    # 3. A forked child writes, then reads, and exits; the parent goes on where it stopped.
    pid = os.fork()
    if pid == 0:
        conn.sendall(b"child-wrote|")
        os._exit(0)
    os.waitpid(pid, 0)
    conn.sendall(b"parent-wrote|")
    pid = os.fork()
    if pid == 0:
        os._exit(0 if recv_exact(conn, 5) == b"01234" else 1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit("FAIL: the forked child read the wrong bytes")
    got = recv_exact(conn, 5)
    if got != b"56789":
        sys.exit(f"FAIL: after the child read, the parent read {got!r}")
    print("fork: child and parent took turns writing and reading", flush=True)
    conn.sendall(b"go2")

    # 4. Urgent data beside the stream: read up to the urgent mark, the urgent byte, the rest
    # (reading past the mark first would drop the urgent byte, on TCP as anywhere).
    got = recv_exact(conn, 3)
    if got != b"abc":
        sys.exit(f"FAIL: the stream before urgent data read {got!r}")
    end = time.monotonic() + 10
    while True:
        try:
            oob = conn.recv(1, socket.MSG_OOB)
            break
        except OSError:
            if time.monotonic() > end:
                sys.exit("FAIL: no urgent byte arrived")
            select.select([], [], [conn], 0.05)
    if oob != b"!":
        sys.exit(f"FAIL: urgent byte {oob!r}")
    got = recv_exact(conn, 3)
    if got != b"def":
        sys.exit(f"FAIL: the stream after urgent data read {got!r}")
    print("MSG_OOB: stream abcdef, urgent '!'", flush=True)
    conn.sendall(b"bye")
    conn.close()


def client(port, d):
    c = socket.create_connection(("127.0.0.1", port))
    wait_file(os.path.join(d, "handler_ran"))
    got = recv_exact(c, BIG)
    if hashlib.sha256(got).digest() != hashlib.sha256(payload()).digest():
        sys.exit("FAIL: the payload differs")
    c.sendall(b"ok1")
    got = recv_exact(c, len(b"child-wrote|parent-wrote|"))
    if got != b"child-wrote|parent-wrote|":
        sys.exit(f"FAIL: a forked child's bytes and then its parent's: {got!r}")
    c.sendall(b"0123456789")
    if recv_exact(c, 3) != b"go2":
        sys.exit("FAIL: no go2")
    c.send(b"abc")
    c.send(b"!", socket.MSG_OOB)
    c.send(b"def")
    if recv_exact(c, 3) != b"bye":
        sys.exit("FAIL: no bye")
    print("client done", flush=True)


def selfconnect():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    t0 = time.monotonic()
    c = socket.create_connection(ls.getsockname())
    s, _ = ls.accept()
    c.sendall(b"x")
    s.sendall(recv_exact(s, 1) + b"y")
    if recv_exact(c, 2) != b"xy":
        sys.exit("FAIL: self-connection data")
    took = time.monotonic() - t0
    if took > 2:
        sys.exit(f"FAIL: connecting to our own listener took {took:.2f} s")
    print(f"selfconnect ok in {took * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "client":
        client(int(sys.argv[2]), sys.argv[3])
    else:
        selfconnect()
