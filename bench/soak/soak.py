"""bench/soak: the gateway under a long, mixed, faulty load (issue 14).

    N users (slixmpp) ── Prosody ── barev-gateway ── N Barev peers (tests/barevpeer)

One private network namespace; the gateway's identities u0..uN-1 share
201:1::1 (nicks u0..), peer pI listens on 201:2::I+1 and is the only
contact of uI (seeded in the store, pushed to the rosters by the gateway).
For DURATION seconds:

- RATE messages/s from users to peers and RATE/s from peers to users, in
  total, round-robin over the pairs (bodies "soak DIR PAIR SEQ ...");
- every PEER_EVERY s one peer is restarted (stopped, down PEER_DOWN s, a new
  peer process-object on the same address); every other restart is abrupt
  (sockets reset, no </stream:stream>, like kill -9), the others are
  purple's clean close;
- every FILE_EVERY s one file each way: a peer sends FILE_SIZE bytes by
  SI/SOCKS5 (the user gets a link to Prosody's upload service, fetched and
  compared), a user uploads FILE_SIZE bytes and sends the link (the peer
  receives the bytes, the user gets the "delivered" note);
- every PROSODY_EVERY s (first at half the period) Prosody is restarted:
  users' sends pause, one ping per user to the gateway is the barrier (the
  gateway has read everything the user sent before it: c2s has no acks, so
  what a dying c2s stream takes with it is not the gateway's), SIGTERM,
  start, everybody logs in again; users' sends resume once the gateway's
  component link is back (Prosody bounces messages to a missing component).

Peers send only while their pipe is up (a message is "sent" once written
to the kernel); users send whenever they are logged in.  Afterwards
traffic stops and the soak waits (bounded) until every sent message has
arrived, then counts.  Sampled every SAMPLE s: the gateway's RSS, open fds,
CPU.  Figures, one line each with its target, then a verdict line.
Everything (logs, samples.csv, events.json, lost.json) is kept in OUT.

    /usr/bin/python3 bench/soak/soak.py [--duration S] [--pairs N] [--rate R]
        [--peer-every S] [--file-every S] [--prosody-every S] [--out DIR]
Needs root (private network namespace), Prosody, a release build
(bench/soak/run.sh builds one and sets BAREV_GATEWAY_BIN).
"""
import argparse
import asyncio
import collections
import csv
import hashlib
import json
import math
import os
import re
import signal
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "barevpeer"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client     # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import contact_jid               # noqa: E402
from xfer import blob, http, upload              # noqa: E402

GW_ADDR = "201:1::1"
GATEWAY = harness.COMPONENT
# no message archive (as bench/e2e): Prosody's internal archive store slows
# down as it grows, which would show as a trend that is not the gateway's
PROSODY_EXTRA = """
VirtualHost "%s"
	modules_disabled = { "mam"; "s2s" }
""" % harness.DOMAIN
PROD_TIMERS = {k: None for k in harness.TEST_TIMERS}
WARMUP_FRACTION = 0.5          # slopes are fitted over the second half
RSS_FLAT_KIB_MIN = 16.0        # "flat": less than ~1 MiB per hour
FD_FLAT_PER_MIN = 0.05         # "flat": less than 3 fds per hour


def peer_addr(i):
    return "201:2::%x" % (i + 1)


