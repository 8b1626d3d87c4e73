"""bench/relay: Barev -> spool -> XEP-0363 upload throughput of the gateway.

A Barev peer (bob, purple-style SI/SOCKS5, streaming the file from disk with
sendfile) sends files of the given sizes to alice through a release build
of the gateway and a private Prosody with mod_http_file_share.  For each
size we time: offer -> last byte written by bob (receive phase) and offer ->
the link message at alice (whole relay: receive + upload).  The baseline is
a plain loopback TCP copy of the same file into a file, in the same run.
Peak RSS (VmHWM) of the gateway is read after each size: flat memory means
it does not grow with the file.  A second line per size says when the sink
had the last byte and the CPU seconds each side used (the gateway; this
process, which is bob, the sink and alice; the whole machine, which on a
shared box includes whatever else runs), with the 1-minute load average.

    /usr/bin/python3 bench/relay/relay.py [--prosody-http] SIZE_MIB [SIZE_MIB ...]

By default the PUT goes to a fast sink in this script (Prosody still hands
out the slots, with http_file_share_base_url pointing at the sink), because
Prosody's own HTTP upload path is the slowest part whoever uploads (2.5 to
~21 MiB/s on this kind of box, depending on the setup): with it, the
benchmark would measure Prosody.  --prosody-http measures the real end-to-end path.
Needs root (a private network namespace, like the integration tests).
"""
import asyncio
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "barevpeer"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client     # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import contact_jid, seed_identity, subscribe  # noqa: E402

ALICE_ADDR, BOB_ADDR = "201:1::1", "201:2::2"
BOB = contact_jid("bob", BOB_ADDR)
MIB = 1024 * 1024


def make_file(path, size):
    chunk = os.urandom(MIB)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, MIB)
            f.write(chunk[:n])
            left -= n


