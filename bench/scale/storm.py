"""bench/scale storm: live pipes in the full daemon, then a reconnect storm
(issue 13).

U users x C online contacts: the release gateway with U identities
(u<i>@example.org on 201:1::<i+1>) and C contacts each (p<k> on
201:2::<k+1>, written with plain SQL as bench/scale/scale.py does), a real
Prosody (tests/integration/servers.py, the stock config + the example), U
users logged in by one light process (xmppusers.py: raw asyncio + TLS), and
every Barev peer in one light process (barevpeers.py: one listener per
contact address, purple's bytes).  All in a private network namespace where
201:1::/64 and 201:2::/64 are local.

1. Live pipes.  The gateway starts, links and finishes its roster pushes
   (CPU of it and Prosody quiet 1 s): VmRSS idle.  The users log in with
   status "gen0"; when every peer (i, k) has a pipe up and has seen u_i's
   available presence with that status, and the gateway is quiet: VmRSS
   with U x C pipes.  RSS per pipe = (VmRSS with pipes - VmRSS of a start
   with no server) / pipes: it includes the per-user online state, the
   per-contact state a live pipe adds, and the heap the link-up roster
   pushes left behind (an upper bound); against the idle VmRSS after those
   pushes it is a lower bound (the pipes reuse that heap).  Idle CPU: the
   gateway's utime+stime over IDLE s (default 60: one round of its pings).
2. Reconnect storm.  Prosody is killed (SIGKILL) and started again at once;
   the users' streams end and they log in again with jittered backoff,
   now with status "gen1".  Meanwhile every user's first contact's peer
   sends her one message on its pipe (the link is down: the gateway keeps
   it), and every user, once logged in again and shown her first
   contact online, sends that contact one message.  Measured from the
   kill: time until every peer (i, k) has a pipe up on which u_i's
   "gen1" presence arrived, the dials (in flight, polled every 50 ms from
   the OpenMetrics endpoint, and the daemon's own peak counter), fds used
   (polled) against the limit, "Too many open files" in the log, and the
   messages each way (lost = sent - arrived, and duplicates).

    /usr/bin/python3 bench/scale/storm.py [--users U] [--contacts C]
        [--max-dials N] [--idle S] [--timeout S]
Needs root (private network namespace), Prosody.
"""
import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, HERE)

import harness                                   # noqa: E402
from harness import Prosody                      # noqa: E402
from scale import (provision, create_users, cpu_ticks, vm_kib, Run, first,  # noqa: E402
                   PROD_TIMERS, TICK)


