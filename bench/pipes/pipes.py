#!/usr/bin/python3
"""bench/pipes — memory and idle CPU of N concurrent idle Barev pipes.

Inside a private netns (tests/lib/netns.py): N source addresses from
201:ffff::/96 on lo, one gateway identity alice@201:1::1, N contacts.  A
load generator opens N connections (each from its own address), sends the
Barev header, reads our header + presence, then idles.  Measured on
bl-driver: RSS with N pipes minus RSS with 0 (contacts already provisioned),
per pipe; CPU (utime+stime) over an idle window.  Reference in the same run:
the same connections against a trivial accept-and-hold server (Python), and
the kernel's TCP memory (/proc/net/sockstat) for both.

Usage: pipes.py BL_DRIVER [N] [IDLE_SECONDS]
"""
import asyncio
import ipaddress
import os
import queue
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import netns  # noqa: E402

GW = "201:1::1"
BASE = ipaddress.IPv6Address("201:ffff::1")
BATCH = 500


def addrs(n):
    return [str(BASE + i) for i in range(n)]


def add_addrs(lst):
    with tempfile.NamedTemporaryFile("w", suffix=".batch") as f:
        for a in lst:
            f.write("addr add %s/128 dev lo nodad\n" % a)
        f.flush()
        subprocess.run(["ip", "-6", "-batch", f.name], check=True)


def header(frm, to):
    return ('<?xml version="1.0" encoding="UTF-8" ?>\n<stream:stream '
            'xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" '
            'from="%s" to="%s">' % (frm, to)).encode()


def proc_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def tcp_mem_kib():
    with open("/proc/net/sockstat") as f:
        for l in f:
            if l.startswith("TCP:"):
                w = l.split()
                return int(w[w.index("mem") + 1]) * 4


async def open_pipes(srcs, want_reply):
    """connect from each source, send the header, read up to </presence>"""
    loop = asyncio.get_running_loop()
    socks = []

    async def one(i, src):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        await loop.sock_connect(s, (GW, 1337))
        await loop.sock_sendall(s, header("p%d@%s" % (i, src), "alice@" + GW))
        if want_reply:
            data = b""
            while b"</presence>" not in data:
                chunk = await loop.sock_recv(s, 4096)
                if not chunk:
                    raise ConnectionError("closed by the gateway (pipe %d)" % i)
                data += chunk
        socks.append(s)

    for b in range(0, len(srcs), BATCH):
        await asyncio.wait_for(asyncio.gather(*(one(b + i, a) for i, a in
                                                enumerate(srcs[b:b + BATCH]))), 60)
    return socks


class Drv:
    """bl-driver with a thread draining its stdout (events for 10k pipes
    would otherwise fill the pipe and block the driver)"""
    def __init__(self, exe):
        self.p = subprocess.Popen([exe, "--log-level", "warn"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.replies = queue.Queue()
        self.events = 0
        threading.Thread(target=self._drain, daemon=True).start()
        assert self.replies.get(timeout=10) == "ready"

    def _drain(self):
        for l in self.p.stdout:
            if l.startswith(("ok ", "err ", "ready")):
                self.replies.put(l.strip())
            else:
                self.events += 1
        self.replies.put(None)

    def _reply(self, line):
        r = self.replies.get(timeout=60)
        if r is None or r.startswith("err "):
            raise RuntimeError("%s -> %s" % (line, r))
        return r

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self._reply(line)

    def many(self, lines):
        self.p.stdin.write("".join(l + "\n" for l in lines))
        self.p.stdin.flush()
        for l in lines:
            self._reply(l)

    def stats(self):
        return dict(w.split("=") for w in self.cmd("stats").split()[2:])

    def quit(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait(30)


def hold_server():
    """the reference: accept and hold, nothing else"""
    code = r'''
import selectors, socket, sys
ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], 1337)); ls.listen(4096); ls.setblocking(False)
sel = selectors.DefaultSelector(); sel.register(ls, selectors.EVENT_READ)
held = []
print("ready", flush=True)
while True:
    for k, _ in sel.select():
        while True:
            try:
                c, _ = ls.accept()
            except BlockingIOError:
                break
            held.append(c)
'''
    p = subprocess.Popen([sys.executable, "-c", code, GW], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def main():
    exe = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    idle = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    netns.enter([GW])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < n + 100:
        sys.exit("RLIMIT_NOFILE hard limit %d is too low for %d pipes" % (hard, n))
    srcs = addrs(n)
    t = time.monotonic()
    add_addrs(srcs)
    print("added %d addresses in %.1fs" % (n, time.monotonic() - t))

    # reference: accept-and-hold
    hs = hold_server()
    k0, r0 = tcp_mem_kib(), proc_rss(hs.pid)
    socks = asyncio.run(open_pipes(srcs, False))
    k1, r1 = tcp_mem_kib(), proc_rss(hs.pid)
    for s in socks:
        s.close()
    hs.kill()
    hs.wait()
    ref_rss = (r1 - r0) * 1024 / n
    ref_kern = (k1 - k0) * 1024 / n

    d = Drv(exe)
    d.cmd("ident 1 alice %s 0" % GW)
    d.many(["contact 1 %d p%d %s 0" % (i + 10, i, a) for i, a in enumerate(srcs)])
    d.cmd("rss")
    rss0 = int(d.cmd("rss").split()[2])
    k0 = tcp_mem_kib()
    t = time.monotonic()
    socks = asyncio.run(open_pipes(srcs, True))
    setup = time.monotonic() - t
    st = d.stats()
    assert int(st["pipes_up"]) == n, st
    rss1 = int(d.cmd("rss").split()[2])
    k1 = tcp_mem_kib()
    c0 = proc_cpu(d.p.pid)
    time.sleep(idle)                    # the measured idle window
    c1 = proc_cpu(d.p.pid)
    rss2 = int(d.cmd("rss").split()[2])
    for s in socks:
        s.close()
    d.quit()

    per = (rss1 - rss0) * 1024 / n
    print()
    print("pipes                   %d (up in %.1fs)" % (n, setup))
    print("driver RSS              %d KiB with 0 pipes, %d KiB with %d (%d after idle)"
          % (rss0, rss1, n, rss2))
    print("driver RSS per pipe     %.0f bytes (%.2f KiB)  [target <= 12 KiB]" % (per, per / 1024))
    print("kernel TCP buffers      %+d KiB for all %d pipes (/proc/net/sockstat;"
          " idle pipes hold no unread data)" % (k1 - k0, n))
    print("idle CPU                %.3f s over %.0f s (%.2f%%)"
          % (c1 - c0, idle, 100 * (c1 - c0) / idle))
    print("reference accept-and-hold (Python, never reads): RSS %.0f bytes/conn,"
          " kernel TCP buffers %.0f bytes/conn (the unread headers)" % (ref_rss, ref_kern))


if __name__ == "__main__":
    main()
