"""Integration-test harness: a real Prosody, the gateway under test, and
slixmpp clients, all on loopback, all torn down at exit.

A test file is a script of `async def test_*` scenarios, run in file order
by `harness.main()`; the first failure stops the run and prints what was
expected, what was seen, and the tail of every log.  The last line is
always `N passed, M failed`; the exit status is 0 only if nothing failed.

    import harness
    from harness import Prosody, Gateway, Client, expect

    async def setup():                      # optional; shared by every test
        p = Prosody(harness.tmpdir("prosody")); p.start()
        p.create_user("alice", "alice")
        gw = Gateway(p, harness.tmpdir("gw")); gw.start()
        await gw.wait_up()
        return p, gw

    async def test_gateway_answers_ping(ctx):
        p, gw = ctx
        alice = Client("alice@example.org", "alice", p)
        await alice.connect_and_wait()
        await alice.ping(p.component)

    if __name__ == "__main__":
        harness.main()

Conventions (see README.md here):
- Process control (`start`, `stop`, `restart`, `kill`, `create_user`) is
  synchronous and bounded; everything that waits for the gateway or the
  server to *do* something is a coroutine with a timeout (`await
  gw.wait_log(...)`, `await client.wait_message(...)`), so slixmpp keeps
  running on the same asyncio loop while a test waits.
- Waits use a cursor: each `wait_*` looks at what arrived after the previous
  successful wait of the same kind (log, message, presence), including what
  arrived before the call.  `mark()` moves the cursor to "now".
- Every child process is in its own process group, gets SIGKILL when this
  interpreter dies (PR_SET_PDEATHSIG) and is killed at exit.
- Env: BAREV_GATEWAY_BIN (the binary; CTest sets it), BAREV_SOURCE_DIR,
  BAREV_TEST_KEEP=1 keeps the temp dir, BAREV_TEST_VERBOSE=1 logs slixmpp.
"""
import asyncio
import atexit
import ctypes
import glob
import inspect
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("BAREV_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "lib"))

DOMAIN = "example.org"
COMPONENT = "barev.example.org"
UPLOAD = "upload.example.org"
SECRET = "test-component-secret"


class TestFailure(AssertionError):
    """A scenario saw something other than what it expected."""


class Skip(Exception):
    """Raised by skip(): the test did not run (never counted as passed)."""


SKIP_EXIT = 77      # CTest's SKIP_RETURN_CODE for every integration script


def skip(reason):
    """Stop this test here: reported as SKIP, and the script exits
    SKIP_EXIT (CTest shows it as skipped) unless something failed."""
    raise Skip(reason)


def expect(cond, what, expected=None, seen=None):
    """Fail with `what: expected X, seen Y` unless cond holds."""
    if not cond:
        msg = what
        if expected is not None or seen is not None:
            msg += "\n  expected: %r\n  seen:     %r" % (expected, seen)
        raise TestFailure(msg)


def expect_eq(seen, expected, what):
    expect(seen == expected, what, expected, seen)


# ---------------------------------------------------------------- temp + procs

_root = None
_procs = []          # every child we started: killed at exit
_logs = []           # (label, path) of every log, tailed on failure
_gateways = []       # stopped (SIGTERM) and checked after the last test


def tmpdir(name):
    """A fresh directory under this run's temp root (removed at exit unless
    a test failed or BAREV_TEST_KEEP=1)."""
    global _root
    if _root is None:
        _root = tempfile.mkdtemp(prefix="barev-it-")
    d = os.path.join(_root, name)
    n = 1
    while os.path.exists(d):
        n += 1
        d = os.path.join(_root, "%s-%d" % (name, n))
    os.makedirs(d)
    return d


_ports_given = set()


def free_port(preferred=None):
    """A loopback TCP port nobody listens on (`preferred` if it is free),
    never one this process handed out before: nothing listens on a port
    until the server it is for starts, so the kernel may offer the same
    free port twice in a row (Prosody once got http_ports and https_ports
    equal, and served plain HTTP where the upload links said https)."""
    if preferred and preferred not in _ports_given:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", preferred))
            _ports_given.add(preferred)
            return preferred
        except OSError:
            pass
        finally:
            s.close()
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def read_metrics(port):
    """{sample name with labels: value} from the gateway's /metrics on
    127.0.0.1:port; checks the OpenMetrics format on the way."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode()
    expect(ctype.startswith("application/openmetrics-text"),
           "OpenMetrics content type", "application/openmetrics-text", ctype)
    lines = text.rstrip("\n").split("\n")
    expect_eq(lines[-1], "# EOF", "the last line of /metrics")
    out, types = {}, {}
    for ln in lines[:-1]:
        if ln.startswith("# TYPE "):
            _, _, fam, typ = ln.split(" ", 3)
            types[fam] = typ
            continue
        if ln.startswith("#"):
            continue
        name, value = ln.rsplit(" ", 1)
        fam = name.split("{")[0]
        if fam.endswith("_total"):
            expect_eq(types.get(fam[:-6]), "counter", "family of " + name)
        else:
            expect(fam in types, "a TYPE line for " + fam, fam, types)
        out[name] = float(value)
    return out


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # Runs in the child between fork and exec: die with the test.
    _libc.prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG


# A test re-executed by tests/lib/netns.py inside `unshare -n` must not
# outlive the outer process CTest watches (a timeout kills only that one).
if os.environ.get("BAREV_TEST_NETNS") in ("pending", str(os.getpid())):
    _child_setup()


def _spawn(argv, log_path, env=None, cwd=None):
    f = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             start_new_session=True,
                             preexec_fn=_child_setup)
    finally:
        f.close()
    _procs.append(p)
    return p


def _killpg(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_proc(p, timeout):
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
    if p.poll() is None:
        _killpg(p, signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(p, signal.SIGKILL)
            p.wait(5)
    _killpg(p, signal.SIGKILL)          # anything it left in its group
    return p.returncode


@atexit.register
def _cleanup():
    for p in _procs:
        if p.poll() is None:
            _killpg(p, signal.SIGKILL)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    if _root and not _failed and os.environ.get("BAREV_TEST_KEEP") != "1":
        shutil.rmtree(_root, ignore_errors=True)


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "(no log at %s)" % path
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------- servers
# Prosody, Ejabberd, Server() and server_kind() live in servers.py (imported
# at the end of this file: they use the helpers above).

# ---------------------------------------------------------------- Gateway

def gateway_bin():
    b = os.environ.get("BAREV_GATEWAY_BIN")
    if b:
        return b
    found = sorted(glob.glob(os.path.join(SOURCE_DIR, "build*", "**", "barev-gateway"),
                             recursive=True), key=os.path.getmtime)
    found = [f for f in found if os.access(f, os.X_OK) and os.path.isfile(f)]
    if not found:
        raise TestFailure("no barev-gateway binary: set BAREV_GATEWAY_BIN or build it")
    return found[-1]


# Short timers so Barev scenarios finish in seconds, not minutes.
TEST_TIMERS = {
    "barev_ping_idle": "5s",
    "barev_ping_timeout": "3s",
    "barev_header_timeout": "3s",
    "barev_silent_initiator": "1s",
    "barev_backoff_min": "1s",
    "barev_backoff_max": "4s",
}


def _clean_env(extra=None):
    """Our environment minus every BAREV_GATEWAY_* (the gateway reads those
    as config overrides; BAREV_GATEWAY_BIN would be one), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAREV_GATEWAY_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.update(extra or {})
    return env


_SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error: |"
                        r"UndefinedBehaviorSanitizer")