def now():
    return time.monotonic()


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(rss_kib, hwm_kib, fds, utime_s, stime_s) of a process."""
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return rss, hwm, fds, int(v[11]) / tck, int(v[12]) / tck


TCP_STATES = {"01": "ESTAB", "02": "SYN_SENT", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "0A": "LISTEN", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK",
              "0B": "CLOSING", "03": "SYN_RECV"}


def _hexaddr(h):
    a, port = h.split(":")
    b = bytes.fromhex(a)
    if len(b) == 4:
        return "%s:%d" % (".".join(str(x) for x in b[::-1]), int(port, 16))
    words = b"".join(b[i:i + 4][::-1] for i in range(0, 16, 4))
    import ipaddress
    return "[%s]:%d" % (ipaddress.IPv6Address(words), int(port, 16))


def _noeph(a):
    """an address without its port when that is an ephemeral one"""
    host, port = a.rsplit(":", 1)
    return host if int(port) >= 32768 else a


def socket_table(pid):
    """{inode: 'tcp STATE local -> remote-host' or 'unix PATH'} for a process's netns"""
    out = {}
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    v = line.split()
                    out[v[9]] = name.rstrip("6") + " %s %s -> %s" % (TCP_STATES.get(v[3], v[3]),
                                                     _noeph(_hexaddr(v[1])),
                                                     _noeph(_hexaddr(v[2])))
        except OSError:
            pass
    try:
        with open("/proc/%d/net/netlink" % pid) as f:
            next(f)
            for line in f:
                v = line.split()
                out[v[-1]] = "netlink proto %s" % v[1]
    except OSError:
        pass
    try:
        with open("/proc/%d/net/unix" % pid) as f:
            next(f)
            for line in f:
                v = line.split()
                out[v[6]] = "unix %s" % (v[7] if len(v) > 7 else "(unnamed)")
    except OSError:
        pass
    return out


def slope(xs, ys):
    """least-squares slope of ys over xs (per unit of x)"""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


# ---------------------------------------------------------------- the soak

