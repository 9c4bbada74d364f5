#!/usr/bin/env python3
"""The legitimate pair in the rendezvous attack tests: a server and a client that move a
checksummed byte stream, so a test can tell that an attack left the connection intact.

  peer.py server PORT SHAFILE [--wait-file F]   accepts one connection (after F exists), reads to
                                                EOF, writes the SHA-256 of what it read (and in
                                                SHAFILE.info the count and first bytes), replies
  peer.py pollserver PORT SHAFILE               reads its first connection in a poll loop and
                                                prints how it ended ("first: ..."), then serves
                                                one more connection as `server` does
  peer.py client PORT NBYTES [--sport P] [--hold-file F]
                                                sends NBYTES (fixed pattern) from source port P,
                                                waits for F (if given), shuts down, prints
                                                "sent SHA reply TEXT"
"""
import hashlib, os, select, socket, sys, time


def wait_file(path, secs=30):
    end = time.time() + secs
    while not os.path.exists(path):
        if time.time() > end:
            sys.exit(f"timeout waiting for {path}")
        time.sleep(0.01)


def pattern(n):
    block = hashlib.sha256(b"shunt-security").digest() * 128
    return (block * (n // len(block) + 1))[:n]


def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    print("listening", flush=True)
    return s


def serve_one(s, shafile):
    c, _ = s.accept()
    h = hashlib.sha256()
    n, head = 0, b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
        head = (head + b)[:16]
    with open(shafile + ".tmp", "w") as f:
        f.write(h.hexdigest() + "\n")
    with open(shafile + ".info", "w") as f:
        f.write(f"read {n} bytes starting {head.hex()}\n")
    os.rename(shafile + ".tmp", shafile)
    c.sendall(b"thanks")
    c.close()


def poll_one(s):
    # Each poll looks at the shared ring again, so a cursor forged meanwhile is seen.
    c, _ = s.accept()
    c.setblocking(False)
    got, end, outcome = b"", time.time() + 5, "nothing noticed in 5 s"
    while time.time() < end:
        select.select([c], [], [], 0.05)
        try:
            b = c.recv(65536)
        except BlockingIOError:
            continue
        except OSError as e:
            outcome = f"error {e.strerror}"
            break
        if not b:
            outcome = "EOF"
            break
        got += b
    print(f"first: {outcome} after {len(got)} bytes {got[:32]!r}", flush=True)
    c.close()


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    opts = sys.argv[3:]
    def opt(name):
        return opts[opts.index(name) + 1] if name in opts else None
    if mode == "server":
        s = listener(port)
        if opt("--wait-file"):
            wait_file(opt("--wait-file"))
        serve_one(s, opts[0])
    elif mode == "pollserver":
        s = listener(port)
        poll_one(s)
        serve_one(s, opts[0])
    else:
        n = int(opts[0])
        c = socket.socket()
        if opt("--sport"):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.bind(("127.0.0.1", int(opt("--sport"))))
        c.connect(("127.0.0.1", port))
        data = pattern(n)
        c.sendall(data)
        if opt("--hold-file"):
            print("holding", flush=True)
            wait_file(opt("--hold-file"), 60)
        c.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            b = c.recv(100)
            if not b:
                break
            reply += b
        print("sent", hashlib.sha256(data).hexdigest(), "reply", reply.decode(errors="replace"), flush=True)


main()
