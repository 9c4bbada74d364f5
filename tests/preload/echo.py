#!/usr/bin/env python3
"""asyncio echo server and client for the `shunt run` tests (an unmodified Python program).

  echo.py server HOST PORT                  echoes every connection until EOF
  echo.py client HOST PORT BYTES [--hold S] [--stream]
      sends BYTES random bytes while reading the echo, checks that the echo is the same bytes
      (sha256), prints "echoed N bytes ok sha256=..", then keeps the connection open S seconds
      (so `shunt stat` can look at it) and closes. --stream keeps sending until killed or until
      the connection fails; then prints "ended: <error>" and holds S seconds before exiting.
"""
import asyncio
import hashlib
import os
import sys


async def serve(host, port):
    async def echo(reader, writer):
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, host, port)
    print("listening", ", ".join(str(s.getsockname()) for s in server.sockets), flush=True)
    async with server:
        await server.serve_forever()


async def client(host, port, total, hold, stream):
    reader, writer = await asyncio.open_connection(host, port)
    print("connected", writer.get_extra_info("sockname"), "->", writer.get_extra_info("peername"), flush=True)
    sent, got = hashlib.sha256(), hashlib.sha256()
    received = 0
    counts = {"sent": 0}

    async def send():
        while stream or counts["sent"] < total:
            chunk = os.urandom(1 << 16 if stream else min(1 << 16, total - counts["sent"]))
            sent.update(chunk)
            writer.write(chunk)
            await writer.drain()
            counts["sent"] += len(chunk)

    async def receive():
        nonlocal received
        while stream or received < total:
            data = await reader.read(1 << 16)
            if not data:
                raise ConnectionError("eof")
            got.update(data)
            received += len(data)

    try:
        await asyncio.gather(send(), receive())
    except (ConnectionError, OSError) as e:
        print(f"ended: {type(e).__name__} {e} after {received} bytes", flush=True)
        writer.close()  # the socket is closed; what it used must be gone while we live on
        await asyncio.sleep(hold)
        return 0 if stream else 1
    if sent.digest() != got.digest():
        print(f"MISMATCH: sent {counts['sent']} bytes sha256={sent.hexdigest()}, got {received} sha256={got.hexdigest()}")
        return 1
    print(f"echoed {received} bytes ok sha256={got.hexdigest()}", flush=True)
    await asyncio.sleep(hold)
    writer.write_eof()
    rest = await reader.read()
    writer.close()
    if rest:
        print(f"unexpected {len(rest)} bytes after the echo")
        return 1
    print("closed", flush=True)
    return 0


def main():
    role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if role == "server":
        asyncio.run(serve(host, port))
        return 0
    total = int(sys.argv[4])
    hold = float(sys.argv[sys.argv.index("--hold") + 1]) if "--hold" in sys.argv else 0.0
    return asyncio.run(client(host, port, total, hold, "--stream" in sys.argv))


if __name__ == "__main__":
    sys.exit(main())
