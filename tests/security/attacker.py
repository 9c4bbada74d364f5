#!/usr/bin/env python3
"""What an attacker does in the rendezvous tests (run as another user, or in another network
namespace). Every action prints one line "RESULT what" with RESULT refused (the attempt failed
as it must), got (the attempt obtained something) or error.

  attacker.py write RUNDIR                 tries to create/overwrite files in the rundir
  attacker.py plant PATH SECONDS           binds a UNIX SEQPACKET socket at PATH (an announcement
                                           for someone else's tuple), waits for a connection
                                           and reports whatever is sent to it
  attacker.py hijack PATH CPORT SPORT SECONDS [--wrong-tuple]
                                           connects to a client's announcement, sends the Hello
                                           a server would send (or a forged tuple), reports
                                           whether the client answered
  attacker.py proc PID                     tries to reach PID's shared buffers through /proc
  attacker.py forge PORT HOW               a client of PORT (run under shunt run) that, once
                                           accelerated, writes a forged producer cursor (HOW:
                                           beyond-ring, too-far-ahead, backwards) into the
                                           server's buffer it maps, and reports what it did
  attacker.py path CPORT SPORT             prints the announcement name of a 127.0.0.1 tuple
"""
import errno, os, socket, struct, sys, time


def v4mapped(ip):
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(ip)


def fnv1a(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def announcement_name(cport, sport):
    # the name is a hash of the 4-tuple as the client sees it (IPv4-mapped addresses, ports
    # in host byte order as they sit in memory)
    h = fnv1a(v4mapped("127.0.0.1"))
    h = fnv1a(struct.pack("<H", cport), h)
    h = fnv1a(v4mapped("127.0.0.1"), h)
    h = fnv1a(struct.pack("<H", sport), h)
    return "c-%016x" % h


def hello(cport, sport):
    return struct.pack(">I", 0x53484C48) + v4mapped("127.0.0.1") + struct.pack(">H", cport) + \
        v4mapped("127.0.0.1") + struct.pack(">H", sport)


def attempt(what, fn):
    try:
        r = fn()
        print(f"got {what}: {r}", flush=True)
    except OSError as e:
        print(f"refused {what}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "path":
        print(announcement_name(int(sys.argv[2]), int(sys.argv[3])))
    elif cmd == "write":
        rd = sys.argv[2]
        def create(p):
            fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, b"netns 0\naddr 127.0.0.1\n")
            os.close(fd)
            return "created " + p
        def overwrite(p):
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            os.close(fd)
            return "truncated " + p
        attempt("a registration in listen/", lambda: (os.makedirs(rd + "/listen/9", exist_ok=True), create(rd + "/listen/9/0000000000000001")))
        attempt("a file in the rundir", lambda: create(rd + "/planted"))
        attempt("overwrite gid", lambda: overwrite(rd + "/gid"))
        attempt("rename gid", lambda: os.rename(rd + "/gid", rd + "/conn/gid"))
        attempt("list conn/", lambda: os.listdir(rd + "/conn"))
        attempt("list listen/", lambda: os.listdir(rd + "/listen"))
        attempt("symlink listen/", lambda: os.symlink("/tmp", rd + "/listen/evil"))
    elif cmd == "plant":
        path, secs = sys.argv[2], float(sys.argv[3])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.bind(path)
        os.chmod(path, 0o666)
        s.listen(4)
        print("planted", flush=True)
        s.settimeout(secs)
        try:
            c, _ = s.accept()
        except socket.timeout:
            print("refused nobody connected", flush=True)
            return
        c.settimeout(2)
        try:
            data = c.recv(4096)
            print(("got %d bytes from the server" % len(data)) if data else "refused the server sent nothing (EOF)", flush=True)
        except socket.timeout:
            print("refused the server sent nothing (timeout)", flush=True)
    elif cmd == "hijack":
        path, cport, sport, secs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(secs)
        try:
            s.connect(path)
        except OSError as e:
            print(f"refused connect: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
            return
        msg = hello(cport + 1, sport) if "--wrong-tuple" in sys.argv else hello(cport, sport)
        try:
            s.send(msg)
            data = s.recv(64)
            print(("got the client's commit byte %r" % data) if data else "refused the client closed (EOF)", flush=True)
        except socket.timeout:
            print("refused no answer (timeout)", flush=True)
        except OSError as e:
            print(f"refused {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        time.sleep(0.5)
    elif cmd == "forge":
        port, how = int(sys.argv[2]), sys.argv[3]
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"HELLOWORLD")
        time.sleep(0.3)
        # The server's buffer is the shunt-dmb mapping whose ring starts with what we sent.
        mem = open("/proc/self/mem", "r+b", buffering=0)
        target = None
        for line in open("/proc/self/maps"):
            if "shunt-dmb" not in line:
                continue
            start = int(line.split("-")[0], 16)
            mem.seek(start + 4096 + 32)
            if mem.read(10) == b"HELLOWORLD":
                target = start
        if target is None:
            print("error: no accelerated buffer holding our bytes (not SMCD?)", flush=True)
            sys.exit(1)
        mem.seek(target + 12)
        dmb_size = struct.unpack("<I", mem.read(4))[0]
        ring = dmb_size - 32
        mem.seek(target + 4096 + 8)
        word = struct.unpack("<Q", mem.read(8))[0]
        wrap, count = word & 0xFFFF, (word >> 16) & 0xFFFFFFFF
        if how == "beyond-ring":
            wrap2, count2 = wrap, ring + 100
        elif how == "too-far-ahead":
            wrap2, count2 = (wrap + 2) & 0xFFFF, count
        else:
            wrap2, count2 = (wrap - 1) & 0xFFFF, count
        mem.seek(target + 4096 + 8)
        mem.write(struct.pack("<Q", (word & ~0xFFFFFFFFFFFF) | (count2 << 16) | wrap2))
        print(f"forged producer cursor {wrap}:{count} -> {wrap2}:{count2} (ring {ring})", flush=True)
        time.sleep(2)
    elif cmd == "proc":
        pid = sys.argv[2]
        attempt("list /proc/PID/fd", lambda: os.listdir(f"/proc/{pid}/fd"))
        attempt("read /proc/PID/maps", lambda: [l for l in open(f"/proc/{pid}/maps") if "shunt-dmb" in l][:1] or "no dmb mapping visible")
        attempt("open /proc/PID/mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1))
        attempt("list /proc/PID/map_files", lambda: os.listdir(f"/proc/{pid}/map_files"))
        for fd in range(3, 40):
            p = f"/proc/{pid}/fd/{fd}"
            try:
                os.close(os.open(p, os.O_RDONLY))
                print(f"got open {p}", flush=True)
            except OSError as e:
                if e.errno not in (errno.ENOENT,):
                    if fd == 3:
                        print(f"refused open /proc/PID/fd/N: {errno.errorcode.get(e.errno, e.errno)}", flush=True)


main()