class Gateway:
    """The barev-gateway under test, configured for `prosody`.

    `config` overrides/extends the generated config (a value of None drops
    the key); `env` is added to its environment (BAREV_GATEWAY_<KEY>=...
    overrides work as in production).  stderr goes to `log_path`.
    """

    def __init__(self, prosody, tmpdir, config=None, env=None, binary=None):
        self.prosody = prosody
        self.dir = tmpdir
        self.binary = binary or gateway_bin()
        self.config_path = os.path.join(tmpdir, "gateway.conf")
        self.log_path = os.path.join(tmpdir, "gateway.log")
        self.env = _clean_env(env)
        cfg = {
            "component_jid": prosody.component if prosody else COMPONENT,
            "component_secret": prosody.secret if prosody else SECRET,
            "server_host": "127.0.0.1",
            "server_port": str(prosody.component_port if prosody else 5347),
            "database": os.path.join(tmpdir, "gateway.sqlite"),
            "admins": "admin@" + (prosody.domain if prosody else DOMAIN),
            "log_level": "debug",
            "spool_dir": os.path.join(tmpdir, "spool"),
        }
        if prosody:
            cfg["upload_service"] = prosody.upload_service
            cfg["download_hosts"] = prosody.download_host
        cfg.update(TEST_TIMERS)
        cfg.update(config or {})
        self.config = {k: v for k, v in cfg.items() if v is not None}
        if self.config.get("spool_dir"):
            os.makedirs(self.config["spool_dir"], exist_ok=True)
        self.write_config()
        self.proc = None
        self._pos = 0
        open(self.log_path, "ab").close()
        _logs.append(("gateway", self.log_path))
        _gateways.append(self)

    def write_config(self, text=None):
        """(Re)write the config file from self.config, or verbatim `text`."""
        if text is None:
            text = "# written by tests/integration/harness.py\n" + "".join(
                "%s = %s\n" % (k, v) for k, v in self.config.items())
        with open(self.config_path, "w") as f:
            f.write(text)

    def run(self, *args, timeout=20):
        """Run the binary to completion (e.g. "--test-config"): CompletedProcess
        with .returncode and .stdout/.stderr text."""
        r = subprocess.run([self.binary] + list(args), env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        if _SANITIZER.search(r.stdout + r.stderr):
            raise TestFailure("sanitizer report from barev-gateway %s:\n%s"
                              % (" ".join(args), r.stderr[-4000:]))
        return r

    def start(self):
        self.proc = _spawn([self.binary, "--config", self.config_path],
                           self.log_path, env=self.env, cwd=self.dir)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, timeout=10):
        """SIGTERM and wait (bounded). Returns the exit code; fails if a
        sanitizer reported anything."""
        rc = None
        if self.proc:
            rc = _stop_proc(self.proc, timeout)
            self.proc = None
        self.check_sanitizers()
        return rc

    def kill(self):
        """SIGKILL, like a crash or `kill -9`."""
        if self.proc:
            _killpg(self.proc, signal.SIGKILL)
            self.proc.wait(5)
            self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def check_sanitizers(self):
        m = _SANITIZER.search(self.log_text())
        if m:
            raise TestFailure("sanitizer report in the gateway log:\n"
                              + tail(self.log_path, 60))

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def mark(self):
        """Move the log cursor to the end: later waits see only new lines."""
        self._pos = os.path.getsize(self.log_path)
        return self._pos

    async def wait_log(self, regex, timeout=10, since=None):
        """Wait for a log line matching `regex` (re.M) after the cursor (or
        byte offset `since`); returns the re.Match and moves the cursor past
        it.  On timeout fails with the log tail."""
        rx = re.compile(regex, re.M)
        start = self._pos if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            text = self.log_text(start)
            m = rx.search(text)
            if m:
                nl = text.find("\n", m.end())
                upto = text if nl < 0 else text[:nl + 1]
                self._pos = start + len(upto.encode())
                return m
            if exited:
                raise TestFailure("gateway exited (%s) while waiting for /%s/:\n%s"
                                  % (self.proc.returncode, regex, tail(self.log_path)))
            if time.monotonic() > deadline:
                raise TestFailure("expected a gateway log line /%s/ within %ss; "
                                  "last lines:\n%s" % (regex, timeout, tail(self.log_path)))
            await asyncio.sleep(0.05)

    async def wait_up(self, timeout=10):
        return await self.wait_log(r"component: link up", timeout)

    async def wait_exit(self, timeout=10):
        """Wait for the process to end by itself; returns its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TestFailure("gateway still running after %ss:\n%s"
                                  % (timeout, tail(self.log_path)))
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def cpu_seconds(self):
        """user+system CPU time the gateway has used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- Client

