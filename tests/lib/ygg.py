"""A Yggdrasil test world: real `yggdrasil` daemons, one per network namespace.

Node A lives in the calling test's own namespace (the one tests/lib/netns.py
made with `unshare -n`), so Prosody, the gateway and XMPP clients started
the usual way are on node A.  Every further node gets a fresh namespace,
held open by a small `unshare -n` process.  The namespaces are joined by a
veth pair that carries only ULA addresses (fd00:ba1e::/64, no DAD), and
each node runs Debian's yggdrasil started here — never the system service —
with a config from `yggdrasil -genconf` adjusted: its own TUN (`IfName`),
`Listen`/`Peers` on the veth, `AdminListen` on a unix socket in the test's
temp dir, and `MulticastInterfaces` empty, so the nodes find only each
other.  Node addresses and subnets come from `yggdrasil -useconffile X
-address` / `-subnet`, as an operator reads them.

    world = ygg.World(tmpdir)          # raises WorldError (e.g. no TUN)
    a, b = world.start(2)              # bounded: until each routes to the other
    a.address, a.subnet                # "200:…", "300:…::/64"
    with b.netns():                    # sockets made here live on node B
        s = socket.socket(...)
    b.run(["ip", "-6", "addr"])        # a command inside node B
    a.tun_bytes()                      # (rx, tx) of node A's TUN

Sockets keep the namespace they were created in, so one asyncio test can
drive both nodes: create node B's sockets inside `b.netns()` (see
`patch_sockets`, used for the Barev test peer on node B).
"""
import atexit
import contextlib
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import time
import types

CLONE_NEWNET = 0x40000000
VETH_NET = "fd00:ba1e::"       # ULA /64 on the veth between two nodes
LISTEN_PORT = 12345            # node A listens here; the others peer to it
TUN = "ygg0"

_libc = ctypes.CDLL(None, use_errno=True)
_procs = []


class WorldError(AssertionError):
    """The Yggdrasil world could not be built (reason in the message)."""


def _pdeathsig():
    _libc.prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG: die with the test


@atexit.register
def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: %s" % os.strerror(e))


