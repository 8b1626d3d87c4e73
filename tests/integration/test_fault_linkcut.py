"""Peer link cuts (issue 14, fault injection): bob's (purple) traffic is
silently dropped by a firewall rule in this network namespace — no FIN, no
RST, as when his node's link goes down — while alice@example.org writes to
him, 50 times over.

Each cut: alice writes to bob; the gateway notices by its keepalive (short
timers here) and drops the pipe; what alice writes then waits in the
outbox, and arrives at bob exactly once, in order, after the link returns.
Over all the cuts the daemon's open fds do not grow.  A cut in the middle of
a file from bob fails that file (the data connection's idle timeout) and
alice is told; bob's pipe comes back and carries messages, and the daemon's
fds are back to what they were.  What the kernel had taken before the cut
was noticed was never read by bob: the gateway keeps each outbox row until
bob answers a ping sent after it, so those messages too arrive exactly
once after the link returns.  So does a message bob's kernel held unread
when his client died (the connection reset).
"""
# ctest: timeout=1200
import asyncio
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq             # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, ALICE_ADDR, BOB_ADDR, CAROL_ADDR  # noqa: E402

# Issue 14 asks for 50.  Each cut costs ~5 s in the ASan build (1 s idle,
# 3 missed 1 s pings, the redial): ~4 min for the 50, more on a loaded
# machine.  Every wait inside a round is bounded on its own, so the whole
# test's limit (CUT_ROUND_LIMIT_S per cut) only catches a hang; it must not
# be what a slow CI machine trips over (a 240 s limit did, at cut 47).
CUTS = 50
CUT_ROUND_LIMIT_S = 12


def nft(*args):
    subprocess.run(["nft"] + list(args), check=True)


def cut():
    nft("add", "rule", "inet", "faultcut", "in", "ip6", "saddr", BOB_ADDR, "drop")
    nft("add", "rule", "inet", "faultcut", "in", "ip6", "daddr", BOB_ADDR, "drop")


def restore():
    nft("flush", "chain", "inet", "faultcut", "in")


def gw_fds(gw):
    return len(os.listdir("/proc/%d/fd" % gw.pid))


def fd_names(gw):
    d = "/proc/%d/fd" % gw.pid
    return sorted(os.readlink(os.path.join(d, f)) for f in os.listdir(d))


def sockets_of(gw):
    """Where each socket fd of the daemon is (for a failure message)."""
    inodes = [n[8:-1] for n in fd_names(gw) if n.startswith("socket:[")]
    out = []
    for table in ("tcp", "tcp6", "udp", "udp6", "unix"):
        with open("/proc/net/" + table) as f:
            out += ["%s %s" % (table, line.strip()) for line in f
                    if any(" %s " % i in line + " " for i in inodes)]
    return out


def seq(text):
    _, i, k = text.split()
    return (int(i), k)


async def setup():
    nft("add", "table", "inet", "faultcut")
    nft("add", "chain", "inet", "faultcut", "in",
        "{ type filter hook input priority 0 ; policy accept ; }")
    return await barevworld.start(gw_config={"barev_ping_idle": "1s",
                                             "barev_ping_timeout": "1s"})


async def test_link_cuts_requeue_what_waits_and_leak_no_fds(ctx):
    gw, alice, bob, carol = ctx["gw"], ctx["alice"], ctx["bob"], ctx["carol"]
    s = await bob.wait_session("alice", timeout=20)
    sc = await carol.wait_session("alice", timeout=20)
    fds_before = gw_fds(gw)
    before_cut, after_down = [], []
    for i in range(CUTS):
        # bob read the last round, and the gateway knows it (his answer to
        # a ping sent after it): a cut before that answer may make a
        # duplicate, the trade docs/design.md takes against a loss
        await barevworld.wait_count(gw, "outbox", lambda n: n == 0,
                                    "outbox rows confirmed before cut %d" % i)
        gw.mark()
        cut()
        for k in ("a", "b"):                   # into a link that is gone
            t = "L %d %s" % (i, k)
            alice.send_message(BOB, t)
            before_cut.append(t)
        await gw.wait_log(r"pipe down: bob@\S+: (.*)$", timeout=30)
        for k in ("c", "d"):                   # the gateway knows: the outbox
            t = "L %d %s" % (i, k)
            alice.send_message(BOB, t)
            after_down.append(t)
        await gw.wait_log(r"message \d+ to bob@\S+ waits in the outbox", timeout=10)
        restore()
        s = await bob.wait_session("alice", timeout=30, exclude=(s,))
        last = after_down[-1]
        await s.wait_until(lambda: any(b == last for b, _ in s.messages), timeout=20,
                           what="alice's message after cut %d" % i)
    got = [b for x in bob.all_sessions for b, _ in x.messages if b.startswith("L ")]
    dups = sorted({t for t in got if got.count(t) > 1})
    expect_eq(dups, [], "duplicates at bob")
    expect_eq(got, sorted(got, key=seq), "sending order at bob")
    expect_eq(sorted(set(after_down) - set(got), key=seq), [],
              "queued while the pipe was down, missing at bob")
    # written into the dead link: the kernel took them, bob never read
    # them; the gateway keeps each row until a ping sent after it is
    # answered, so they are sent again when the link returns (issue 14)
    lost = sorted(set(before_cut) - set(got), key=seq)
    expect_eq(lost, [], "written into the dead link, missing at bob")
    expect(not sc.closed, "carol's pipe stayed up through bob's cuts")
    # the daemon settles: no fd left from the dead pipes and failed dials
    deadline = time.monotonic() + 15
    while gw_fds(gw) > fds_before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print("%d link cuts: %d messages queued after the drop and %d written into"
          " the dead link before it was noticed, all delivered once; fds %d -> %d"
          % (CUTS, len(after_down), len(before_cut), fds_before, gw_fds(gw)))
    expect(gw_fds(gw) <= fds_before, "no fd growth over %d cuts" % CUTS, fds_before,
           gw_fds(gw))