import slixmpp                                   # noqa: E402
from slixmpp.xmlstream.handler import Callback   # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402
from slixmpp.exceptions import IqError, IqTimeout  # noqa: E402

CLIENT_PLUGINS = ["xep_0030", "xep_0050", "xep_0199", "xep_0092", "xep_0085",
                  "xep_0184", "xep_0077", "xep_0054", "xep_0153", "xep_0363",
                  "xep_0066"]


class DiscoInfo:
    def __init__(self, iq):
        info = iq["disco_info"]
        self.identities = {(c, t) for (c, t, _lang, _name) in info["identities"]}
        self.names = {(c, t): n for (c, t, _lang, n) in info["identities"]}
        self.features = set(info["features"])
        self.iq = iq

    def __repr__(self):
        return "DiscoInfo(identities=%s, features=%s)" % (
            sorted(self.identities), sorted(self.features))


def _summary(st):
    s = str(st)
    return s if len(s) < 400 else s[:400] + "…"


class Client(slixmpp.ClientXMPP):
    """A logged-in XMPP user (slixmpp, STARTTLS on loopback, the server's
    certificate checked against the run's test CA).

    Everything it receives is recorded: `messages`, `presences` (lists of
    stanzas, arrival order).  Construct inside the running asyncio loop.
    """

    def __init__(self, jid, password, prosody, resource="test"):
        if "/" not in jid:
            jid = jid + "/" + resource
        super().__init__(jid, password)
        self.prosody = prosody
        for p in CLIENT_PLUGINS:
            self.register_plugin(p)
        self.messages = []
        self.presences = []
        self._cursor = {"message": 0, "presence": 0}
        self._arrived = asyncio.Event()
        self._session = None
        # Every <message>, not just slixmpp's "message" event, which fires
        # only for messages with a body: chat states, receipts and errors
        # are what several tests wait for.
        self.register_handler(Callback(
            "every message", MatchXPath("{jabber:client}message"),
            self._on("message", self.messages)))
        self.add_event_handler("presence", self._on("presence", self.presences))
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("connection_failed", self._failed)
        # Tests accept every subscription request explicitly, not slixmpp.
        self.auto_authorize = None
        self.auto_subscribe = False

    def _on(self, kind, store):
        def handler(st):
            store.append(st)
            self._arrived.set()
        return handler

    def _session_start(self, _ev):
        if self._session and not self._session.done():
            self._session.set_result(True)

    def _failed(self, ev):
        if self._session and not self._session.done():
            self._session.set_exception(TestFailure("%s could not log in: %s"
                                                    % (self.boundjid, ev)))

    def server_address(self):
        """(host to connect to, CA file to trust) for the c2s STARTTLS."""
        return "127.0.0.1", self.prosody.ca_file

    async def connect_and_wait(self, timeout=10, presence=True):
        """Connect, authenticate, fetch the roster and (by default) send
        available presence."""
        self._session = asyncio.get_running_loop().create_future()
        host, self.ca_certs = self.server_address()
        self.connect((host, self.prosody.c2s_port), use_ssl=False,
                     force_starttls=True, disable_starttls=False)
        try:
            await asyncio.wait_for(self._session, timeout)
        except asyncio.TimeoutError:
            raise TestFailure("%s: no session within %ss" % (self.boundjid, timeout))
        await self.get_roster(timeout=timeout)
        if presence:
            self.send_presence()
        return self

    async def close(self, timeout=5):
        """Log out: close the stream (the server sends unavailable for us)
        and wait until it is closed.  (slixmpp's own disconnect() stays as
        it is: slixmpp calls it internally.)"""
        fut = self.disconnected
        if super().disconnect(wait=min(2, timeout)) is None:
            return
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.abort()

    async def disco_info(self, jid, node=None, timeout=10):
        r = await self.iq_query(jid, "get", "<query xmlns='http://jabber.org/protocol/disco#info'%s/>"
                                % (" node='%s'" % node if node else ""), timeout)
        if r["type"] != "result":
            raise TestFailure("disco#info to %s: error %s" % (jid, r["error"]["condition"]))
        return DiscoInfo(r)

    async def ping(self, jid, timeout=10):
        """XEP-0199 ping; returns the round trip in seconds, fails on error."""
        t0 = time.monotonic()
        r = await self.iq_query(jid, "get", "<ping xmlns='urn:xmpp:ping'/>", timeout)
        if r["type"] != "result":
            raise TestFailure("ping %s: error %s" % (jid, r["error"]["condition"]))
        return time.monotonic() - t0

    async def iq_query(self, to, itype, payload_xml, timeout=10):
        """iq_raw() of one payload; `to=None` addresses our own account."""
        to_attr = " to='%s'" % to if to else ""
        return await self.iq_raw("<iq type='%s'%s>%s</iq>" % (itype, to_attr, payload_xml),
                                 timeout)

    async def iq_raw(self, xml, timeout=10):
        """Send one raw <iq> (jabber:client is the default namespace; an id
        is added if missing) and return the reply stanza, result or error
        (`r['type']`, `r['error']['condition']`, `r.xml`)."""
        el = ET.fromstring("<w xmlns='jabber:client'>%s</w>" % xml)[0]
        iq = self.Iq(xml=el)
        if not iq["id"]:
            iq["id"] = self.new_id()
        try:
            return await iq.send(timeout=timeout)
        except IqError as e:
            return e.iq
        except IqTimeout:
            raise TestFailure("no reply within %ss to %s" % (timeout, xml))

    def send_message(self, to, body=None, mtype="chat", id=None, receipt=False,
                     chat_state=None, oob_url=None, xml=()):
        """Send a message; returns its id.  `receipt` asks for XEP-0184,
        `chat_state` adds a XEP-0085 state, `oob_url` a jabber:x:oob url,
        `xml` extra raw child elements (strings)."""
        msg = self.make_message(mto=to, mbody=body, mtype=mtype)
        msg["id"] = id or self.new_id()
        if receipt:
            msg["request_receipt"] = True
        if chat_state:
            msg["chat_state"] = chat_state
        if oob_url:
            msg["oob"]["url"] = oob_url
        for x in xml:
            msg.append(ET.fromstring(x))
        msg.send()
        return msg["id"]

    def mark(self):
        """Later waits only see stanzas that arrive from now on."""
        self._cursor = {"message": len(self.messages), "presence": len(self.presences)}

    async def _wait(self, kind, store, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._cursor[kind], len(store)):
                if pred is None or pred(store[i]):
                    self._cursor[kind] = i + 1
                    return store[i]
            left = deadline - time.monotonic()
            if left <= 0:
                seen = store[self._cursor[kind]:]
                raise TestFailure("%s: expected a %s %s within %ss; seen %d since "
                                  "the last match:\n  %s" % (
                                      self.boundjid.bare, kind, what or "matching the predicate", timeout,
                                      len(seen), "\n  ".join(_summary(s) for s in seen[-10:])))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def wait_message(self, pred=None, timeout=10, what=None):
        """The next message (after the cursor) for which pred(msg) is true.
        `what` describes it in the failure message."""
        return await self._wait("message", self.messages, pred, timeout, what)

    async def wait_presence(self, pred=None, timeout=10, what=None):
        return await self._wait("presence", self.presences, pred, timeout, what)

    async def roster_items(self, timeout=10):
        """{bare jid: {"name", "subscription", "ask", "groups"}} fresh from the server."""
        # Without roster versioning: a versioned get may come back empty.
        r = await self.iq_query(None, "get", "<query xmlns='jabber:iq:roster'/>", timeout)
        expect(r["type"] == "result", "roster get", "result", str(r))
        out = {}
        for j, item in r["roster"]["items"].items():
            out[str(j)] = {"name": item["name"], "subscription": item["subscription"],
                           "ask": item["ask"], "groups": list(item["groups"])}
        return out


