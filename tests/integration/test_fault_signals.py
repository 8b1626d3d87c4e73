"""Signals during traffic (issue 14, fault injection).  alice@example.org
(XMPP) talks with bob (purple) and carol (pascal), both ways at once.

- 100 SIGHUPs while messages flow both ways on both pairs: every message
  arrives exactly once and in order per pair, none is refused, the daemon
  is the same process afterwards and holds no more fds than before.
- SIGTERM during a burst on both pairs while a file from bob is half-way:
  the gateway exits 0, alice is told the file failed because the gateway
  shut down; after the restart every message the gateway accepted (all but
  those alice's server bounced while it was away, which her client was
  told about) is delivered exactly once and in order per pair, and bob's
  file goes through when he sends it again.
"""
# ctest: timeout=400
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq             # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, CAROL, ALICE_ADDR, BOB_ADDR, CAROL_ADDR  # noqa: E402

GATEWAY = harness.COMPONENT
HUPS = 100
PER_HUP = 2          # messages each way per pair between two SIGHUPs
BURST = 150          # messages each way per pair in the SIGTERM burst


async def until(pred, timeout, what, detail=lambda: None):
    deadline = time.monotonic() + timeout
    while not pred():
        expect(time.monotonic() < deadline, what + " within %ss" % timeout, None, detail())
        await asyncio.sleep(0.05)


def at_peer(peer, prefix):
    """Bodies the peer received over every pipe it had, in arrival order."""
    out = []
    for s in peer.all_sessions:
        out += [b for b, _el in s.messages if b and b.startswith(prefix)]
    return out


def at_alice(alice, who, prefix):
    return [m["body"] for m in alice.messages
            if m["type"] != "error" and m["from"].bare == who
            and (m["body"] or "").startswith(prefix)]


def seq_no(text):
    return int(text.rsplit(" ", 1)[1])


def check_pair(got, must, may, what):
    """Exactly once, in order: `got` has no duplicate, is in sending order,
    holds everything in `must` and nothing outside `may`."""
    dups = sorted({t for t in got if got.count(t) > 1})
    expect_eq(dups, [], "duplicates " + what)
    expect_eq(got, sorted(got, key=seq_no), "sending order " + what)
    missing = sorted(set(must) - set(got), key=seq_no)
    expect_eq(missing, [], "accepted but not delivered " + what)
    extra = sorted(set(got) - set(may), key=seq_no)
    expect_eq(extra, [], "delivered though never accepted " + what)


def gw_fds(gw):
    return len(os.listdir("/proc/%d/fd" % gw.pid))


async def setup():
    return await barevworld.start()


async def test_100_sighups_during_two_way_traffic_lose_and_double_nothing(ctx):
    alice, bob, carol, gw = ctx["alice"], ctx["bob"], ctx["carol"], ctx["gw"]
    sb = await bob.wait_session("alice")
    sc = await carol.wait_session("alice")
    errors = []
    alice.add_event_handler("message_error", lambda m: errors.append(m))
    pid, fds_before = gw.pid, gw_fds(gw)
    n = 0
    for hup in range(HUPS):
        for _ in range(PER_HUP):
            alice.send_message(BOB, "H ab %d" % n)
            alice.send_message(CAROL, "H ac %d" % n)
            await sb.send_message("H ba %d" % n)
            await sc.send_message("H ca %d" % n)
            n += 1
        gw.mark()
        os.kill(gw.pid, 1)                        # SIGHUP
        await gw.wait_log(r"config: reloaded; nothing changed", timeout=10)
    want = lambda tag: ["H %s %d" % (tag, i) for i in range(n)]   # noqa: E731
    await until(lambda: at_peer(bob, "H ab ") == want("ab") and at_peer(carol, "H ac ") ==
                want("ac") and at_alice(alice, BOB, "H ba ") == want("ba") and
                at_alice(alice, CAROL, "H ca ") == want("ca"), 60,
                "every message on both pairs, both ways",
                lambda: {"bob": len(at_peer(bob, "H ab ")), "carol": len(at_peer(carol, "H ac ")),
                         "alice from bob": len(at_alice(alice, BOB, "H ba ")),
                         "alice from carol": len(at_alice(alice, CAROL, "H ca "))})
    for got, tag in ((at_peer(bob, "H ab "), "ab"), (at_peer(carol, "H ac "), "ac"),
                     (at_alice(alice, BOB, "H ba "), "ba"), (at_alice(alice, CAROL, "H ca "), "ca")):
        check_pair(got, want(tag), want(tag), tag)
    expect_eq([m["body"] for m in errors], [], "errors alice got")
    expect_eq(gw.pid, pid, "the same daemon")
    expect(gw.proc.poll() is None, "the daemon runs")
    expect(gw_fds(gw) <= fds_before, "no fd growth over %d reloads" % HUPS, fds_before, gw_fds(gw))
    expect(not sb.closed and not sc.closed, "the pipes stayed up through the reloads")
    print("%d SIGHUPs: %d messages each way on each of 2 pairs, all once and in order"
          % (HUPS, n))
test_100_sighups_during_two_way_traffic_lose_and_double_nothing.timeout = 180


