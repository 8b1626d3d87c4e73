"""Helpers for barevlink's integration tests: bl-driver as a subprocess.

Driver speaks bl-driver's line protocol (documented at the top of
bl_driver.c): `cmd()` sends one command and returns its `ok ...` reply,
events (`pipe_up`, `stanza`, ...) collect in `events` and are waited for
with bounded waits.  On stop the driver must exit 0 with a stderr free of
sanitizer reports.
"""
import asyncio
import os
import socket
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "barevpeer"))

import netns  # noqa: E402,F401
import barevpeer as bp  # noqa: E402,F401

T = 5                                   # default bound of every wait
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")

# XML specials, both quotes, a newline and non-ASCII (BAREV.md §4)
TEXT = "a&b <c> \"d\" 'e' & &amp; line\nBarev ñ 日本 ✓ բարև"


def esc_cmd(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n")


def unesc(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append("\n" if s[i + 1] == "n" else s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def body_of(el):
    """<body> text of a stanza from a `stanza` event, namespace or not (the
    serializer writes xmlns only where the element carried one)."""
    for c in el:
        if c.tag.rpartition("}")[2] == "body":
            return c.text or ""
    return None


class Driver:
    def __init__(self, **timers):
        self.args = []
        for k, v in timers.items():
            self.args += ["--" + k.replace("_", "-"), str(v)]
        self.events = []
        self.consumed = set()
        self.replies = asyncio.Queue()
        self.changed = asyncio.Event()
        self.proc = None
        self.err = tempfile.TemporaryFile()

    async def start(self):
        exe = os.environ.get("BL_DRIVER")
        if not exe:
            raise SystemExit("BL_DRIVER is not set")
        self.proc = await asyncio.create_subprocess_exec(
            exe, *self.args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=self.err,
            limit=64 * 1024 * 1024)
        self.reader = asyncio.get_running_loop().create_task(self._read())
        line = await asyncio.wait_for(self.replies.get(), T)
        assert line == "ready", line
        return self

    async def _read(self):
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith(("ok ", "err ")) or line in ("ready",):
                await self.replies.put(line)
            else:
                self.events.append(line)
                self.changed.set()
        await self.replies.put(None)

    async def cmd(self, line, expect_ok=True):
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        r = await asyncio.wait_for(self.replies.get(), T)
        if r is None:
            raise ConnectionError("driver died on %r" % line)
        if expect_ok and not r.startswith("ok "):
            raise AssertionError("%r -> %r" % (line, r))
        return r

    async def wait(self, pred, timeout=T, what="event", since=0):
        """First not-yet-consumed event line (from index `since` on)
        matching pred (str prefix or callable); consumed."""
        if isinstance(pred, str):
            prefix = pred
            pred = lambda l: l.startswith(prefix)  # noqa: E731
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for i, l in enumerate(self.events):
                if i >= since and i not in self.consumed and pred(l):
                    self.consumed.add(i)
                    return l
            left = end - loop.time()
            if left <= 0:
                raise TimeoutError("no %s; events: %r" % (what, self.events[-20:]))
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def seen(self, prefix):
        return [l for l in self.events if l.startswith(prefix)]

    async def stanza(self, name, timeout=T):
        """Next received stanza with this element name, as an Element."""
        l = await self.wait(lambda l: l.startswith("stanza ") and
                            l.split(" ", 3)[3].startswith("<" + name),
                            timeout, "stanza <%s>" % name)
        return ET.fromstring(unesc(l.split(" ", 3)[3]))

    async def stats(self):
        r = await self.cmd("stats")
        return {k: int(v) for k, v in (w.split("=") for w in r.split()[2:])}

    async def msg(self, contact, text):
        r = await self.cmd("msg %d %s" % (contact, esc_cmd(text)))
        return int(r.split()[2])

    def log_text(self):
        """The driver's stderr (its log) so far.  pread: the driver
        shares the file offset, which must stay where it writes."""
        return os.pread(self.err.fileno(), 1 << 24, 0).decode(errors="replace")

    async def stop(self):
        """quit; exit status 0 and no sanitizer report, else AssertionError."""
        if self.proc.returncode is None:
            try:
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
            except (ConnectionError, OSError):
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.reader.cancel()
        self.err.seek(0)
        err = self.err.read().decode(errors="replace")
        bad = [m for m in SANITIZER_MARKS if m in err]
        if self.proc.returncode != 0 or bad:
            sys.stderr.write(err[-8000:])
            raise AssertionError("driver exit %s, sanitizer: %s" %
                                 (self.proc.returncode, bad))
        return err


async def raw_connect(src, dst, port=1337, timeout=T):
    """A plain socket from `src` (bound) to [dst]:port."""
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    await asyncio.wait_for(loop.sock_connect(s, (dst, port)), timeout)
    return s


async def read_until_closed(s, timeout=T, limit=1 << 20):
    """Everything the other side sends until it closes (EOF or reset)."""
    return (await close_kind(s, timeout, limit))[1]


async def close_kind(s, timeout=T, limit=None):
    """How the other side ends the connection: ("reset", data) when it
    closed with our bytes still unread in its receive queue (the kernel
    then sends RST, RFC 2525 §2.17), ("eof", data) for an orderly FIN.
    More than `limit` bytes (None: no limit) fails the test."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    end = loop.time() + timeout
    while True:
        left = end - loop.time()
        if left <= 0:
            raise TimeoutError("socket still open after %ss; got %r" %
                               (timeout, bytes(data[:300])))
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(s, 65536), left)
        except (ConnectionResetError, BrokenPipeError):
            return "reset", bytes(data)
        except asyncio.TimeoutError:
            continue
        if not chunk:
            return "eof", bytes(data)
        data += chunk
        if limit is not None and len(data) > limit:
            raise AssertionError("too much data")


def tcp6_rx_queue(local_port, remote_port):
    """rx_queue of our namespace's TCP socket [*]:local_port <->
    [*]:remote_port (/proc/net/tcp6), None when there is none."""
    with open("/proc/net/tcp6") as f:
        next(f)
        for line in f:
            w = line.split()
            lp = int(w[1].rsplit(":", 1)[1], 16)
            rp = int(w[2].rsplit(":", 1)[1], 16)
            if lp == local_port and rp == remote_port:
                return int(w[4].split(":")[1], 16)
    return None


async def wait_unread(local_port, remote_port, n, timeout=T):
    """Until the socket [*]:local_port <- remote_port holds >= n unread
    bytes (in its accept queue too: the kernel finishes the handshake and
    queues data before the application accepts)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (tcp6_rx_queue(local_port, remote_port) or 0) < n:
        if loop.time() > end:
            raise TimeoutError("%d unread bytes never queued at port %d" %
                               (n, local_port))
        await asyncio.sleep(0.01)


def run(main, addrs):
    """Enter the private netns, run main(), exit 0 or 1."""
    netns.enter(addrs)
    try:
        asyncio.run(asyncio.wait_for(main(), 100))
    except Exception:
        import traceback
        traceback.print_exc()
        sys.exit(1)
    print("PASS")
    sys.exit(0)