class Soak:
    def __init__(self, args):
        self.a = args
        self.n = args.pairs
        self.t0 = None
        self.events = []                 # (t, kind, detail)
        self.samples = []                # dicts
        # sent[(dir, pair)] = {seq: t_sent}; got[(dir, pair)] = [seq, ...] in arrival order
        self.sent = collections.defaultdict(dict)
        self.got = collections.defaultdict(list)
        self.seq = collections.Counter()
        self.skipped = collections.Counter()    # not sent: why
        self.bounced = []                # error messages users got back for our bodies
        self.files = collections.Counter()
        self.file_fail = []
        self.users_paused = True
        self.clients = [None] * self.n
        self.peers = [None] * self.n
        self.peer_lock = [asyncio.Lock() for _ in range(self.n)]
        self.restarting = set()
        self.tasks = set()
        self.prosody_lock = asyncio.Lock()
        self.fd_rest = {}
        self.files_busy = 0
        self.old_clients = []
        self.gw_msgs = []                # other messages users got from the gateway JID

    def ev(self, kind, detail=""):
        t = now() - self.t0 if self.t0 else 0.0
        self.events.append((round(t, 3), kind, detail))
        print("[%7.1fs] %s %s" % (t, kind, detail), flush=True)

    def quiet_ev(self, kind, detail=""):
        """an event kept for the evidence files, not printed"""
        self.events.append((round(now() - self.t0, 3) if self.t0 else 0.0, kind, detail))

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self._done)
        return t

    def _done(self, t):
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            e = t.exception()
            self.ev("task-error", "%s: %s" % (type(e).__name__, e))

    # -- setup

    def seed(self, gw):
        db = sqlite3.connect(gw.config["database"])
        with db:
            for i in range(self.n):
                cur = db.execute("INSERT INTO identities (jid, nick, address, port, created_at)"
                                 " VALUES (?, ?, ?, 1337, 0)",
                                 ("u%d@%s" % (i, harness.DOMAIN), "u%d" % i, GW_ADDR))
                db.execute("INSERT INTO contacts (identity_id, nick, address, port, created_at)"
                           " VALUES (?, ?, ?, 1337, 0)", (cur.lastrowid, "p%d" % i, peer_addr(i)))
        db.close()

    def contact(self, i):
        return contact_jid("p%d" % i, peer_addr(i))

    async def new_peer(self, i):
        p = bp.Peer("p%d" % i, peer_addr(i), profile="purple")
        p.add_buddy("u%d" % i, GW_ADDR)
        p.on_stanza = lambda s, el, raw, i=i: self._peer_stanza(i, el)
        await p.start()
        self.peers[i] = p
        return p

    def _peer_stanza(self, i, el):
        if bp.local(el.tag) == "presence" and el.get("type") == "unavailable":
            # the gateway's goodbye on this pipe: evidence for lost.json
            self.quiet_ev("goodbye-from-gateway", "p%d" % i)
        if bp.local(el.tag) != "message":
            return
        b = el.find("{%s}body" % bp.NS_CLIENT)
        if b is not None:
            self._arrived((b.text or ""), "u2p", i)

    def _arrived(self, body, want_dir, pair):
        if not body.startswith("soak "):
            return False
        parts = body.split(" ", 4)
        if len(parts) < 4 or parts[1] != want_dir:
            self.ev("misrouted", body[:60])
            return True
        if int(parts[2]) != pair:
            self.ev("misrouted", "%s arrived at pair %d" % (body[:40], pair))
        self.got[(want_dir, int(parts[2]))].append(int(parts[3]))
        return True

    async def login(self, i):
        c = Client("u%d@%s" % (i, harness.DOMAIN), "pw", self.p)

        def on_msg(m, i=i):
            body = m["body"] or ""
            frm = m["from"].bare
            if m["type"] == "error":
                if body.startswith("soak "):
                    self.bounced.append((round(now() - self.t0, 3), i, body[:40],
                                         m["error"]["condition"]))
                return
            if self._arrived(body, "p2u", i):
                if frm != self.contact(i):
                    self.ev("misrouted", "p2u from %s at u%d" % (frm, i))
                return
            if frm in (GATEWAY, self.contact(i)):
                self.gw_msgs.append((i, frm, body, m["oob"]["desc"] or ""))
        c.add_event_handler("message", on_msg)
        try:
            await c.connect_and_wait(timeout=60)
        except BaseException:
            c.abort()
            self.old_clients.append(c)
            raise
        self.clients[i] = c
        return c

    async def login_all(self):
        sem = asyncio.Semaphore(10)

        async def one(i):
            async with sem:
                for attempt in range(3):
                    try:
                        await self.login(i)
                        return
                    except Exception as e:      # a busy Prosody: log in again
                        self.ev("login-retry", "u%d: %s" % (i, e))
                raise RuntimeError("u%d could not log in" % i)
        await asyncio.gather(*(one(i) for i in range(self.n)))

    async def wait_pipes(self, timeout):
        deadline = now() + timeout
        for i in range(self.n):
            await self.peers[i].wait_session("u%d" % i, timeout=max(1, deadline - now()))

    async def setup(self):
        a = self.a
        self.p = Prosody(harness.tmpdir("prosody"), log_level="info", extra=PROSODY_EXTRA,
                         bench_upload={"http_file_share_size_limit":
                                       str(max(10 << 20, 2 * a.file_size))})
        self.p.start()
        for i in range(self.n):
            self.p.create_user("u%d" % i, "pw")
        cfg = dict(PROD_TIMERS, log_level=a.log_level,
                   max_file_size=str(max(1 << 20, 2 * a.file_size)))
        self.gw = gw = Gateway(self.p, harness.tmpdir("gw"), config=cfg)
        gw.start()
        await gw.wait_up(timeout=60)
        gw.stop()
        self.seed(gw)
        gw.start()
        await gw.wait_up(timeout=60)
        await gw.wait_log(r"granted roster privilege", timeout=60)
        for i in range(self.n):
            await self.new_peer(i)
        await self.login_all()
        await self.wait_pipes(120)

    # -- traffic

    async def traffic(self, stop_at):
        """RATE/s each way, round-robin over the pairs."""
        period = 1.0 / self.a.rate
        k = 0
        start = now()
        while True:
            t_next = start + k * period
            if t_next >= stop_at:
                return
            d = t_next - now()
            if d > 0:
                await asyncio.sleep(d)
            i = k % self.n
            k += 1
            self.send_u2p(i)
            await self.send_p2u(i)

    def body(self, d, i):
        self.seq[(d, i)] += 1
        s = self.seq[(d, i)]
        head = "soak %s %d %d %.3f " % (d, i, s, now() - self.t0)
        return s, head + "x" * max(0, self.a.body - len(head))

    def send_u2p(self, i):
        c = self.clients[i]
        if self.users_paused or c is None or not c.transport:
            self.skipped["u2p: user offline"] += 1
            return
        s, body = self.body("u2p", i)
        c.send_message(self.contact(i), body)
        self.sent[("u2p", i)][s] = now() - self.t0

    async def send_p2u(self, i):
        if i in self.restarting:
            self.skipped["p2u: peer restarting"] += 1
            return
        async with self.peer_lock[i]:
            sess = next((x for x in self.peers[i].sessions if x.up and not x.closed), None)
            if sess is None:
                self.skipped["p2u: no pipe"] += 1
                return
            s, body = self.body("p2u", i)
            try:
                await asyncio.wait_for(sess.send_message(body), 10)
            except (ConnectionError, OSError, asyncio.TimeoutError) as e:
                # written or not: we cannot know; counted apart, not as sent
                self.skipped["p2u: send failed"] += 1
                self.ev("p2u-send-failed", "p%d seq %d: %r" % (i, s, e))
                return
            self.sent[("p2u", i)][s] = now() - self.t0

    # -- faults

    def restart_order(self, k):
        step = 7 if math.gcd(7, self.n) == 1 else 1
        return (k * step) % self.n

    def restart_time(self, k):
        return self.a.peer_every / 3 + k * self.a.peer_every

    def file_time(self, k):
        return self.a.file_every * 5 / 12 + k * self.a.file_every

    async def restart_peer(self, k):
        i = self.restart_order(k)
        abrupt = k % 2 == 1
        self.restarting.add(i)
        async with self.peer_lock[i]:
            old = self.peers[i]
            if abrupt:
                for s in list(old.sessions):
                    s.writer.transport.abort()
            await old.stop()
            self.ev("peer-stop", "p%d %s" % (i, "abrupt (RST)" if abrupt else "clean"))
            await asyncio.sleep(self.a.peer_down)
            await self.new_peer(i)
        self.restarting.discard(i)
        self.ev("peer-start", "p%d" % i)

    async def restart_prosody(self, k):
        # one at a time: a restart that takes longer than the period must
        # not stop Prosody under the previous one's logins
        async with self.prosody_lock:
            await self._restart_prosody(k)

    async def _restart_prosody(self, k):
        self.users_paused = True
        self.ev("prosody-barrier", "users paused; pinging the gateway from every user")
        pings = [c.ping(GATEWAY, timeout=60) for c in self.clients if c and c.transport]
        res = await asyncio.gather(*pings, return_exceptions=True)
        bad = [r for r in res if isinstance(r, Exception)]
        if bad:
            self.ev("prosody-barrier-failed", "%d of %d pings: %s" % (len(bad), len(res), bad[0]))
        mark = self.gw.mark()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.p.stop)
        self.ev("prosody-stop", "restart %d" % (k + 1))
        for c in self.clients:
            if c is not None:
                c.abort()
        # kept referenced: a collected slixmpp client leaves pending tasks
        # that asyncio reports as "destroyed but pending"
        self.old_clients += [c for c in self.clients if c is not None]
        self.clients = [None] * self.n
        await loop.run_in_executor(None, self.p.start)
        self.ev("prosody-start")
        await self.gw.wait_log(r"component: link up", timeout=120, since=mark)
        self.ev("component-up")
        await self.login_all()
        self.users_paused = False
        self.ev("users-back", "%d logged in" % self.n)

    def file_pair(self, k, direction):
        """a pair whose peer is not restarted in the next minute or so"""
        t = self.file_time(k)
        busy = set()
        if self.a.peer_every > 0:
            busy = {self.restart_order(j) for j in range(int(t / self.a.peer_every) + 8)
                    if t - 10 <= self.restart_time(j) <= t + 90}
        if len(busy) >= self.n:
            busy = set()
        i = (k * 13 + (0 if direction == "p2u" else 25)) % self.n
        while i in busy or i in self.restarting:
            i = (i + 1) % self.n
        return i

    async def file_p2u(self, k):
        i = self.file_pair(k, "p2u")
        name = "soak-p2u-%d.bin" % k
        data = blob(self.a.file_size, name)
        t = now()
        try:
            sess = await self.peers[i].wait_session("u%d" % i, timeout=60)
            res = await sess.send_file(name, data, timeout=60)
            if not res["ok"]:
                raise RuntimeError("peer side: %s" % res.get("reason"))
            url = await self._wait_gw_msg(i, lambda frm, b, desc: frm == self.contact(i)
                                          and b.startswith("http") and desc == name, 120)
            status, got = await http("GET", url)
            if status != 200 or got != data:
                raise RuntimeError("download: status %s, %d bytes, identical %s"
                                   % (status, len(got), got == data))
        except Exception as e:
            self.files["p2u failed"] += 1
            self.file_fail.append(("p2u", k, i, "%s: %s" % (type(e).__name__, e)))
            self.ev("file-failed", "p2u %s p%d->u%d: %s" % (name, i, i, e))
            return
        self.files["p2u ok"] += 1
        self.ev("file-ok", "p2u %s p%d->u%d in %.1fs" % (name, i, i, now() - t))

    async def file_u2p(self, k):
        i = self.file_pair(k, "u2p")
        name = "soak-u2p-%d.bin" % k
        data = blob(self.a.file_size, name)
        t = now()
        try:
            c = self.clients[i]
            if c is None or self.users_paused:
                raise RuntimeError("u%d not logged in (Prosody restart)" % i)
            url = await upload(c, self.p.upload_service, name, data)
            peer = self.peers[i]
            c.send_message(self.contact(i), url, oob_url=url)
            got_name, got = await peer.wait_file(timeout=120)
            if got_name != name or got != data:
                raise RuntimeError("peer got %r, %d bytes, identical %s"
                                   % (got_name, len(got), got == data))
            await self._wait_gw_msg(i, lambda frm, b, _d: frm == GATEWAY and name in b
                                    and "delivered" in b, 60)
        except Exception as e:
            self.files["u2p failed"] += 1
            self.file_fail.append(("u2p", k, i, "%s: %s" % (type(e).__name__, e)))
            self.ev("file-failed", "u2p %s u%d->p%d: %s" % (name, i, i, e))
            return
        self.files["u2p ok"] += 1
        self.ev("file-ok", "u2p %s u%d->p%d in %.1fs" % (name, i, i, now() - t))

    async def _wait_gw_msg(self, i, pred, timeout):
        deadline = now() + timeout
        while True:
            for j, (who, frm, body, desc) in enumerate(self.gw_msgs):
                if who == i and pred(frm, body, desc):
                    del self.gw_msgs[j]
                    return body
            if now() > deadline:
                raise TimeoutError("no such message at u%d within %ss (have %r)" % (
                    i, timeout, [b[:80] for w, _f, b, _d in self.gw_msgs if w == i]))
            await asyncio.sleep(0.1)

    async def files_both(self, k):
        self.files_busy += 1
        try:
            await self._files_both(k)
        finally:
            self.files_busy -= 1

    async def _files_both(self, k):
        # not while users log in again after a Prosody restart
        deadline = now() + 120
        while self.users_paused and now() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.gather(self.file_p2u(k), self.file_u2p(k))

    # -- sampling

    def fd_kinds(self):
        """what the gateway's fds are: TCP sockets by state and local
        address (the remote's port dropped), unix sockets, pipes, files"""
        d = "/proc/%d/fd" % self.gw.pid
        socks = socket_table(self.gw.pid)
        out = collections.Counter()
        for f in os.listdir(d):
            try:
                t = os.readlink(os.path.join(d, f))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]$", t)
            if m:
                t = "socket " + socks.get(m.group(1), "?")
            out[re.sub(r"\[\d+\]$", "", t)] += 1
        return out

    def sample(self, label=""):
        if label:
            self.fd_rest[label] = self.fd_kinds()
        rss, hwm, fds, ut, st = proc_stat(self.gw.pid)
        pipes = sum(1 for p in self.peers
                    if p is not None and any(x.up and not x.closed for x in p.sessions))
        row = {"t": round(now() - self.t0, 1), "rss_kib": rss, "hwm_kib": hwm, "fds": fds,
               "pipes": pipes, "files_busy": self.files_busy,
               "cpu_user_s": ut, "cpu_sys_s": st,
               "u2p_sent": sum(len(v) for (d, _), v in self.sent.items() if d == "u2p"),
               "p2u_sent": sum(len(v) for (d, _), v in self.sent.items() if d == "p2u"),
               "u2p_got": sum(len(v) for (d, _), v in self.got.items() if d == "u2p"),
               "p2u_got": sum(len(v) for (d, _), v in self.got.items() if d == "p2u"),
               "label": label}
        self.samples.append(row)
        return row

    async def sampler(self, stop_at):
        k = 1
        while True:
            t = self.t0 + k * self.a.sample
            if t > stop_at:
                return
            await asyncio.sleep(max(0, t - now()))
            r = self.sample()
            if k % 6 == 0:
                print("[%7.1fs] sample rss %d KiB fds %d cpu %.1fs sent %d/%d got %d/%d" % (
                    r["t"], r["rss_kib"], r["fds"], r["cpu_user_s"] + r["cpu_sys_s"],
                    r["u2p_sent"], r["p2u_sent"], r["u2p_got"], r["p2u_got"]), flush=True)
            k += 1

    async def schedule(self, first, every, stop_at, fn):
        k = 0
        while every > 0:
            t = self.t0 + first + k * every
            if t >= stop_at:
                return
            await asyncio.sleep(max(0, t - now()))
            self.spawn(fn(k))
            k += 1

    # -- counting

    def missing(self):
        out = []
        for key, sent in self.sent.items():
            have = set(self.got.get(key, ()))
            out += [(key[0], key[1], s, t) for s, t in sent.items() if s not in have]
        return out

    async def drain(self, timeout):
        deadline = now() + timeout
        while self.missing() and now() < deadline:
            await asyncio.sleep(0.5)
        # a little more for late duplicates (a requeue behind the last arrival)
        await asyncio.sleep(min(5, max(0, deadline - now())))

    async def run(self):
        a = self.a
        await self.setup()
        self.t0 = now()
        self.ev("start", "%d pairs up, %d users logged in" % (self.n, self.n))
        self.sample("rest-before")
        cpu0 = self.samples[-1]
        self.users_paused = False
        stop_at = self.t0 + a.duration
        jobs = [self.traffic(stop_at), self.sampler(stop_at),
                self.schedule(self.restart_time(0), a.peer_every, stop_at, self.restart_peer),
                self.schedule(self.file_time(0), a.file_every, stop_at, self.files_both),
                self.schedule(a.prosody_every / 2, a.prosody_every, stop_at, self.restart_prosody)]
        await asyncio.gather(*jobs)
        self.ev("traffic-stopped")
        # faults and files still running finish (bounded) before counting
        deadline = now() + 300
        while self.tasks and now() < deadline:
            await asyncio.sleep(0.2)
        if self.tasks:
            self.ev("tasks-still-running", str(len(self.tasks)))
        self.users_paused = True
        await self.drain(a.drain)
        self.ev("drained", "%d messages still missing" % len(self.missing()))
        await self.wait_pipes(120)
        self.sample("rest-after")
        cpu1 = self.samples[-1]
        health = self.gw.run("--config", self.gw.config_path, "--health").stdout
        rc = self.gw.stop(timeout=60)
        self.ev("gateway-stopped", "exit %s" % rc)
        return self.report(cpu0, cpu1, health, rc)

    # -- report

    def report(self, c0, c1, health, rc):
        a, out = self.a, self.a.out
        with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(self.samples[0].keys()))
            w.writeheader()
            w.writerows(self.samples)
        lost = self.missing()
        with open(os.path.join(out, "lost.json"), "w") as f:
            json.dump([{"dir": d, "pair": i, "seq": s, "t_sent": t,
                        "events_near": [e for e in self.events
                                        if abs(e[0] - t) < 10 and ("p%d" % i in e[2].split() or
                                                                   e[1].startswith("prosody"))]}
                       for d, i, s, t in sorted(lost, key=lambda x: x[3])], f, indent=1)
        with open(os.path.join(out, "events.json"), "w") as f:
            json.dump({"events": self.events, "bounced": self.bounced,
                       "file_failures": self.file_fail, "skipped": self.skipped,
                       "health": health}, f, indent=1)

        ok = True
        lines = []

        def line(text, good=True):
            nonlocal ok
            ok = ok and good
            lines.append(text + ("" if good else "   <-- MISSED"))

        b, f = self.fd_rest.get("rest-before", {}), self.fd_rest.get("rest-after", {})
        diff = {k: f.get(k, 0) - b.get(k, 0) for k in set(b) | set(f) if f.get(k, 0) != b.get(k, 0)}
        n_peer = sum(1 for e in self.events if e[1] == "peer-start")
        n_pros = sum(1 for e in self.events if e[1] == "users-back")
        lines.append("soak: %.0f s, %d pairs, %g msg/s each way, %d peer restarts, %d Prosody"
                     " restarts, files of %d bytes every %g s; 2 vCPUs shared with other"
                     " workers" % (a.duration, self.n, a.rate, n_peer, n_pros, a.file_size,
                                   a.file_every))
        # memory and fds: fitted over the second half (after warm-up)
        ts = [s for s in self.samples if s["label"] == ""]
        half = [s for s in ts if s["t"] >= a.duration * WARMUP_FRACTION]
        xs = [s["t"] / 60 for s in half]
        rs = slope(xs, [s["rss_kib"] for s in half])
        rs_all = slope([s["t"] / 60 for s in ts], [s["rss_kib"] for s in ts])
        # fds move with pipes that are down (restarts) and files in flight:
        # the slope is fitted over the samples with every pipe up, no file
        steady = [s for s in ts if s["pipes"] == self.n and not s["files_busy"]]
        sh = [s for s in steady if s["t"] >= a.duration * WARMUP_FRACTION]
        fs = slope([s["t"] / 60 for s in sh], [s["fds"] for s in sh])
        fs_all = slope([s["t"] / 60 for s in steady], [s["fds"] for s in steady])
        line("gateway RSS: %d KiB at rest before, %d KiB at rest after, min %d max %d over %d"
             " samples; slope %+.1f KiB/min over the 2nd half (%+.1f over all)"
             "  [target: flat: no growth over the 2nd half (< %+g KiB/min) and"
             " |slope over all| < %g KiB/min]" % (
                 c0["rss_kib"], c1["rss_kib"], min(s["rss_kib"] for s in ts),
                 max(s["rss_kib"] for s in ts), len(ts), rs, rs_all, RSS_FLAT_KIB_MIN,
                 RSS_FLAT_KIB_MIN),
             # a leak is growth once warm; memory given back after a peak
             # (a file's buffers, SQLite's cache) is not one, so the 2nd
             # half is one-sided, and the whole run must be flat both ways
             rs < RSS_FLAT_KIB_MIN and abs(rs_all) < RSS_FLAT_KIB_MIN)
        # things made once, lazily (the HTTP client's DNS resolver socket at
        # the first transfer), are part of the baseline: the first steady
        # sample after the first file is the "warm" one
        t_file = min([e[0] for e in self.events if e[1] in ("file-ok", "file-failed")] or [0])
        warm = next((s for s in steady if s["t"] > t_file), c0)
        base = max(c0["fds"], warm["fds"])
        line("gateway fds: %d at rest before, %d warm (t=%.0fs, after the first file), %d at rest"
             " after, min %d max %d; slope %+.3f/min over the 2nd half (%+.3f over all; %d of %d"
             " samples with every pipe up and no file in flight)  [target: flat, rest after <="
             " warm, |slope| < %g/min]" % (
                 c0["fds"], warm["fds"], warm["t"], c1["fds"], min(s["fds"] for s in ts),
                 max(s["fds"] for s in ts), fs, fs_all, len(steady), len(ts), FD_FLAT_PER_MIN),
             c1["fds"] <= base and abs(fs) < FD_FLAT_PER_MIN)
        if diff:
            lines.append("gateway fds at rest, after minus before (socket ? = neither TCP, UDP,"
                         " unix nor netlink in /proc/net: unbound or closed): %s" % ", ".join(
                "%s %+d" % kv for kv in sorted(diff.items())))
        total_got = 0
        for d, what in (("u2p", "users -> peers"), ("p2u", "peers -> users")):
            sent = sum(len(v) for (dd, _), v in self.sent.items() if dd == d)
            got = sum(len(v) for (dd, _), v in self.got.items() if dd == d)
            distinct = sum(len(set(v)) for (dd, _), v in self.got.items() if dd == d)
            nlost = sum(1 for x in lost if x[0] == d)
            dup = got - distinct
            unsent = sum(len(set(v) - set(self.sent.get((d, i), {})))
                         for (dd, i), v in self.got.items() if dd == d)
            reord = 0
            for (dd, _), v in self.got.items():
                if dd == d:
                    hi = 0
                    for s in v:
                        if s < hi:
                            reord += 1
                        hi = max(hi, s)
            total_got += distinct
            line("messages %s: sent %d, received %d, lost %d, duplicated %d, out of order %d"
                 "%s  [target: lost 0, duplicated 0]" % (
                     what, sent, distinct, nlost, dup, reord,
                     ", %d received that were not counted as sent" % unsent if unsent else ""),
                 nlost == 0 and dup == 0)
        lines.append("not sent (sender away, by design): %s; bounced to users: %d" % (
            ", ".join("%s %d" % kv for kv in sorted(self.skipped.items())) or "none",
            len(self.bounced)))
        fok = self.files["p2u ok"] + self.files["u2p ok"]
        ffail = self.files["p2u failed"] + self.files["u2p failed"]
        line("files: peer -> user %d ok, %d failed; user -> peer %d ok, %d failed"
             "  [target: all ok]" % (self.files["p2u ok"], self.files["p2u failed"],
                                    self.files["u2p ok"], self.files["u2p failed"]),
             ffail == 0)
        cu = c1["cpu_user_s"] - c0["cpu_user_s"]
        cs = c1["cpu_sys_s"] - c0["cpu_sys_s"]
        per = (cu + cs) * 1e6 / total_got if total_got else 0
        lines.append("gateway CPU: %.1f s user + %.1f s system over the run = %.0f us per"
                     " message delivered (%d, both ways; restarts, files, pings and idle time"
                     " included; /proc ticks)  [target: none, compare bench/e2e 35-50 us in a"
                     " flood]" % (cu, cs, per, total_got))
        errs = [e for e in self.events if e[1] in ("task-error", "tasks-still-running",
                                                    "prosody-barrier-failed")]
        line("driver: %d fault/file tasks that failed or did not finish%s  [target: 0, else the"
             " load was not what was asked]" % (len(errs), (" (first: %s %s)" % errs[0][1:])
                                                 if errs else ""), not errs)
        line("gateway: exit status %s on SIGTERM, VmHWM %d KiB  [target: 0, no crash]"
             % (rc, c1["hwm_kib"]), rc == 0)
        m = re.search(r"Queued: .*", health)
        if m:
            lines.append("gateway status at the end: " + m.group(0))
        lines.append("verdict: %s (logs and samples in %s)" % ("PASS" if ok else "FAIL", out))
        print()
        print("\n".join(lines), flush=True)
        with open(os.path.join(out, "summary.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=1800, help="seconds of traffic")
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--rate", type=float, default=10, help="msg/s each way, in total")
    ap.add_argument("--peer-every", type=float, default=30, help="s between peer restarts")
    ap.add_argument("--peer-down", type=float, default=1, help="s a restarted peer is away")
    ap.add_argument("--file-every", type=float, default=60, help="s between files (0: none)")
    ap.add_argument("--file-size", type=int, default=1 << 20)
    ap.add_argument("--prosody-every", type=float, default=600,
                    help="s between Prosody restarts (first at half of it; 0: none)")
    ap.add_argument("--sample", type=float, default=10, help="s between samples")
    ap.add_argument("--drain", type=float, default=180,
                    help="s at most to wait for messages in flight after the traffic")
    ap.add_argument("--body", type=int, default=100, help="message body bytes")
    ap.add_argument("--log-level", default="info", help="the gateway's log_level")
    ap.add_argument("--out", default=None, help="directory for logs and figures"
                    " (default: a new /tmp/barev-soak-*)")
    args = ap.parse_args()
    import netns
    netns.enter([GW_ADDR] + [peer_addr(i) for i in range(args.pairs)])
    if not args.out:
        import tempfile
        args.out = tempfile.mkdtemp(prefix="barev-soak-")
    os.makedirs(args.out, exist_ok=True)
    # bounded whatever happens: SIGALRM's default action ends this process,
    # and every child dies with it (PR_SET_PDEATHSIG, harness._spawn)
    signal.alarm(int(args.duration + args.drain + 900))
    harness._root = args.out                # keep every log where we report it
    os.environ["BAREV_TEST_KEEP"] = "1"
    print("soak: out %s, gateway %s" % (args.out, harness.gateway_bin()), flush=True)
    rc = asyncio.run(Soak(args).run())
    sys.exit(rc)


if __name__ == "__main__":
    main()