class Child:
    """A helper process with a one-JSON-line-per-command protocol."""

    def __init__(self, argv, log_path):
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen([sys.executable] + argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  bufsize=1)
        self.lock = threading.Lock()
        if not json.loads(self.p.stdout.readline()).get("ready"):
            raise RuntimeError("%s did not start" % argv[0])

    def cmd(self, line):
        with self.lock:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            out = self.p.stdout.readline()
        if not out:
            raise RuntimeError("%s died (see %s)" % (line, self.log.name))
        return json.loads(out)

    def wait(self, line, pred, timeout, every=0.2):
        """Run `line` until pred(answer); the last answer, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.cmd(line)
            if pred(r):
                return r
            if time.monotonic() > deadline:
                return None
            time.sleep(every)

    def quit(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
            self.p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
        self.log.close()


def metrics(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    m = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _sp, val = line.rpartition(" ")
        try:
            m[name] = float(val)
        except ValueError:
            pass
    return m


class Poller:
    """The OpenMetrics endpoint every `every` s: maxima of the gauges."""

    KEYS = {"in_flight": 'barev_dials{state="in_flight"}',
            "waiting": 'barev_dials{state="waiting"}',
            "fds": 'barev_fds{kind="used"}',
            "handshake": 'barev_pipes{state="handshake"}'}

    def __init__(self, url, every=0.05):
        self.url, self.every = url, every
        self.max = {k: 0 for k in self.KEYS}
        self.min_pipes = None
        self.samples = 0
        self.errors = 0
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                m = metrics(self.url)
            except OSError:
                self.errors += 1
            else:
                self.samples += 1
                for k, name in self.KEYS.items():
                    self.max[k] = max(self.max[k], m.get(name, 0))
                up = m.get('barev_pipes{state="up"}', 0)
                self.min_pipes = up if self.min_pipes is None else min(self.min_pipes, up)
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.th.join()


class Wchan:
    """What the gateway's thread waits in, sampled every 10 ms
    (/proc/PID/wchan): where a blocked event loop spends its time."""

    def __init__(self, pid, every=0.01):
        self.path = "/proc/%d/wchan" % pid
        self.every = every
        self.counts = {}
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                with open(self.path) as f:
                    w = f.read().strip() or "0"
            except OSError:
                return
            self.counts[w] = self.counts.get(w, 0) + 1
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.th.join()
        return sorted(self.counts.items(), key=lambda kv: -kv[1])[:6]


def quiet(pids, quiet_s=1.0, timeout=300):
    """Seconds waited until the CPU of pids stayed still quiet_s; None on timeout."""
    t0 = time.monotonic()
    last, t_last = sum(cpu_ticks(x) for x in pids), time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.1)
        c = sum(cpu_ticks(x) for x in pids)
        if c != last:
            last, t_last = c, time.monotonic()
        elif time.monotonic() - t_last >= quiet_s:
            return time.monotonic() - t0
    return None


def log(msg):
    print("# " + msg, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--contacts", type=int, default=10)
    ap.add_argument("--max-dials", type=int, default=None,
                    help="max_concurrent_dials (default: the daemon's)")
    ap.add_argument("--idle", type=float, default=60.0,
                    help="idle CPU window, s (the default covers one round of the"
                    " gateway's pings: barev_ping_idle is 60 s)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="give up on a phase after this many s")
    ap.add_argument("--away", type=float, default=0.0,
                    help="users wait this many s before logging in again after the"
                    " kill (> the gateway's 3 s resync grace: every pipe is re-dialled)")
    ap.add_argument("--hold", default=None,
                    help="server_restart_hold (default: the daemon's, 120s); 0 = off:"
                    " users not back within the 3 s resync grace go offline and"
                    " their pipes are closed and re-dialled (the behaviour before it)")
    ap.add_argument("--binary", default=None)
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args()
    import netns
    if os.environ.get("BAREV_TEST_NETNS") != str(os.getpid()):
        # before the re-exec: room for every pipe on both ends, if allowed
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
        except (ValueError, OSError):
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    netns.enter([])
    for pfx in ("201:1::/64", "201:2::/64"):
        subprocess.run(["ip", "-6", "route", "add", "local", pfx, "dev", "lo"], check=True)
    U, C = args.users, args.contacts
    n_pipes = U * C
    binary = os.path.abspath(args.binary or harness.gateway_bin())
    p = Prosody(harness.tmpdir("prosody"), log_level="info")
    p.start()
    create_users(p, U)
    http_port = harness.free_port()
    gwdir = harness.tmpdir("gw-storm")
    cfg = dict(PROD_TIMERS, log_level=args.log_level, http_listen="127.0.0.1:%d" % http_port,
               metrics_path="/metrics")
    if args.max_dials:
        cfg["max_concurrent_dials"] = str(args.max_dials)
    if args.hold is not None:
        cfg["server_restart_hold"] = args.hold
    gw = harness.Gateway(p, gwdir, config=cfg, binary=binary)
    prov = provision(gw.config["database"], U, C)
    url = "http://127.0.0.1:%d/metrics" % http_port
    print("gateway %s; %d users x %d contacts (provisioned in %.2f s);"
          " 2-core VM shared with other jobs; fd limit %s"
          % (binary, U, C, prov, resource.getrlimit(resource.RLIMIT_NOFILE)), flush=True)
    peers = users = run = None
    res = {}
    try:
        peers = Child([os.path.join(HERE, "barevpeers.py"), str(U), str(C)],
                      os.path.join(gwdir, "peers.log"))
        # the state of the identities and contacts alone: a start without
        # the server (no roster pushes, whose freed memory the allocator
        # keeps and the pipes would reuse)
        linked_port = gw.config["server_port"]
        gw.config["server_port"] = str(harness.free_port())
        gw.write_config()
        run = Run(gw.dir, gw.config_path, binary, gw.log_path)
        run.wait(first(r"listening for Barev peers on", U), "%d listeners" % U)
        quiet((run.proc.pid,), timeout=60)
        rss_cold = vm_kib(run.proc.pid)
        run.stop()
        gw.config["server_port"] = linked_port
        gw.write_config()
        log("VmRSS with no server (identities and contacts alone): %d KiB" % rss_cold)
        run = Run(gw.dir, gw.config_path, binary, gw.log_path)
        run.wait(first(r"component: link up"), "link up")
        t = quiet((run.proc.pid, p.proc.pid), timeout=args.timeout)
        log("linked; roster pushes done after %s s" % ("> %d" % args.timeout if t is None
                                                       else "%.1f" % t))
        rss_idle = vm_kib(run.proc.pid)
        m0 = metrics(url)
        log("idle VmRSS %d KiB, fds %d, limit %d" % (rss_idle, m0['barev_fds{kind="used"}'],
                                                     m0['barev_fds{kind="limit"}']))

        # ---- 1. live pipes
        users = Child([os.path.join(HERE, "xmppusers.py"), str(p.c2s_port), p.ca_file,
                       p.domain, p.component, str(U), str(C)],
                      os.path.join(gwdir, "users.log"))
        t0 = time.monotonic()
        users.cmd("login 0")
        r = users.wait("stats", lambda r: r["online"] == U, args.timeout)
        t_login = time.monotonic() - t0
        log("users online after %.1f s: %s" % (t_login, users.cmd("stats")))
        r = peers.wait("gen 0", lambda r: r["n"] == n_pipes, args.timeout, every=0.5)
        t_up = time.monotonic() - t0
        log("pipes with gen0 after %.1f s: %s; peers %s"
            % (t_up, peers.cmd("gen 0"), peers.cmd("stats")))
        if r is None:
            raise RuntimeError("not every pipe came up with gen0 presence")
        t = quiet((run.proc.pid,), timeout=60)
        rss_pipes = vm_kib(run.proc.pid)
        m1 = metrics(url)
        c0 = cpu_ticks(run.proc.pid)
        p0 = peers.cmd("stats")
        time.sleep(args.idle)
        c1 = cpu_ticks(run.proc.pid)
        p1 = peers.cmd("stats")
        res["pipes"] = m1['barev_pipes{state="up"}']
        res["rss_idle"], res["rss_pipes"], res["rss_cold"] = rss_idle, rss_pipes, rss_cold
        res["idle_cpu"] = (c1 - c0) / TICK
        res["idle_pings"] = p1["pings"] - p0["pings"]
        res["t_up"] = t_up
        res["fds_up"] = m1['barev_fds{kind="used"}']
        log("pipes up %d, VmRSS %d KiB (quiet after %s s), idle CPU %.2f s over %.0f s"
            " (%d pings answered)" % (res["pipes"], rss_pipes, t, res["idle_cpu"], args.idle,
                                      res["idle_pings"]))

        # ---- 2. reconnect storm
        users.cmd("gen 1")
        users.cmd("away %g" % args.away)
        users.cmd("send_on_login s2b")
        started0 = m1["barev_dials_started_total"]
        peak0 = m1["barev_dials_peak"]
        poll = Poller(url)
        wchan = Wchan(run.proc.pid)
        time.sleep(0.3)
        mark = len(run.lines)
        cpu0 = {k: cpu_ticks(pid) for k, pid in (("gateway", run.proc.pid),
                                                  ("peers", peers.p.pid),
                                                  ("users", users.p.pid))}
        t_kill = time.monotonic_ns()
        os.killpg(p.proc.pid, signal.SIGKILL)
        p.proc.wait()
        sent_b2x = peers.cmd("send b2x")["sent"]      # the link is down now
        p.start()
        t_prosody = (time.monotonic_ns() - t_kill) / 1e9
        log("prosody back after %.2f s; peers sent %d messages to users meanwhile"
            % (t_prosody, sent_b2x))
        r = peers.wait("gen 1", lambda r: r["n"] == n_pipes, args.timeout, every=0.2)
        back = peers.cmd("gen 1")
        cpu = {k: (cpu_ticks(pid) - cpu0[k]) / TICK for k, pid in (
            ("gateway", run.proc.pid), ("peers", peers.p.pid), ("users", users.p.pid))}
        cpu["prosody"] = cpu_ticks(p.proc.pid) / TICK
        t_cpu = (time.monotonic_ns() - t_kill) / 1e9
        load = os.getloadavg()
        t_back = (back["t_last"] - t_kill) / 1e9 if back["t_last"] else None
        ustats = users.cmd("stats")
        log("gen1 at %d of %d pipes; users %s" % (back["n"], n_pipes, ustats))
        # messages each way, bounded
        s2b = peers.wait("msgs s2b", lambda r: r["got"] >= U, 60)
        s2b = peers.cmd("msgs s2b")
        ustats = users.cmd("stats")
        b2x = users.wait("msgs b2x", lambda r: r["got"] >= sent_b2x, 60)
        b2x = users.cmd("msgs b2x")
        time.sleep(1)                                  # one more poll round
        poll.stop()
        wch = wchan.stop()
        m2 = metrics(url)
        log_after = "".join(text for _t, text in run.lines[mark:] if text)

        def since_kill(rx, last=False):
            """s from the kill to the first (last) gateway line matching rx"""
            ts = [t for t, text in run.lines[mark:] if text and re.search(rx, text)]
            if not ts:
                return None
            return run.t0 + (ts[-1] if last else ts[0]) - t_kill / 1e9
        ul = users.cmd("last_login")
        res.update({
            "t_back": t_back, "n_back": back["n"], "t_prosody": t_prosody,
            "cpu": cpu, "t_cpu": t_cpu, "load": load,
            "t_link": since_kill(r"component: link up"),
            "t_inbox": since_kill(r"delivered \d+ message\(s\) held"), "wchan": wch,
            "t_grant": since_kill(r"granted roster privilege"),
            "t_grace_off": since_kill(r"bridge: \S+ is offline"),
            "n_offline": len(re.findall(r"bridge: \S+ is offline", log_after)),
            "t_online_first": since_kill(r"bridge: \S+ is online"),
            "t_online_last": since_kill(r"bridge: \S+ is online", True),
            "n_online": len(re.findall(r"bridge: \S+ is online", log_after)),
            "t_pipe_last": since_kill(r"bridge: pipe up", True),
            "t_logins": (ul["t_last"] - t_kill) / 1e9 if ul["t_last"] else None,
            "in_flight_max": poll.max["in_flight"], "waiting_max": poll.max["waiting"],
            "fds_max": poll.max["fds"], "fds_limit": m2['barev_fds{kind="limit"}'],
            "min_pipes": poll.min_pipes, "samples": poll.samples,
            "peak": m2["barev_dials_peak"], "peak0": peak0,
            "dials_max": m2["barev_dials_max"],
            "dials": m2["barev_dials_started_total"] - started0,
            "emfile": len(re.findall(r"Too many open files", log_after)),
            "warnings": len(re.findall(r" (WARN|ERROR) ", log_after)),
            "s2b_sent": ustats["sent"], "s2b_got": s2b["got"], "s2b_dups": s2b["dups"],
            "b2x_sent": sent_b2x, "b2x_got": b2x["got"], "b2x_dups": b2x["dups"],
            "user_errors": ustats["errors"], "pipes_after": m2['barev_pipes{state="up"}'],
            "peers": peers.cmd("stats"),
        })
        log("storm: %s" % {k: v for k, v in res.items() if k != "peers"})
        log("peers after: %s" % res["peers"])
    finally:
        for c in (users, peers):
            if c:
                c.quit()
        if run:
            run.stop()
        p.stop()
    report(res, U, C, args)


def report(r, U, C, args):
    n = U * C
    label = "%dx%d" % (U, C)
    slabel = label + (" away%gs" % args.away if args.away else "")
    per = (r["rss_pipes"] - r["rss_idle"]) * 1024 / n
    print()
    print("summary, one run; 2-core VM shared with other jobs")
    print("pipes %-9s pipes up                  %6d of %d (all up %.1f s after the"
          " first login)" % (label, r["pipes"], n, r["t_up"]))
    cold = (r["rss_pipes"] - r["rss_cold"]) * 1024 / n
    print("pipes %-9s RSS per pipe              %6.0f B  (VmRSS %d KiB with pipes, %d KiB"
          " with no server)  target <= 8 KiB (bl alone 5.1 KiB)" % (
              label, cold, r["rss_pipes"], r["rss_cold"]))
    print("pipes %-9s RSS per pipe, lower bound %6.0f B  (against VmRSS %d KiB idle after"
          " the roster pushes, whose freed heap the pipes reuse)" % (
              label, per, r["rss_idle"]))
    print("pipes %-9s idle CPU                  %6.2f s per 10 s (%.2f s over %.0f s, %.2f%%;"
          " %d pings answered meanwhile)  target ~0" % (
              label, r["idle_cpu"] * 10 / args.idle, r["idle_cpu"], args.idle,
              100 * r["idle_cpu"] / args.idle, r["idle_pings"]))
    tb = "%.1f s" % r["t_back"] if r["t_back"] is not None and r["n_back"] == n else \
        "not all (%d of %d in %.0f s)" % (r["n_back"], n, args.timeout)
    print("storm %-9s all presence back at peers %s after the kill (Prosody listening"
          " %.1f s)  target <= 60 s" % (slabel, tb, r["t_prosody"]))
    def f(x):
        return "?" if x is None else "%.1f" % x
    print("storm %-9s timeline after the kill: link up %s s, inbox delivered %s s,"
          " roster privilege %s s, users"
          " all logged in %s s, resync grace over (first 'is offline') %s s (%d offline),"
          " users online at the gateway %s-%s s (%d), last pipe up %s s" % (
              slabel, f(r["t_link"]), f(r["t_inbox"]), f(r["t_grant"]), f(r["t_logins"]), f(r["t_grace_off"]),
              r["n_offline"], f(r["t_online_first"]), f(r["t_online_last"]), r["n_online"],
              f(r["t_pipe_last"])))
    if r["t_online_first"] is not None and r["t_pipe_last"] is not None:
        d = r["t_pipe_last"] - r["t_online_first"]
        print("storm %-9s re-dial phase: %d dials from the first user back online to the last"
              " pipe up in %.1f s (%.0f per s)" % (slabel, r["dials"], d, r["dials"] / d))
    print("storm %-9s CPU from the kill until all back (%.1f s): %s; machine load average"
          " then %.1f %.1f %.1f (2 cores)" % (
              slabel, r["t_cpu"], ", ".join("%s %.1f s" % kv for kv in r["cpu"].items()),
              *r["load"]))
    print("storm %-9s gateway thread waiting in (10 ms samples, kill to end): %s" % (
        slabel, ", ".join("%s %d" % kv for kv in r["wchan"])))
    print("storm %-9s concurrent dials           max %d polled (%d samples), daemon peak %d"
          " (before the storm %d), cap %d; %d dials, %d waiting at most  target <= cap" % (
              slabel, r["in_flight_max"], r["samples"], r["peak"], r["peak0"],
              r["dials_max"], r["dials"], r["waiting_max"]))
    print("storm %-9s fds                        max %d used of %d; 'Too many open files'"
          " %d times; pipes up min %d during, %d after" % (
              slabel, r["fds_max"], r["fds_limit"], r["emfile"], r["min_pipes"],
              r["pipes_after"]))
    print("storm %-9s messages to Barev          %d sent, %d arrived, %d lost, %d dup"
          "  target 0 lost" % (slabel, r["s2b_sent"], r["s2b_got"],
                               r["s2b_sent"] - r["s2b_got"], r["s2b_dups"]))
    print("storm %-9s messages to XMPP           %d sent, %d arrived, %d lost, %d dup"
          " (%d message errors at users)  target 0 lost" % (
              slabel, r["b2x_sent"], r["b2x_got"], r["b2x_sent"] - r["b2x_got"],
              r["b2x_dups"], r["user_errors"]))
    print("storm %-9s gateway warnings after the kill: %d" % (slabel, r["warnings"]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
