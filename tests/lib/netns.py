"""Run the calling test inside a private network namespace.

Barev addresses in tests are 200::/7 addresses on loopback; adding them to
the host's `lo` would touch the machine's real network configuration, so
every test that needs them re-executes itself under `unshare -n` (we are
root in CI), brings up that namespace's own `lo` and adds the addresses
there.  Nothing outside the namespace is touched, and everything the test
starts (Prosody, the gateway, Barev test peers) lives and dies inside it.
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
        r = subprocess.run(["unshare", "-n", "--", sys.executable] + sys.argv,
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


def _fix_mark():
    if os.environ.get(_MARK) == "pending":
        os.environ[_MARK] = str(os.getpid())


_fix_mark()
