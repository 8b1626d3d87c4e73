"""bench/scale: start-up of the real daemon at scale (issue 13, first part).

For each (identities x contacts) size, a fresh SQLite database is written
with plain SQL (schema/*.sql applied in order, each with its PRAGMA
user_version as the store's migrate() does, then the rows in one
transaction, like tests/integration/test_scale.py seeds), and the release
gateway is started against a real Prosody (tests/integration/servers.py)
inside a private network namespace where one /64 is local
(`ip -6 route add local 201:1::/64 dev lo`): identity i listens on
201:1::<i+1>, its contacts p0..p(C-1) sit on 201:2::<k+1> (no peer runs:
every contact is idle, no user is online, nothing is dialled).

Per size: time from exec to the "component: link up" log line, to the last
listener bound (one "listening for Barev peers" line per identity plus the
status socket), to idle (no CPU tick for 1 s: the start-up work after link
up, e.g. roster pushes, is done), VmRSS then, and RSS per idle contact
against an empty database.  Lines are timestamped as they arrive on the
gateway's stderr pipe (its own log has 1 s resolution).

    /usr/bin/python3 bench/scale/scale.py [--sizes 10x10,100x100,1000x100] [--rounds R]
Needs root (private network namespace), Prosody.
"""
import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

import harness                                   # noqa: E402
from harness import Prosody                      # noqa: E402

PREFIX_IDENT, PREFIX_CONTACT = "201:1::", "201:2::"
PROD_TIMERS = {k: None for k in harness.TEST_TIMERS}
TICK = os.sysconf("SC_CLK_TCK")


def provision(path, n_ident, n_contacts):
    """Schema from schema/*.sql, then the rows; returns seconds spent."""
    t0 = time.monotonic()
    db = sqlite3.connect(path, isolation_level=None)
    sqldir = os.path.join(TOP, "schema")
    for name in sorted(f for f in os.listdir(sqldir) if re.match(r"\d+_.*\.sql$", f)):
        with open(os.path.join(sqldir, name)) as f:
            sql = f.read()
        db.executescript("BEGIN;\n%s\nPRAGMA user_version = %d;\nCOMMIT;"
                         % (sql, int(name.split("_", 1)[0])))
    db.execute("BEGIN")
    now = int(time.time())
    for i in range(n_ident):
        cur = db.execute("INSERT INTO identities (jid, nick, address, port, created_at)"
                         " VALUES (?, ?, ?, 1337, ?)",
                         ("u%d@example.org" % i, "u%d" % i, "%s%x" % (PREFIX_IDENT, i + 1),
                          now))
        db.executemany("INSERT INTO contacts (identity_id, nick, address, port, created_at)"
                       " VALUES (?, ?, ?, 1337, ?)",
                       [(cur.lastrowid, "p%d" % k, "%s%x" % (PREFIX_CONTACT, k + 1), now)
                        for k in range(n_contacts)])
    db.execute("COMMIT")
    db.close()
    return time.monotonic() - t0


def create_users(p, n):
    """u0..u(n-1)@example.org as real Prosody accounts: one registered with
    prosodyctl, its account file copied (same password), as prosodyctl
    would take ~0.5 s per user."""
    p.create_user("template", "pw")
    accounts = os.path.join(p.dir, "data", p.domain.replace(".", "%2e"), "accounts")
    with open(os.path.join(accounts, "template.dat")) as f:
        text = f.read()
    for i in range(n):
        with open(os.path.join(accounts, "u%d.dat" % i), "w") as f:
            f.write(text)


