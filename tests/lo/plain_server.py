#!/usr/bin/env python3
"""A plain TCP server for fallback tests: accepts one connection on HOST:PORT, stores every byte
it receives in OUT, and optionally answers REPLY after the client's EOF."""
import socket
import sys

host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
reply = sys.argv[4].encode() if len(sys.argv) > 4 else b""
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(1)
c, _ = s.accept()
data = b""
while True:
    b = c.recv(65536)
    if not b:
        break
    data += b
open(out, "wb").write(data)
c.sendall(reply)
c.close()
