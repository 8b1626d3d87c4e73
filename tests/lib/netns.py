"""Run the calling test inside a private network namespace.

Barev addresses in tests are 200::/7 addresses on loopback; adding them to
the host's `lo` would touch the machine's real network configuration, so
every test that needs them re-executes itself under `unshare -n -m` (we
are root in CI), brings up that namespace's own `lo` and adds the addresses
there.  Nothing outside the namespace is touched, and everything the test
starts (Prosody, the gateway, Barev test peers) lives and dies inside it.
The private mount namespace lets set_hosts() give the test its own
/etc/hosts (the servers' names on loopback) without touching the machine's.
"""
import os
import subprocess
import sys

_MARK = "BAREV_TEST_NETNS"


def enter(addrs=()):
    """Re-exec this process in a fresh netns (once), then add `addrs` to lo.

    Call at the very top of a test's main, before opening any socket.
    """
    if os.environ.get(_MARK) != str(os.getpid()):
        if os.geteuid() != 0:
            sys.exit("netns: tests that use Barev addresses must run as root")
        env = dict(os.environ)
        # The child's pid is not known before exec; mark with a token that
        # the child replaces by its own pid check below.
        env[_MARK] = "pending"
        r = subprocess.run(["unshare", "-n", "-m", "--", sys.executable] + sys.argv,
                           env=env)
        sys.exit(r.returncode)
    _setup(addrs)


def _setup(addrs):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in addrs:
        add_addr(a)


def add_addr(addr):
    """Add one more IPv6 address to this namespace's lo."""
    subprocess.run(["ip", "-6", "addr", "add", addr + "/128", "dev", "lo",
                    "nodad"], check=True)


def private_mounts():
    """True inside the namespaces enter() made (mounts there are ours)."""
    return os.environ.get(_MARK) == str(os.getpid())


_hosts_file = None


def set_hosts(mapping):
    """This namespace's /etc/hosts: the machine's lines plus
    {address: [names]}.  The first call bind-mounts a private file over
    /etc/hosts (unshare -m made the mount private to us); later calls
    rewrite that file in place.  Resolvers re-read it on every lookup."""
    global _hosts_file
    if not private_mounts():
        raise RuntimeError("netns.set_hosts() outside netns.enter()")
    if _hosts_file is None:
        import tempfile
        fd, _hosts_file = tempfile.mkstemp(prefix="barev-hosts-")
        os.close(fd)
        with open("/etc/hosts") as f:
            orig = f.read()
        with open(_hosts_file + ".orig", "w") as f:
            f.write(orig)
        os.chmod(_hosts_file, 0o644)
        subprocess.run(["mount", "--bind", _hosts_file, "/etc/hosts"], check=True)
        import atexit
        atexit.register(lambda: [os.unlink(p) for p in (_hosts_file, _hosts_file + ".orig")
                                 if os.path.exists(p)])
    with open(_hosts_file + ".orig") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        text += "\n"
    text += "127.0.0.1 localhost\n"
    for addr, names in mapping.items():
        text += "%s %s\n" % (addr, " ".join(names))
    with open(_hosts_file, "w") as f:
        f.write(text)


def _fix_mark():
    if os.environ.get(_MARK) == "pending":
        os.environ[_MARK] = str(os.getpid())


_fix_mark()