class Pair:
    """alice <-> one peer during the burst."""

    def __init__(self, alice, peer, jid, tag):
        self.alice, self.peer, self.jid, self.tag = alice, peer, jid, tag
        self.alice_ids = {}          # xmpp id -> text alice sent
        self.peer_sent = []          # what the peer wrote while its pipe was up
        self.bounced = set()
        alice.add_event_handler("message_error", self._err)

    def _err(self, m):
        if m["id"] in self.alice_ids:
            self.bounced.add(self.alice_ids[m["id"]])

    async def alice_sends(self, start, stop):
        for i in range(start, stop):
            text = "%s a %d" % (self.tag, i)
            self.alice_ids[self.alice.send_message(self.jid, text)] = text
            if i % 10 == 0:
                await asyncio.sleep(0)

    async def peer_sends(self, session, start, stop):
        for i in range(start, stop):
            if session.closed:
                return i
            text = "%s p %d" % (self.tag, i)
            try:
                await session.send_message(text)
            except (ConnectionError, OSError):
                return i
            # a write that raced the close counts as sent: the gateway read
            # everything before it closed (a clean stop)
            self.peer_sent.append(text)
            if session.closed:
                return i + 1
        return stop


async def test_sigterm_during_a_burst_and_a_file_keeps_exactly_once_in_order(ctx):
    alice, bob, carol, gw = ctx["alice"], ctx["bob"], ctx["carol"], ctx["gw"]
    sb = await bob.wait_session("alice", timeout=20)
    sc = await carol.wait_session("alice", timeout=20)
    pairs = [Pair(alice, bob, BOB, "Tb"), Pair(alice, carol, CAROL, "Tc")]
    alice.mark()
    # bob's file is half-way when the stop comes
    rtype, conn = await sb.open_file_stream("cut by term.bin", 2 * 1024 * 1024, "term-1")
    expect_eq(rtype, "result", "the gateway accepts bob's offer")
    await asyncio.get_running_loop().sock_sendall(conn, b"t" * 300000)
    tasks = [asyncio.ensure_future(pairs[0].peer_sends(sb, 0, BURST)),
             asyncio.ensure_future(pairs[1].peer_sends(sc, 0, BURST))]
    for p in pairs:
        await p.alice_sends(0, BURST // 2)
    await until(lambda: all(len(p.peer_sent) >= BURST // 5 for p in pairs), 30, "peers under way")
    rc = gw.stop()                                # SIGTERM, bounded wait
    conn.close()
    expect_eq(rc, 0, "the gateway exits cleanly on SIGTERM")
    stopped = [await asyncio.wait_for(t, 30) for t in tasks]
    await sb.wait_closed(timeout=15)
    await sc.wait_closed(timeout=15)
    # alice keeps typing while the gateway is away: her server bounces these
    for p in pairs:
        await p.alice_sends(BURST // 2, BURST // 2 + 10)
    gw.start()
    await gw.wait_up(timeout=20)
    m = await alice.wait_message(lambda m: "cut by term.bin" in (m["body"] or ""), timeout=20,
                                 what="the note on bob's file")
    expect("shutting down" in m["body"], "alice hears why the file failed", "shutting down",
           m["body"])
    sb2 = await bob.wait_session("alice", timeout=30, exclude=(sb,))
    sc2 = await carol.wait_session("alice", timeout=30, exclude=(sc,))
    for p in pairs:
        await p.alice_sends(BURST // 2 + 10, BURST)
    await pairs[0].peer_sends(sb2, stopped[0], BURST)
    await pairs[1].peer_sends(sc2, stopped[1], BURST)

    def state():
        out = {}
        for p in pairs:
            accepted = [t for t in p.alice_ids.values() if t not in p.bounced]
            out[p.tag] = (at_peer(p.peer, p.tag + " a "), accepted,
                          at_alice(alice, p.jid, p.tag + " p "), p.peer_sent)
        return out

    def done():
        return all(set(acc) <= set(got_peer) and set(sent) <= set(got_alice)
                   for got_peer, acc, got_alice, sent in state().values())
    await until(done, 90, "every accepted message delivered",
                lambda: {k: (len(set(v[1]) - set(v[0])), len(set(v[3]) - set(v[2])))
                         for k, v in state().items()})
    for p in pairs:
        got_peer, accepted, got_alice, sent = state()[p.tag]
        check_pair(got_peer, accepted, p.alice_ids.values(), "alice -> %s" % p.peer.nick)
        check_pair(got_alice, sent, sent, "%s -> alice" % p.peer.nick)
        print("SIGTERM burst, alice<->%s: %d accepted (%d bounced while away), %d the other way"
              % (p.peer.nick, len(accepted), len(p.bounced), len(sent)))
    expect(any(p.bounced for p in pairs), "alice's client was told about bounced messages")
    # and bob's file goes through when he sends it again
    data = os.urandom(2 * 1024 * 1024)
    alice.mark()
    res = await sb2.send_file("cut by term.bin", data, timeout=30)
    expect(res["ok"], "bob's second try went through", True, res)
    await alice.wait_message(lambda m: m["from"].bare == BOB
                             and (m["body"] or "").startswith("http"), timeout=30,
                             what="the link to bob's file")
test_sigterm_during_a_burst_and_a_file_keeps_exactly_once_in_order.timeout = 240


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