def check_tun():
    """Fail with the reason unless this machine can create TUN devices."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as e:
        hint = ("(in a container: --device /dev/net/tun and CAP_NET_ADMIN)"
                if e.errno in (errno.ENOENT, errno.EPERM, errno.EACCES) else "")
        raise WorldError("TUN is missing: cannot open /dev/net/tun: %s %s; the "
                         "Yggdrasil tests need it and do not skip"
                         % (os.strerror(e.errno), hint)) from None
    os.close(fd)


class Node:
    """One yggdrasil daemon in its own namespace."""

    def __init__(self, world, name, index):
        self.world = world
        self.name = name
        self.index = index
        self.dir = os.path.join(world.dir, "ygg-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "yggdrasil.conf")
        self.log_path = os.path.join(self.dir, "yggdrasil.log")
        self.admin = "unix://" + os.path.join(self.dir, "admin.sock")
        self.veth_addr = "%s%d" % (VETH_NET, index + 1)
        self.holder = None          # the process that keeps our netns open
        self.proc = None
        self._nsfd = None
        self.address = self.subnet = None

    # -- namespace

    def _ns_prefix(self):
        if self.holder is None:
            return []
        return ["nsenter", "--net=/proc/%d/ns/net" % self.holder.pid, "--"]

    def run(self, argv, check=True, timeout=20):
        """Run a command inside this node's namespace; CompletedProcess."""
        r = subprocess.run(self._ns_prefix() + list(argv), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise WorldError("node %s: %s failed (%d): %s%s" % (
                self.name, " ".join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def spawn(self, argv, log_path):
        """Start a long-running process inside this node's namespace; it
        dies with the test."""
        f = open(log_path, "ab")
        try:
            p = subprocess.Popen(self._ns_prefix() + list(argv), stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True, preexec_fn=_pdeathsig)
        finally:
            f.close()
        _procs.append(p)
        return p

    @contextlib.contextmanager
    def netns(self):
        """Sockets created in this block belong to this node's namespace
        (setns of the calling thread, undone on exit)."""
        if self._nsfd is None:
            yield
            return
        _setns(self._nsfd)
        try:
            yield
        finally:
            _setns(self.world._home_fd)

    # -- yggdrasil

    def configure(self, peers):
        r = subprocess.run(["yggdrasil", "-genconf", "-json"], capture_output=True,
                           text=True, timeout=20, check=True)
        cfg = json.loads(r.stdout)
        cfg["IfName"] = TUN
        cfg["AdminListen"] = self.admin
        cfg["MulticastInterfaces"] = []
        cfg["Listen"] = (["tcp://[%s]:%d" % (self.veth_addr, LISTEN_PORT)]
                         if self.index == 0 else [])
        cfg["Peers"] = peers
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.address = self._derive("-address")
        self.subnet = self._derive("-subnet")

    def _derive(self, flag):
        r = subprocess.run(["yggdrasil", "-useconffile", self.config_path, flag],
                           capture_output=True, text=True, timeout=20, check=True)
        return r.stdout.strip()

    def start(self):
        self.proc = self.spawn(["yggdrasil", "-useconffile", self.config_path,
                                "-logto", self.log_path], os.path.join(self.dir, "stdout"))

    def ctl(self, *cmd):
        """yggdrasilctl over this node's admin socket, parsed JSON."""
        r = self.run(["yggdrasilctl", "-json", "-endpoint", self.admin] + list(cmd),
                     check=False)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def peers(self):
        """Addresses of the nodes this one peers with (yggdrasilctl getPeers)."""
        got = (self.ctl("getPeers") or {}).get("peers") or []
        return sorted(p.get("address") for p in got if isinstance(p, dict))

    def tun_bytes(self):
        """(rx_bytes, tx_bytes) of this node's TUN, from `ip -s link`."""
        r = self.run(["ip", "-s", "-j", "link", "show", "dev", TUN])
        st = json.loads(r.stdout)[0]["stats64"]
        return st["rx"]["bytes"], st["tx"]["bytes"]

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().splitlines()[-n:])
        except OSError:
            return "(no log)"


class World:
    """Yggdrasil nodes in network namespaces, joined by veths."""

    def __init__(self, tmpdir):
        self.dir = tmpdir
        self.nodes = []
        self._home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)

    def start(self, n=2, timeout=30):
        """Start n nodes (node 0 here, the others in new namespaces, all
        peered with node 0) and wait until every node routes to node 0 and
        back.  Returns the nodes."""
        check_tun()
        for i in range(n):
            node = Node(self, chr(ord("a") + i), i)
            self.nodes.append(node)
        a = self.nodes[0]
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        for node in self.nodes[1:]:
            node.holder = subprocess.Popen(["unshare", "-n", "--", "sleep", "infinity"],
                                           stdin=subprocess.DEVNULL, start_new_session=True,
                                           preexec_fn=_pdeathsig)
            _procs.append(node.holder)
            self._wait_new_ns(node)
            node._nsfd = os.open("/proc/%d/ns/net" % node.holder.pid, os.O_RDONLY)
            va, vb = "veth-a%d" % node.index, "veth-%s" % node.name
            subprocess.run(["ip", "link", "add", va, "type", "veth", "peer", "name", vb],
                           check=True)
            subprocess.run(["ip", "link", "set", vb, "netns", str(node.holder.pid)], check=True)
            subprocess.run(["ip", "-6", "addr", "add", a.veth_addr + "/64", "dev", va, "nodad"],
                           check=False)          # the first veth keeps it
            subprocess.run(["ip", "link", "set", va, "up"], check=True)
            node.run(["ip", "link", "set", "lo", "up"])
            node.run(["ip", "-6", "addr", "add", node.veth_addr + "/64", "dev", vb, "nodad"])
            node.run(["ip", "link", "set", vb, "up"])
        a.configure([])
        for node in self.nodes[1:]:
            node.configure(["tcp://[%s]:%d" % (a.veth_addr, LISTEN_PORT)])
        deadline = time.monotonic() + timeout
        # The others dial node A once at start and retry only a minute
        # later: A must be listening before they start.
        a.start()
        self._wait_log(a, "TCP listener started", deadline)
        for node in self.nodes[1:]:
            node.start()
        for node in self.nodes:
            self._wait_tun(node, deadline)
        for node in self.nodes[1:]:
            self._wait_route(node, a, deadline)
            self._wait_route(a, node, deadline)
        return self.nodes

    def _wait_new_ns(self, node):
        me = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.readlink("/proc/%d/ns/net" % node.holder.pid) != me:
                    return
            except OSError:
                pass
            if node.holder.poll() is not None or time.monotonic() > deadline:
                raise WorldError("unshare -n for node %s did not start" % node.name)
            time.sleep(0.01)

    def _wait_log(self, node, text, deadline):
        while True:
            try:
                with open(node.log_path, errors="replace") as f:
                    if text in f.read():
                        return
            except FileNotFoundError:
                pass
            if node.proc.poll() is not None or time.monotonic() > deadline:
                raise WorldError("yggdrasil on node %s: no %r in its log:\n%s"
                                 % (node.name, text, node.log_tail()))
            time.sleep(0.02)

    def _wait_tun(self, node, deadline):
        while True:
            if node.proc.poll() is not None:
                raise WorldError("yggdrasil on node %s exited (%s):\n%s"
                                 % (node.name, node.proc.returncode, node.log_tail()))
            r = node.run(["ip", "-6", "addr", "show", "dev", TUN], check=False)
            if r.returncode == 0 and node.address in r.stdout:
                return
            if time.monotonic() > deadline:
                raise WorldError("node %s: no %s with %s (TUN not usable?):\n%s"
                                 % (node.name, TUN, node.address, node.log_tail()))
            time.sleep(0.05)

    def _wait_route(self, src, dst, deadline):
        """Until a TCP SYN from src reaches dst over Yggdrasil and dst's
        kernel answers (RST: nobody listens on the probe port)."""
        while True:
            with src.netns():
                s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.settimeout(1)
            try:
                s.connect((dst.address, 9))
                return
            except ConnectionRefusedError:
                return
            except OSError:
                pass
            finally:
                s.close()
            if time.monotonic() > deadline:
                raise WorldError("node %s cannot reach node %s (%s) over Yggdrasil; "
                                 "peers of %s: %s\n%s" % (
                                     src.name, dst.name, dst.address, src.name,
                                     src.peers(), src.log_tail()))


def patch_sockets(module, node):
    """Make `module` (e.g. barevpeer) create its sockets on `node`: its
    name `socket` becomes a copy of the socket module whose socket class
    enters the node's namespace to create each new socket."""
    class NodeSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            if kwargs.get("fileno") is not None or len(args) >= 4:
                super().__init__(*args, **kwargs)
                return
            with node.netns():
                super().__init__(*args, **kwargs)

    shim = types.ModuleType("socket")
    shim.__dict__.update(socket.__dict__)
    shim.socket = NodeSocket
    module.socket = shim
    return shim