test_link_cuts_requeue_what_waits_and_leak_no_fds.timeout = 60 + CUTS * CUT_ROUND_LIMIT_S


def rx_queue(lp, rp):
    """Bytes the kernel holds unread for the TCP socket [*]:lp <-> [*]:rp
    (/proc/net/tcp6)."""
    with open("/proc/net/tcp6") as f:
        next(f)
        for line in f:
            w = line.split()
            if (int(w[1].rsplit(":", 1)[1], 16) == lp and
                    int(w[2].rsplit(":", 1)[1], 16) == rp):
                return int(w[4].split(":")[1], 16)
    return 0


async def test_a_peer_killed_with_the_message_unread_gets_it_after_restart(ctx):
    """bob's client hangs, then dies: alice's message reached his kernel
    but he never read it (the soak lost one this way at a peer restart).
    The kernel took it, so the gateway used to count it delivered; it waits
    for bob's answer to a ping after it, so it is sent again on his next
    pipe, once."""
    gw, alice, bob = ctx["gw"], ctx["alice"], ctx["bob"]
    await bob.wait_session("alice", timeout=30)
    # the pipe the gateway writes on (a crossing dial may have replaced
    # the first one bob saw)
    alice.send_message(BOB, "before the crash")
    s = await bob.wait_until(lambda: next((x for x in bob.sessions if not x.closed and any(
        b == "before the crash" for b, _ in x.messages)), None), 20, "a live pipe")
    await barevworld.wait_count(gw, "outbox", lambda n: n == 0,
                                "earlier messages confirmed")
    sock = s.writer.get_extra_info("socket")
    ports = sock.getsockname()[1], sock.getpeername()[1]
    s.writer.transport.pause_reading()         # hangs: reads nothing more
    for t in list(s._tasks):
        t.cancel()
    gw.mark()
    alice.send_message(BOB, "unread at the crash")
    await gw.wait_log(r"message \d+ handed to bob@", timeout=10)
    deadline = time.monotonic() + 10
    while rx_queue(*ports) == 0:
        expect(time.monotonic() < deadline, "the message in bob's kernel, unread",
               "> 0 bytes", 0)
        await asyncio.sleep(0.01)
    # the process dies: its kernel resets the connection (data unread)
    s.writer.transport.abort()
    s._mark_closed("killed")
    s2 = await bob.wait_session("alice", timeout=30, exclude=(s,))
    await s2.wait_until(lambda: any(b == "unread at the crash" for b, _ in s2.messages),
                        timeout=20, what="the message on bob's next pipe")
    got = [b for x in bob.all_sessions for b, _ in x.messages
           if b == "unread at the crash"]
    expect_eq(len(got), 1, "copies bob read")
test_a_peer_killed_with_the_message_unread_gets_it_after_restart.timeout = 90


async def test_a_cut_mid_file_fails_that_file_and_alice_is_told(ctx):
    gw, alice, bob = ctx["gw"], ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=30)
    fds_before = gw_fds(gw)
    alice.mark()
    gw.mark()
    rtype, conn = await s.open_file_stream("cut mid-file.bin", 4 * 1024 * 1024, "cut-1")
    expect_eq(rtype, "result", "the gateway accepts bob's offer")
    await asyncio.get_running_loop().sock_sendall(conn, b"c" * 500000)
    await gw.wait_log(r"cut mid-file\.bin", timeout=10)
    cut()
    try:
        # the data connection goes silent: the receive gives up after its
        # idle timeout (30 s) and alice hears it
        m = await alice.wait_message(
            lambda m: m["from"].bare == harness.COMPONENT
            and "cut mid-file.bin" in (m["body"] or "")
            and "receiving from" not in m["body"], timeout=60, what="the failure note")
    finally:
        restore()
        conn.close()
    print("alice was told: %s" % m["body"])
    expect("could not be delivered" in m["body"], "alice hears the file failed",
           "could not be delivered", m["body"])
    s2 = await bob.wait_session("alice", timeout=30, exclude=(s,))
    alice.mark()
    await s2.send_message("back after the cut file")
    await alice.wait_message(lambda m: m["body"] == "back after the cut file", timeout=15,
                             what="bob's message after the link returned")
    deadline = time.monotonic() + 15
    while gw_fds(gw) > fds_before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    # no fd of the failed transfer is left: its data connection, its spool
    # file, its HTTP upload, and the HTTP client's resolver (a UDP socket
    # that used to stay from the first file on)
    print("fds around the cut file: %d -> %d" % (fds_before, gw_fds(gw)))
    expect(gw_fds(gw) <= fds_before, "no fd left by the cut file", fds_before,
           "%d: %s %s" % (gw_fds(gw), fd_names(gw), sockets_of(gw)))
test_a_cut_mid_file_fails_that_file_and_alice_is_told.timeout = 150


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
