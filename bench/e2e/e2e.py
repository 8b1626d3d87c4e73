"""bench/e2e: end-to-end message throughput and latency through the gateway,
against the same path with a trivial component in its place (issue 6).

    slixmpp alice ── c2s ──▶ Prosody ── XEP-0114 ──▶ X ──▶ receiver

  echo     X = a trivial XEP-0114 component (sink.py component: raw asyncio
           socket + expat, records arrival times) connected as the
           gateway's JID; the receiver is that component itself.
  gateway  X = barev-gateway (release build) with alice's Barev identity and
           bob (in a process of his own) as her contact; alice writes to
           bob's contact JID, bob records.  bob is `sink.py light` by
           default: a Barev peer as light per stanza as the echo component
           (asyncio + expat, purple's bytes on the wire), so the receiver
           costs both modes alike; --receiver barevpeer uses the full test
           peer (tests/barevpeer, purple profile, ~240 us CPU per message:
           on a small machine that, not the gateway, bounds the flood).

Both modes use the same Prosody, the same logged-in alice, the same bodies
("e2e TAG SEQ T_SEND_NS" padded to 300 bytes, the send time taken from
CLOCK_MONOTONIC when the stanza is written), and alternate within each
round, so a busy machine slows both alike.  Per mode and round:

  flood   alice writes N messages as fast as her socket takes them (raw
          stanzas through slixmpp's send_raw, so the sender is not what is
          measured): msgs/s = N / (last arrival - first send), and the
          one-way latencies (mostly queueing, by construction);
  paced   N messages at RATE/s: one-way latency p50/p99 without a backlog;
  in      the other direction: N messages from the receiver's side (the
          component writes them as the contact JID; bob writes them on his
          pipe) to alice, arrival times at alice's slixmpp.

CPU seconds of the gateway, Prosody and the receiver per flood are read from
/proc, as microseconds per message.

    /usr/bin/python3 bench/e2e/e2e.py [-n N] [--rounds R] [--rate RATE]
        [--receiver light|barevpeer]
        [--gateway LABEL=BINARY ...]          (default: the harness's binary)
    /usr/bin/python3 bench/e2e/e2e.py --callgrind [-n N]

--callgrind runs the gateway under valgrind --tool=callgrind for a run with
no messages and for runs with N messages alice->bob and N bob->alice, and
prints instructions per translated message = (Ir(N) - Ir(0)) / N.
Needs root (a private network namespace, like the integration tests).
"""
import argparse
import asyncio
import atexit
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, HERE)

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client     # noqa: E402
from sink import body_for, xesc                  # noqa: E402

ALICE_ADDR, BOB_ADDR = "201:1::1", "201:2::2"
ALICE = "alice@example.org"
BOB = ("bob@" + BOB_ADDR).replace("@", "\\40").replace(":", "\\3a") + "@" + harness.COMPONENT
SINK = os.path.join(HERE, "sink.py")
# No message archive: Prosody 0.12's "internal" archive store grows per
# message and slows every later run (a 2000-message run near the start of a
# bench and one at its end would not be comparable).  Debian's stock
# prosody.cfg.lua, which the harness starts from, loads no mod_mam.
PROSODY_EXTRA = ""
# production timers: no test-speed pings or backoff during a measurement
PROD_TIMERS = {k: None for k in harness.TEST_TIMERS}


def proc_cpu(pid):
    """user+system CPU seconds of one process; pid "-sys" suffix: system only."""
    sys_only = isinstance(pid, str)
    try:
        with open("/proc/%d/stat" % int(pid) if not sys_only else
                  "/proc/%s/stat" % pid[:-4]) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[12]) if sys_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


_children = []


@atexit.register
def _kill_children():
    for p in _children:
        if p.returncode is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Sink:
    """A sink.py child (component or Barev peer); one JSON line per command."""

    def __init__(self, proc):
        self.proc = proc

    @classmethod
    async def start(cls, *args):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, SINK, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True, preexec_fn=harness._child_setup, limit=64 << 20)
        _children.append(proc)
        return cls(proc)

    async def cmd(self, line, timeout=60):
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()
        out = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not out:
            raise RuntimeError("sink exited (%s) during %r" % (self.proc.returncode, line))
        return json.loads(out)

    def cpu(self):
        return proc_cpu(self.proc.pid)

    async def quit(self):
        if self.proc.returncode is None:
            self.proc.stdin.write(b"quit\n")
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()