def tcp_copy(src_path, dst_path, size):
    """Baseline: loopback TCP, sendfile on one side, recv_into+write to a
    file on the other.  Returns seconds."""
    ls = socket.socket(socket.AF_INET6)
    ls.bind(("::1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    done = {}

    def receiver():
        c, _ = ls.accept()
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        got = 0
        with open(dst_path, "wb") as f:
            while got < size:
                n = c.recv_into(mv)
                if not n:
                    break
                f.write(mv[:n])
                got += n
        done["got"] = got
        c.close()

    t = threading.Thread(target=receiver)
    t.start()
    t0 = time.monotonic()
    s = socket.create_connection(("::1", port))
    with open(src_path, "rb") as f:
        s.sendfile(f)
    s.shutdown(socket.SHUT_WR)
    t.join()
    dt = time.monotonic() - t0
    s.close()
    ls.close()
    os.unlink(dst_path)
    assert done["got"] == size
    return dt


async def send_file_from_disk(session, path, size, sid):
    """purple-style SI offer + streamhost + SOCKS5 server, file via sendfile."""
    loop = asyncio.get_running_loop()
    rtype, conn = await session.open_file_stream(os.path.basename(path), size, sid,
                                                 timeout=30)
    assert rtype == "result", "offer declined"
    with open(path, "rb") as f:
        await loop.sock_sendfile(conn, f)
    return conn


class Sink:
    """A fast HTTP PUT sink standing in for the upload service's HTTP side
    (Prosody still issues the XEP-0363 slots; its base URL points here):
    reads the body with recv_into and writes it to a file, like a real
    upload service, then answers 201."""

    def __init__(self, path):
        self.path = path
        self.ls = socket.socket(socket.AF_INET6)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("::1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.received = []
        self.done_at = None
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        head, rest = head.split(b"\r\n\r\n", 1)
        size = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                size = int(v)
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        got = len(rest)
        with open(self.path, "wb") as f:
            f.write(rest)
            while got < size:
                n = c.recv_into(mv)
                if not n:
                    break
                f.write(mv[:n])
                got += n
        self.done_at = time.monotonic()
        self.received.append(got)
        # the file stays, as with a real upload service; main() removes it
        # once the clock has stopped, as tcp_copy() does with its copy
        c.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()

    def close(self):
        self.ls.close()


def cpu_of(pid):
    """user+system CPU seconds of a process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_busy():
    """CPU seconds all CPUs spent not idle (softirq and kworkers included)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])      # kB
    return -1


async def main(sizes, use_sink):
    tmp = harness.tmpdir("bench")
    biggest = max(sizes) * MIB
    upload = {"http_file_share_size_limit": biggest + MIB,
              "http_file_share_daily_quota": biggest * 10}
    sink = None
    if use_sink:
        sink = Sink(os.path.join(tmp, "uploaded.bin"))
        upload["http_file_share_base_url"] = '"http://[::1]:%d/"' % sink.port
    p = Prosody(harness.tmpdir("prosody"), log_level="info", bench_upload=upload)
    p.start()
    print("upload HTTP side: %s" % ("bench sink (Prosody issues the slots)" if use_sink
                                    else "Prosody mod_http_file_share"))
    p.create_user("alice", "alice")
    gw = Gateway(p, harness.tmpdir("gw"), config={
        "max_file_size": "%dM" % (max(sizes) + 1), "spool_quota": "%dM" % (max(sizes) + 1),
        "log_level": "info"})
    gw.start()
    await gw.wait_up()
    gw.stop()
    seed_identity(gw, "alice@example.org", "alice", ALICE_ADDR)
    gw.start()
    await gw.wait_up()
    bob = bp.Peer("bob", BOB_ADDR, profile="purple")
    bob.add_buddy("alice", ALICE_ADDR)
    await bob.start()
    alice = Client("alice@example.org", "alice", p)
    await alice.connect_and_wait()
    await subscribe(alice, BOB)
    s = await bob.wait_session("alice", timeout=15)
    print("gateway idle: VmRSS %d kB, VmHWM %d kB" % (vm(gw.pid, "VmRSS"), vm(gw.pid, "VmHWM")))
    rows = []
    for i, mib in enumerate(sizes):
        size = mib * MIB
        src = os.path.join(tmp, "file-%d.bin" % mib)
        make_file(src, size)
        c0, b0 = cpu_of(os.getpid()), cpu_busy()
        base = tcp_copy(src, os.path.join(tmp, "copy.bin"), size)
        c_base, b_base = cpu_of(os.getpid()) - c0, cpu_busy() - b0
        c0, g0, b0 = cpu_of(os.getpid()), cpu_of(gw.pid), cpu_busy()
        alice.mark()
        if sink:
            sink.done_at = None
        t0 = time.monotonic()
        conn = await send_file_from_disk(s, src, size, "bench-%d" % i)
        t_recv = time.monotonic() - t0
        m = await alice.wait_message(lambda m: (m["body"] or "").startswith("http"),
                                     timeout=600, what="the link")
        t_all = time.monotonic() - t0
        c_rel, g_rel, b_rel = cpu_of(os.getpid()) - c0, cpu_of(gw.pid) - g0, cpu_busy() - b0
        conn.close()
        if sink and os.path.exists(sink.path):
            os.unlink(sink.path)
        hwm = vm(gw.pid, "VmHWM")
        os.unlink(src)
        rows.append((mib, base, t_recv, t_all, hwm))
        print("%5d MiB: tcp copy %.2fs (%.0f MiB/s) | bob->spool %.2fs (%.0f MiB/s) |"
              " bob->spool->upload %.2fs (%.0f MiB/s) | ratio %.2f | gateway VmHWM %d kB"
              % (mib, base, mib / base, t_recv, mib / t_recv, t_all, mib / t_all,
                 base / t_all, hwm), flush=True)
        t_sink = sink.done_at - t0 if sink and sink.done_at else float("nan")
        print("           sink has the last byte at %.2fs | CPU s: tcp copy %.2f |"
              " relay: gateway %.2f, bob+sink+alice %.2f | whole machine: %.2f, %.2f |"
              " load %.1f" % (t_sink, c_base, g_rel, c_rel, b_base, b_rel, os.getloadavg()[0]),
              flush=True)
        del m
    await alice.close()
    await bob.stop()
    gw.stop()
    p.stop()
    if sink:
        sink.close()
    return rows


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR])
    args = sys.argv[1:]
    use_sink = "--prosody-http" not in args
    sizes = [int(a) for a in args if a.isdigit()] or [64, 1024]
    asyncio.run(main(sizes, use_sink))