# ---------------------------------------------------------------- runner

_failed = False


def _tests(module):
    fns = [f for n, f in vars(module).items()
           if n.startswith("test_") and inspect.iscoroutinefunction(f)]
    return sorted(fns, key=lambda f: f.__code__.co_firstlineno)


def _print_logs():
    seen = set()
    for label, path in _logs:
        if path in seen:
            continue
        seen.add(path)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            continue
        n = 40 if label == "gateway" else 15
        print("---- last %d lines of %s (%s)" % (n, label, path))
        print(tail(path, n))


def main(test_timeout=120):
    """Run the calling script's `async def test_*` in file order.

    Optional module-level `async def setup()` returns a context passed to
    every test that takes a parameter; `async def teardown(ctx)` runs last.
    argv: `-k SUBSTRING` runs only matching tests (none matching fails).
    A test calling skip(reason) prints SKIP and the script exits SKIP_EXIT.  A test may set
    `test_x.timeout = 300` to get more than `test_timeout` seconds.
    """
    module = sys.modules["__main__"]
    only = None
    if "-k" in sys.argv:
        only = sys.argv[sys.argv.index("-k") + 1]
    if os.environ.get("BAREV_TEST_VERBOSE") == "1":
        logging.basicConfig(level=logging.DEBUG)
    tests = [t for t in _tests(module) if not only or only in t.__name__]
    if not tests:
        # a filter that selects nothing must not look like a green run
        print("FAIL: no test matches -k %r; 0 passed, 0 failed" % only, flush=True)
        sys.exit(1)
    # SIGTERM (a CTest timeout, Ctrl-C in a wrapper) still runs the atexit
    # cleanup that kills Prosody and the gateways.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rc = asyncio.run(_run(module, tests, test_timeout))
    sys.stdout.flush()
    sys.exit(rc)