class AliceRecorder:
    """Arrival times at alice's client of bodies 'e2e TAG SEQ T_SEND'."""

    def __init__(self, alice):
        self.rows = {}
        self.ev = asyncio.Event()
        alice.add_event_handler("message", self._msg)

    def _msg(self, m):
        t = time.monotonic_ns()
        b = m["body"] or ""
        if m["type"] == "error" or not b.startswith("e2e "):
            return
        parts = b.split(" ", 4)
        self.rows.setdefault(parts[1], []).append((int(parts[2]), int(parts[3]), t))
        self.ev.set()

    async def expect(self, tag, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.rows.get(tag, ())) < n and time.monotonic() < deadline:
            self.ev.clear()
            try:
                await asyncio.wait_for(self.ev.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        return {"tag": tag, "got": len(self.rows.get(tag, ())), "rows": self.rows.pop(tag, [])}


async def alice_send(alice, tag, n, rate=None):
    """N raw message stanzas from alice to BOB; flood when rate is None."""
    t0 = time.monotonic()
    tr = alice.transport
    for i in range(n):
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elif tr.get_write_buffer_size() > 256 * 1024:
            while tr.get_write_buffer_size() > 64 * 1024:
                await asyncio.sleep(0.0005)
        alice.send_raw("<message type='chat' to='%s' id='%s-%d'><body>%s</body></message>"
                       % (xesc(BOB), tag, i, xesc(body_for(tag, i))))
        if not rate and i % 64 == 63:
            await asyncio.sleep(0)


def summarize(res, n):
    rows = res["rows"]
    seqs = set(r[0] for r in rows)
    out = {"got": len(rows), "lost": n - len(seqs), "dup": len(rows) - len(seqs)}
    if not rows:
        return out
    lat = sorted((r[2] - r[1]) / 1e6 for r in rows)
    span = (max(r[2] for r in rows) - min(r[1] for r in rows)) / 1e9
    out.update(rate=len(seqs) / span if span > 0 else 0.0, span=span,
               p50=lat[len(lat) // 2], p99=lat[min(len(lat) - 1, int(len(lat) * 0.99))],
               max=lat[-1])
    return out


def fmt(s):
    if "rate" not in s:
        return "nothing arrived"
    extra = "" if not (s["lost"] or s["dup"]) else "  LOST %d DUP %d" % (s["lost"], s["dup"])
    return "%7.0f msg/s  p50 %7.2f ms  p99 %7.2f ms%s" % (s["rate"], s["p50"], s["p99"], extra)


# ---------------------------------------------------------------- the bed

async def provision(p, gw, alice):
    """alice's identity by the admin chat command, then alice adds bob."""
    gw.start()
    await gw.wait_up(timeout=60)
    admin = Client("admin@example.org", "admin", p)
    await admin.connect_and_wait()
    admin.send_message(harness.COMPONENT, "admin create %s alice %s" % (ALICE, ALICE_ADDR))
    await admin.wait_message(lambda m: "is now alice@" in (m["body"] or ""),
                             what="identity created")
    await admin.close()
    alice.mark()
    alice.send_message(harness.COMPONENT, "add bob@" + BOB_ADDR)
    await alice.wait_message(lambda m: "was added" in (m["body"] or ""), what="bob added")


class Bed:
    """One Prosody, alice logged in, bob's process; per gateway binary its
    own state directory (database), provisioned by that binary."""

    async def setup(self, binaries, gw_config=None, receiver="light"):
        self.p = Prosody(harness.tmpdir("prosody"), log_level="info", extra=PROSODY_EXTRA)
        self.p.start()
        self.p.create_user("alice", "alice")
        self.p.create_user("admin", "admin")
        cfg = dict(PROD_TIMERS, log_level="info")
        cfg.update(gw_config or {})
        role = {"light": "light", "barevpeer": "peer"}[receiver]
        self.bob = await Sink.start(role, "bob", BOB_ADDR, "alice", ALICE_ADDR)
        self.alice = Client(ALICE, "alice", self.p)
        await self.alice.connect_and_wait()
        self.rec = AliceRecorder(self.alice)
        self.gws = {}
        for label, binary in binaries:
            gw = Gateway(self.p, harness.tmpdir("gw-" + label), config=cfg,
                         binary=os.path.abspath(binary))
            await provision(self.p, gw, self.alice)
            await self.bob.cmd("wait_up", timeout=90)
            gw.stop(timeout=60)
            self.gws[label] = gw
        self.prosody_pid = self.p.proc.pid
        return self

    async def gateway_up(self, label, binary=None):
        gw = self.gws[label]
        if binary:
            gw.binary = binary
        gw.mark()
        gw.start()
        await gw.wait_up(timeout=60)
        # the gateway learns alice is online and dials bob
        self.alice.send_presence()
        await self.bob.cmd("wait_up", timeout=90)
        return gw

    async def close(self):
        await self.alice.close()
        await self.bob.quit()
        for gw in self.gws.values():
            if gw.proc:
                gw.stop(timeout=60)
        self.p.stop()


async def measure(bed, gw, receiver, recv_pid, tag, n, rate):
    """flood, paced and reverse runs against one receiver; returns a dict."""
    timeout = 60 + n / 20
    out = {}
    pids = {"prosody": bed.prosody_pid, "receiver": recv_pid, "alice": os.getpid()}
    if gw is not None:
        pids["gateway"] = gw.pid
        pids["gw-sys"] = "%d-sys" % gw.pid
    # flood alice -> receiver
    cpu0 = {k: proc_cpu(v) for k, v in pids.items()}
    await alice_send(bed.alice, tag + "f", n)
    res = await receiver.cmd("expect %sf %d %d" % (tag, n, timeout), timeout + 10)
    cpu1 = {k: proc_cpu(v) for k, v in pids.items()}
    out["flood"] = summarize(res, n)
    out["flood"]["cpu_us"] = {k: (cpu1[k] - cpu0[k]) * 1e6 / n for k in pids}
    # paced alice -> receiver
    if rate:
        await alice_send(bed.alice, tag + "p", n, rate)
        res = await receiver.cmd("expect %sp %d %d" % (tag, n, timeout), timeout + 10)
        out["paced"] = summarize(res, n)
    # receiver -> alice (the contact JID's side writes; alice's client records)
    cpu0 = {k: proc_cpu(v) for k, v in pids.items()}
    await receiver.cmd("send %si %d %s %s" % (tag, n, ALICE, BOB), timeout)
    res = await bed.rec.expect(tag + "i", n, timeout)
    cpu1 = {k: proc_cpu(v) for k, v in pids.items()}
    out["in"] = summarize(res, n)
    out["in"]["cpu_us"] = {k: (cpu1[k] - cpu0[k]) * 1e6 / n for k in pids}
    return out


async def run_echo(bed, tag, n, rate):
    comp = await Sink.start("component", str(bed.p.component_port), harness.COMPONENT,
                            bed.p.secret)
    await comp.cmd("wait_up")
    try:
        return await measure(bed, None, comp, comp.proc.pid, tag, n, rate)
    finally:
        await comp.quit()


async def run_gateway(bed, label, tag, n, rate):
    gw = await bed.gateway_up(label)
    try:
        return await measure(bed, gw, bed.bob, bed.bob.proc.pid, tag, n, rate)
    finally:
        gw.stop(timeout=60)


def cpu_text(c):
    return " ".join("%s %.0f" % (k, v) for k, v in sorted(c.items()))


async def bench(args):
    gateways = []
    for g in args.gateway or ["gateway=" + harness.gateway_bin()]:
        label, _, path = g.partition("=")
        gateways.append((label, os.path.abspath(path)))
    bed = await Bed().setup(gateways, receiver=args.receiver)
    print("N=%d messages of %d bytes per run, paced rate %s/s, %d rounds; receiver %s;"
          " gateways: %s" % (args.n, 300, args.rate, args.rounds, args.receiver,
                             ", ".join("%s=%s" % g for g in gateways)),
          flush=True)
    results = {}                 # (label, kind) -> [summary per round]
    for r in range(args.rounds):
        modes = [("echo", None)] + gateways
        if r % 2:
            modes.reverse()
        for label, binary in modes:
            tag = "r%d%s" % (r, label[:8])
            if label == "echo":
                out = await run_echo(bed, tag, args.n, args.rate)
            else:
                out = await run_gateway(bed, label, tag, args.n, args.rate)
            for kind, s in out.items():
                results.setdefault((label, kind), []).append(s)
            print("round %d %-10s flood %s | cpu us/msg %s" % (
                r, label, fmt(out["flood"]), cpu_text(out["flood"]["cpu_us"])), flush=True)
            if "paced" in out:
                print("round %d %-10s paced %s" % (r, label, fmt(out["paced"])), flush=True)
            print("round %d %-10s in    %s | cpu us/msg %s" % (
                r, label, fmt(out["in"]), cpu_text(out["in"]["cpu_us"])), flush=True)
    await bed.close()

    # ratios within each round, then best and median over rounds
    print()
    print("summary over %d rounds (median [best]); ratio = gateway / echo in the same round"
          % args.rounds)
    kinds = ["flood", "paced", "in"] if args.rate else ["flood", "in"]
    for kind in kinds:
        echo = results[("echo", kind)]
        e_rate = [s.get("rate", 0) for s in echo]
        print("%-5s echo      %7.0f msg/s [%7.0f]  p50 %7.2f ms  p99 %7.2f ms" % (
            kind, statistics.median(e_rate), max(e_rate),
            statistics.median(s.get("p50", 0) for s in echo),
            statistics.median(s.get("p99", 0) for s in echo)))
        for label, _ in gateways:
            g = results[(label, kind)]
            g_rate = [s.get("rate", 0) for s in g]
            ratio = [gr / er if er else 0 for gr, er in zip(g_rate, e_rate)]
            lost = sum(s["lost"] for s in g)
            print("%-5s %-9s %7.0f msg/s [%7.0f]  p50 %7.2f ms  p99 %7.2f ms  ratio %.2f [%.2f]%s" % (
                kind, label, statistics.median(g_rate), max(g_rate),
                statistics.median(s.get("p50", 0) for s in g),
                statistics.median(s.get("p99", 0) for s in g),
                statistics.median(ratio), max(ratio),
                "  LOST %d" % lost if lost else ""))
    sys.stdout.flush()


# ---------------------------------------------------------------- callgrind

def callgrind_total(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError("no totals in " + path)


async def callgrind(args):
    real = os.path.abspath((args.gateway or ["x=" + harness.gateway_bin()])[0].partition("=")[2])
    bed = await Bed().setup([("cg", real)], receiver=args.receiver)
    outdir = harness.tmpdir("callgrind")
    n = args.n
    runs = [("idle", 0, 0), ("out", n, 0), ("in", 0, n), ("idle", 0, 0), ("out", n, 0),
            ("in", 0, n)]
    totals = {}
    for i, (name, n_out, n_in) in enumerate(runs):
        out = os.path.join(outdir, "callgrind.%d.%s" % (i, name))
        wrapper = os.path.join(outdir, "gw-%d.sh" % i)
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s"
                    " %s \"$@\"\n" % (out, real))
        os.chmod(wrapper, 0o755)
        gw = await bed.gateway_up("cg", wrapper)
        tag = "cg%d" % i
        if n_out:
            await alice_send(bed.alice, tag + "o", n_out)
            res = await bed.bob.cmd("expect %so %d 600" % (tag, n_out), 610)
            assert res["got"] == n_out, res["got"]
        if n_in:
            await bed.bob.cmd("send %si %d %s %s" % (tag, n_in, ALICE, BOB), 600)
            res = await bed.rec.expect(tag + "i", n_in, 600)
            assert res["got"] == n_in, res["got"]
        rc = gw.stop(timeout=120)
        assert rc == 0, rc
        totals.setdefault(name, []).append(callgrind_total(out))
        print("callgrind run %d %-4s (%d out, %d in): %d instructions"
              % (i, name, n_out, n_in, totals[name][-1]), flush=True)
        if name == "out" and i < 3:
            totals["_out_file"] = out
        if name == "in" and i < 3:
            totals["_in_file"] = out
    await bed.close()
    idle = min(totals["idle"])
    print()
    print("instructions per translated message (N=%d, minus the run with none):" % n)
    for name, what in (("out", "XMPP -> Barev (alice -> bob)"), ("in", "Barev -> XMPP (bob -> alice)")):
        per = [(t - idle) / n for t in totals[name]]
        print("  %-30s %s   (idle run: %d, spread of idle runs %d)" % (
            what, "  ".join("%.0f" % x for x in per), idle,
            max(totals["idle"]) - min(totals["idle"])))
    if args.annotate:
        for key in ("_out_file", "_in_file"):
            print()
            print("top functions (self, whole run) in %s:" % os.path.basename(totals[key]))
            r = subprocess.run(["callgrind_annotate", "--threshold=90", totals[key]],
                               capture_output=True, text=True)
            lines = [l for l in r.stdout.splitlines() if re.match(r"\s*[\d,]+ \(", l)]
            print("\n".join(lines[:args.annotate]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="messages per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=500, help="paced run msgs/s (0: none)")
    ap.add_argument("--gateway", action="append",
                    help="LABEL=BINARY, repeatable (default: gateway=the built binary)")
    ap.add_argument("--receiver", choices=("light", "barevpeer"), default="light",
                    help="bob's process in the gateway mode: the light Barev peer"
                    " (sink.py light, default) or the full test peer (sink.py peer)")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--annotate", type=int, default=15,
                    help="with --callgrind: print this many top functions")
    args = ap.parse_args()
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR])
    asyncio.run(callgrind(args) if args.callgrind else bench(args))


if __name__ == "__main__":
    main()