def lua_str(text):
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def prefill_rosters(p, n, n_contacts):
    """u0..u(n-1)'s rosters as the gateway writes them (its own JID and
    contacts p0..p(n_contacts-1): subscription both, the nick as name,
    group "Barev"), written as Prosody's roster files the way create_users
    writes accounts: a linked start then finds nothing changed."""
    def contact_jid(nick, addr, component):
        # XEP-0106, lower-cased, as tests/integration/barevworld.py
        local = (nick + "@" + addr).replace("\\", "\\5c").replace("@", "\\40")
        return local.replace(":", "\\3a").lower() + "@" + component
    rosters = os.path.join(p.dir, "data", p.domain.replace(".", "%2e"), "roster")
    os.makedirs(rosters, exist_ok=True)
    items = [(p.component, "Barev gateway")] + [
        (contact_jid("p%d" % k, "%s%x" % (PREFIX_CONTACT, k + 1), p.component), "p%d" % k)
        for k in range(n_contacts)]
    body = "".join('\t[%s] = {\n\t\t["subscription"] = "both";\n\t\t["name"] = %s;\n'
                   '\t\t["groups"] = {\n\t\t\t["Barev"] = true;\n\t\t};\n\t};\n'
                   % (lua_str(j), lua_str(name)) for j, name in items)
    text = ('return {\n\t[false] = {\n\t\t["version"] = 1;\n\t\t["pending"] = {};\n'
            '\t};\n' + body + '};\n')
    for i in range(n):
        with open(os.path.join(rosters, "u%d.dat" % i), "w") as f:
            f.write(text)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def vm_kib(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Run:
    """One start of the gateway; stderr lines timestamped on arrival."""

    def __init__(self, gwdir, config_path, binary, log_path):
        self.lines = []                         # (t since exec, text)
        self.cv = threading.Condition()
        self.log = open(log_path, "a")
        env = harness._clean_env()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([binary, "--config", config_path], cwd=gwdir,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            t = time.monotonic() - self.t0
            text = raw.decode("utf-8", "replace")
            self.log.write(text)
            with self.cv:
                self.lines.append((t, text))
                self.cv.notify_all()
        with self.cv:
            self.lines.append((None, None))
            self.cv.notify_all()

    def wait(self, pred, what, timeout=120):
        """Wait until pred(lines) is not None; returns it."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                r = pred(self.lines)
                if r is not None:
                    return r
                if self.lines and self.lines[-1][0] is None:
                    raise RuntimeError("gateway exited while waiting for " + what)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("no %s within %ss" % (what, timeout))
                self.cv.wait(left)

    def wait_idle(self, quiet=1.0, timeout=300, others=()):
        """Seconds since exec when the CPU counter last stopped moving for
        `quiet` s (its and the `others` pids' together: a gateway waiting
        for Prosody's answers is not done); None if it still moves after
        `timeout` s."""
        pids = (self.proc.pid,) + tuple(others)
        last, t_last = sum(cpu_ticks(x) for x in pids), time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            c = sum(cpu_ticks(x) for x in pids)
            if c != last:
                last, t_last = c, time.monotonic()
            elif time.monotonic() - t_last >= quiet:
                return t_last - self.t0
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def first(rx, count=1):
    """pred: time of the count-th line matching rx."""
    crx = re.compile(rx)

    def pred(lines):
        n = 0
        for t, text in lines:
            if text is not None and crx.search(text):
                n += 1
                if n == count:
                    return t
        return None
    return pred


LOG_LEVEL = "info"


IDLE_CAP = 60      # s: a linked start still busy then is reported as "> cap"


def measure(p, gw, binary, n_ident, n_contacts, linked):
    """One start against gw's database; the figures of that start.  Not
    linked: server_port is a closed port, so the gateway loads its state,
    binds its listeners and only retries the link: its idle RSS is the
    per-identity and per-contact state alone."""
    pros0 = cpu_ticks(p.proc.pid)
    run = Run(gw.dir, gw.config_path, binary, gw.log_path)
    try:
        t_up = run.wait(first(r"component: link up"), "link up") if linked else None
        t_status = run.wait(first(r"status: status socket "), "status socket")
        t_listen = run.wait(first(r"listening for Barev peers on", n_ident),
                            "%d Barev listeners" % n_ident) if n_ident else 0.0
        rss_listen = vm_kib(run.proc.pid)
        t_idle = run.wait_idle(timeout=IDLE_CAP if linked else 300,
                               others=(p.proc.pid,) if linked else ())
        rss = vm_kib(run.proc.pid)
        cpu = cpu_ticks(run.proc.pid) / TICK
        health = gw.run("--config", gw.config_path, "--health").stdout
        warnings = sum(1 for _t, text in run.lines
                       if text and re.search(r" (ERROR|WARN) ", text))
    finally:
        run.stop()
    m = re.search(r"Identities: (\d+), contacts: (\d+)", health)
    if not m or (int(m.group(1)), int(m.group(2))) != (n_ident, n_ident * n_contacts):
        raise RuntimeError("--health does not show %dx%d:\n%s" % (n_ident, n_contacts, health))
    return {"up": t_up, "listen": max(t_status, t_listen), "idle": t_idle, "rss": rss,
            "rss_listen": rss_listen, "cpu": cpu,
            "prosody": (cpu_ticks(p.proc.pid) - pros0) / TICK, "warnings": warnings}


def prosody_settle(p):
    """Prosody idle again (no CPU tick for 1 s within 5 s), else restarted:
    a backlog of roster pushes must not slow the next start."""
    last, t_last, t0 = cpu_ticks(p.proc.pid), time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < 5:
        time.sleep(0.1)
        c = cpu_ticks(p.proc.pid)
        if c != last:
            last, t_last = c, time.monotonic()
        elif time.monotonic() - t_last >= 1:
            return False
    p.stop(timeout=30)
    p.start()
    return True


def start_sizes(p, label, n_ident, n_contacts, binary, rnd, linked=True):
    """Fresh database; a start without the server, then one linked."""
    gwdir = harness.tmpdir("gw-%s-r%d" % (label, rnd))
    gw = harness.Gateway(p, gwdir, config=dict(PROD_TIMERS, log_level=LOG_LEVEL),
                         binary=binary)
    prov = provision(gw.config["database"], n_ident, n_contacts)
    linked_port = gw.config["server_port"]
    gw.config["server_port"] = str(harness.free_port())     # nothing listens there
    gw.write_config()
    out = {"offline": measure(p, gw, binary, n_ident, n_contacts, False)}
    out["offline"]["prov"] = prov
    if not linked:
        return out
    gw.config["server_port"] = linked_port
    gw.write_config()
    out["linked"] = measure(p, gw, binary, n_ident, n_contacts, True)
    out["linked"]["restarted"] = prosody_settle(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x10,100x100,1000x100")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", action="append", default=None,
                    help="PATH or LABEL=PATH; repeated, the builds are compared in one"
                         " run (each round starts every build in turn)")
    ap.add_argument("--no-linked", action="store_true",
                    help="only the starts without the server (RSS per idle contact,"
                         " listeners): no roster pushes, minutes shorter")
    ap.add_argument("--prefilled-rosters", action="store_true",
                    help="users' rosters already hold every item (a restart"
                    " with nothing changed), written as Prosody files")
    ap.add_argument("--log-level", default="info",
                    help="the gateway's (debug shows what the start-up work is)")
    args = ap.parse_args()
    global LOG_LEVEL
    LOG_LEVEL = args.log_level
    import netns
    netns.enter([])
    subprocess.run(["ip", "-6", "route", "add", "local", PREFIX_IDENT + "/64", "dev", "lo"],
                   check=True)
    builds = []
    for b in args.binary or [harness.gateway_bin()]:
        label, _eq, path = b.rpartition("=")
        builds.append((label or "this", os.path.abspath(path)))
    sizes = [(0, 0)] + [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    p = Prosody(harness.tmpdir("prosody"), log_level="info")
    p.start()
    create_users(p, max(ni for ni, _nc in sizes))
    if args.prefilled_rosters:
        prefill_rosters(p, max(ni for ni, _nc in sizes), max(nc for _ni, nc in sizes))
    for blabel, binary in builds:
        print("gateway %s: %s" % (blabel, binary), flush=True)
    print("%d rounds per size, median [worst]; 2-core VM shared with other jobs%s"
          % (args.rounds, "; rosters prefilled" if args.prefilled_rosters else ""),
          flush=True)
    res = {}
    try:
        for rnd in range(args.rounds):
            for ni, nc in sizes:
                for blabel, binary in builds:
                    label = "%dx%d" % (ni, nc)
                    out = start_sizes(p, label, ni, nc, binary, rnd,
                                      linked=not args.no_linked)
                    for kind, r in out.items():
                        res.setdefault((blabel, ni, nc, kind), []).append(r)
                        print("round %d %-9s %-7s%s link up %s  listeners %.3fs  idle %s"
                              "  cpu %.2fs (prosody %.2fs)  VmRSS %d KiB (%d at listeners)"
                              "  warnings %d%s%s"
                              % (rnd, label, kind,
                                 " " + blabel if len(builds) > 1 else "",
                                 "-" if r["up"] is None else "%.3fs" % r["up"],
                                 r["listen"], "> %ds" % IDLE_CAP if r["idle"] is None
                                 else "%.2fs" % r["idle"], r["cpu"], r["prosody"], r["rss"],
                                 r["rss_listen"], r["warnings"],
                                 "  (provisioned in %.2fs)" % r["prov"] if "prov" in r
                                 else "",
                                 "  (prosody still busy: restarted)" if r.get("restarted")
                                 else ""),
                              flush=True)
    finally:
        p.stop()

    def med(size, key):
        return statistics.median(r[key] for r in res[size] if r[key] is not None)

    def worst(size, key):
        return max(r[key] for r in res[size])

    for blabel, binary in builds:
        base = med((blabel, 0, 0, "offline"), "rss")
        print()
        print("summary%s, median [worst] of %d starts; 2-core VM shared with other jobs"
              % (" of " + blabel if len(builds) > 1 else "", args.rounds))
        print("VmRSS of an idle gateway with an empty database: %d KiB" % base)
        for ni, nc in sizes[1:]:
            label = "%dx%d" % (ni, nc)
            n = ni * nc
            target = (ni, nc) == (1000, 100)
            tgt = "  target <= 1 s" if target else ""
            off, lk = (blabel, ni, nc, "offline"), (blabel, ni, nc, "linked")
            if lk in res:
                print("startup %-9s exec->link up                %7.3f s [%7.3f]%s" % (
                    label, med(lk, "up"), worst(lk, "up"), tgt))
                print("startup %-9s exec->all listeners (linked) %7.3f s [%7.3f]%s" % (
                    label, med(lk, "listen"), worst(lk, "listen"), tgt))
            print("startup %-9s exec->all listeners (no srv) %7.3f s [%7.3f]%s" % (
                label, med(off, "listen"), worst(off, "listen"), tgt))
            if lk in res:
                idle = [r["idle"] for r in res[lk]]
                print("startup %-9s exec->idle (linked)          %s  cpu gateway %.2f s,"
                      " prosody %.2f s, gateway warnings %d" % (
                          label, "> %d s" % IDLE_CAP if None in idle else
                          "%7.3f s [%7.3f]" % (statistics.median(idle), max(idle)),
                          med(lk, "cpu"), med(lk, "prosody"), worst(lk, "warnings")))
            per = (med(off, "rss") - base) * 1024 / n
            print("startup %-9s RSS per idle contact (no srv) %6.0f B  (VmRSS %d KiB)%s" % (
                label, per, med(off, "rss"),
                "  target <= 1024 B (issue 13 baseline ~2 KiB)" if target else ""))
            if lk in res:
                per = (med(lk, "rss") - base) * 1024 / n
                print("startup %-9s RSS per contact (linked)      %6.0f B  (VmRSS %d KiB)" % (
                    label, per, med(lk, "rss")))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