async def _run(module, tests, test_timeout):
    global _failed
    passed = failed = skipped = 0
    ctx = None
    try:
        setup = getattr(module, "setup", None)
        if setup:
            ctx = await asyncio.wait_for(setup(), test_timeout)
        for t in tests:
            t0 = time.monotonic()
            args = (ctx,) if inspect.signature(t).parameters else ()
            limit = getattr(t, "timeout", test_timeout)
            task = asyncio.ensure_future(t(*args))
            done, _ = await asyncio.wait({task}, timeout=limit)
            if not done:
                task.cancel()
                failed += 1
                print("FAIL %s: did not finish within %ss" % (t.__name__, limit))
                break
            e = task.exception()
            if isinstance(e, Skip):
                skipped += 1
                print("SKIP %s: %s" % (t.__name__, e), flush=True)
                continue
            if e is not None:
                failed += 1
                print("FAIL %s (%.1fs): %s" % (t.__name__, time.monotonic() - t0,
                      e if isinstance(e, TestFailure) else ""))
                if not isinstance(e, TestFailure):
                    traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)
                break
            passed += 1
            print("PASS %s (%.1fs)" % (t.__name__, time.monotonic() - t0), flush=True)
        teardown = getattr(module, "teardown", None)
        if teardown and not failed:
            await asyncio.wait_for(teardown(ctx), test_timeout)
        if not failed:
            # Every gateway still running must stop cleanly on SIGTERM, with
            # nothing from ASan/UBSan/LSan in its log.
            for gw in _gateways:
                if gw.proc is not None:
                    rc = gw.stop()
                    expect(rc == 0, "the gateway exits 0 on SIGTERM", 0,
                           "%s; log tail:\n%s" % (rc, tail(gw.log_path)))
    except Exception as e:
        failed += 1
        print("FAIL setup/teardown/shutdown: %s" % e)
        if not isinstance(e, TestFailure):
            traceback.print_exc(file=sys.stdout)
    if failed:
        _failed = True
        _print_logs()
        if _root:
            print("---- files kept in %s" % _root)
    print("%d passed, %d failed%s" % (passed, failed,
          ", %d skipped" % skipped if skipped else ""), flush=True)
    if failed:
        return 1
    return SKIP_EXIT if skipped else 0


from servers import Prosody, Ejabberd, Server, server_kind  # noqa: E402,F401
