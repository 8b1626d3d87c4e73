"""Nothing lost, nothing doubled (issue 6): the gateway is stopped in the
middle of a burst of 500 messages each way between alice (XMPP) and bob
(a purple-profile Barev peer), then started again.

- SIGTERM: every message the gateway accepted is delivered exactly once.
  Messages alice sent while the component was away were bounced to her by
  her server (Prosody does not queue for components): those are not
  "accepted", and her client was told.
- kill -9: no duplicates, and every message committed to the outbox or the
  inbox at the moment of the kill is delivered after the restart.  Rows are
  certainly there at the kill: 50 messages to carol, whose peer is not
  running, wait in the outbox, and bob keeps writing after the server went
  away, so the inbox holds his messages.  What was still in kernel buffers
  is lost: neither XEP-0114 nor Barev acknowledges anything.  The test
  prints those counts.

Duplicates are counted only after the paths have settled: a last "fence"
message each way, behind everything the gateway could still resend.
"""
# ctest: timeout=600
import asyncio
import collections
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client, expect, expect_eq  # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import contact_jid, store_rows, wait_count, wait_inbox  # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"
BOB = "bob\\40201\\3a2\\3a\\3a2@" + harness.COMPONENT
CAROL = contact_jid("carol", CAROL_ADDR)
N = 500
NQ = 50                 # messages certainly queued for carol at the kill


async def until(pred, timeout, what, detail=lambda: None):
    """Wait for a condition that several events feed (bounded)."""
    deadline = time.monotonic() + timeout
    while not pred():
        expect(time.monotonic() < deadline, what + " within %ss" % timeout,
               None, detail())
        await asyncio.sleep(0.05)


class Burst:
    """alice and bob each send N numbered messages; counts what arrives."""

    def __init__(self, tag, alice, bob):
        self.tag = tag
        self.alice = alice
        self.bob = bob
        self.at_bob = collections.Counter()
        self.at_alice = collections.Counter()
        self.bob_sent = []            # written by bob while his pipe was up
        self.alice_ids = {}           # xmpp id -> text
        self.bounced = set()
        self.watch(alice)

    def watch(self, client):
        """Count what this client of alice's receives too."""
        client.add_event_handler("message", self._alice_msg)
        client.add_event_handler("message_error", self._alice_err)

    def _alice_msg(self, m):
        b = m["body"] or ""
        if m["type"] != "error" and b.startswith(self.tag + " bob "):
            self.at_alice[b] += 1

    def _alice_err(self, m):
        if m["id"] in self.alice_ids:
            self.bounced.add(self.alice_ids[m["id"]])

    def count_bob(self, _session=None):
        """Everything bob received, over every pipe he ever had."""
        self.at_bob = count_at(self.bob, self.tag + " alice ")

    async def alice_sends(self, start, stop):
        for i in range(start, stop):
            text = "%s alice %d" % (self.tag, i)
            self.alice_ids[self.alice.send_message(BOB, text)] = text
            if i % 20 == 0:
                await asyncio.sleep(0)    # let slixmpp write

    async def bob_sends(self, session, start, stop, pace=False):
        """Bob writes until his pipe closes; returns where he stopped.
        pace: about 1000 a second, so that he is still writing whatever
        the test does meanwhile (load, not synchronisation)."""
        for i in range(start, stop):
            if pace and i % 10 == 0:
                await asyncio.sleep(0.01)
            if session.closed:
                return i
            text = "%s bob %d" % (self.tag, i)
            try:
                await session.send_message(text)
            except (ConnectionError, OSError):
                return i
            if session.closed:
                # the close raced the write: bob cannot know; count it as
                # sent only if the gateway read it (checked below)
                self.bob_sent.append(text)
                return i + 1
            self.bob_sent.append(text)
        return stop

    async def bob_keeps_writing(self, start, stopped):
        """Bob writes, paced, on whichever pipe to alice is up (he or the
        gateway may dial, and a crossing closes one), until stopped()."""
        def pipe():
            return next((s for s in self.bob.sessions if s.up and not s.closed
                         and (s.remote_nick or "").lower() == "alice"), None)
        i = start
        while not stopped():
            s = pipe()
            if s is None:
                await self.bob.wait_until(lambda: pipe() or stopped(), 20,
                                          "a pipe for bob to write on")
                continue
            n = await self.bob_sends(s, i, i + 10, pace=True)
            i = n
        return i


def count_at(peer, prefix):
    """Bodies starting with prefix a peer received, over all its pipes."""
    c = collections.Counter()
    for session in peer.all_sessions:
        for body, _el in session.messages:
            if body and body.startswith(prefix):
                c[body] += 1
    return c


async def settle(alice, peers, tag):
    """A fence each way: alice -> every peer, every peer -> alice.  The
    gateway sends in order (outbox rows, inbox rows, then new ones), so
    once a fence arrives nothing it still held from before can follow."""
    for peer in peers:
        nick = peer.nick
        text = "%s fence to %s" % (tag, nick)
        alice.send_message(contact_jid(nick, peer.addr), text)
        await peer.wait_until(lambda: count_at(peer, text)[text] > 0, 20,
                              "the fence at %s" % nick)
        s = await peer.wait_session("alice", timeout=10)
        back = "%s fence from %s" % (tag, nick)
        await s.send_message(back)
        await alice.wait_message(lambda m: m["body"] == back, timeout=20,
                                 what="the fence from %s" % nick)


async def setup():
    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    p.create_user("alice", "alice")
    p.create_user("admin", "admin")
    gw = Gateway(p, harness.tmpdir("gw"))
    gw.start()
    await gw.wait_up()
    admin = Client("admin@example.org", "admin", p)
    await admin.connect_and_wait()
    admin.send_message(harness.COMPONENT, "admin create alice@example.org alice " + ALICE_ADDR)
    await admin.wait_message(lambda m: "is now alice@" in (m["body"] or ""),
                             what="identity created")
    await admin.close()
    bob = bp.Peer("bob", BOB_ADDR, profile="purple")
    bob.add_buddy("alice", ALICE_ADDR)
    await bob.start()
    alice = Client("alice@example.org", "alice", p)
    await alice.connect_and_wait()
    alice.send_message(harness.COMPONENT, "add bob@" + BOB_ADDR)
    await alice.wait_message(lambda m: "was added" in (m["body"] or ""), what="bob added")
    # carol's peer runs only in the kill -9 test, after the restart
    alice.send_message(harness.COMPONENT, "add carol@" + CAROL_ADDR)
    await alice.wait_message(lambda m: "carol" in (m["body"] or "") and
                             "was added" in (m["body"] or ""), what="carol added")
    return {"p": p, "gw": gw, "bob": bob, "alice": alice}


async def run_burst(ctx, tag, stop_gateway):
    gw, bob, alice = ctx["gw"], ctx["bob"], ctx["alice"]
    b = Burst(tag, alice, bob)
    s = await bob.wait_session("alice", timeout=20)
    # first half each way, concurrently, then the gateway goes down
    bob_task = asyncio.ensure_future(b.bob_sends(s, 0, N))
    await b.alice_sends(0, N // 2)
    await until(lambda: len(b.bob_sent) >= N // 5, 30, "bob under way")
    snapshot = stop_gateway(gw)
    bob_stopped = await asyncio.wait_for(bob_task, 30)
    await s.wait_closed(timeout=15)
    b.count_bob(s)
    # alice keeps typing while the gateway is away: her server bounces
    await b.alice_sends(N // 2, N // 2 + 20)
    gw.start()
    await gw.wait_up(timeout=20)
    s2 = await bob.wait_session("alice", timeout=30, exclude=(s,))
    await b.alice_sends(N // 2 + 20, N)
    await b.bob_sends(s2, bob_stopped, N)
    # and a few more on the new pipe, so there is always something that was
    # written after the restart (a kill can leave bob thinking all was sent)
    b.after_restart = []
    for i in range(10):
        text = "%s bob post %d" % (tag, i)
        await s2.send_message(text)
        b.after_restart.append(text)
    return b, s2, snapshot


async def test_sigterm_during_burst_delivers_everything_exactly_once(ctx):
    def term(gw):
        gw.stop()          # SIGTERM, waits for a clean exit
        return None
    b, s2, _ = await run_burst(ctx, "T", term)
    expected_at_bob = set(b.alice_ids.values()) - b.bounced
    expected_at_alice = set(b.bob_sent) | set(b.after_restart)

    def delivered():
        b.count_bob()
        return expected_at_bob <= set(b.at_bob) and expected_at_alice <= set(b.at_alice)
    def missing():
        mb = sorted(expected_at_bob - set(b.at_bob), key=lambda t: int(t.split()[-1]))
        ma = sorted(expected_at_alice - set(b.at_alice), key=lambda t: int(t.split()[-1]))
        return "missing at bob %d %s; missing at alice %d %s; bounced %d" % (
            len(mb), mb[:5], len(ma), ma[:5], len(b.bounced))
    await until(delivered, 90, "every accepted message delivered", missing)
    await settle(b.alice, [b.bob], "T")
    b.count_bob()
    dup_bob = {k: v for k, v in b.at_bob.items() if v > 1}
    dup_alice = {k: v for k, v in b.at_alice.items() if v > 1}
    print("SIGTERM burst: alice->bob %d accepted, %d bounced by the server while the"
          " gateway was away; bob->alice %d written" % (len(expected_at_bob), len(b.bounced),
                                                          len(expected_at_alice)))
    expect_eq(dup_bob, {}, "duplicates at bob")
    expect_eq(dup_alice, {}, "duplicates at alice")
    expect(b.bounced, "alice's client was told about the messages her server bounced")
test_sigterm_during_burst_delivers_everything_exactly_once.timeout = 300


async def test_kill9_during_burst_no_duplicates_committed_delivered(ctx):
    p, gw, bob, alice = ctx["p"], ctx["gw"], ctx["bob"], ctx["alice"]
    carol = bp.Peer("carol", CAROL_ADDR, profile="purple")
    carol.add_buddy("alice", ALICE_ADDR)
    # the gateway (restarted by the test before) knows alice is online once
    # her probe's answer is published, RESYNC_GRACE_MS after the link is up:
    # only then does the server going away close her pipes
    with open(gw.log_path, "rb") as f:
        started = max(f.read().rfind(b" starting: "), 0)
    await gw.wait_log(r"alice@example\.org is online", timeout=20, since=started)
    # 1. carol's peer is not running: her messages certainly wait
    for i in range(NQ):
        alice.send_message(CAROL, "K carol %d" % i)
    await wait_count(gw, "outbox WHERE body LIKE 'K carol %' AND state = 'queued'",
                     lambda n: n == NQ, "carol's messages queued in the outbox")
    # 2. a burst each way with bob; the server goes away in the middle of
    #    it, and bob keeps writing: the gateway holds that in its inbox
    b = Burst("K", alice, bob)
    s = await bob.wait_session("alice", timeout=20)
    bob_task = asyncio.ensure_future(b.bob_sends(s, 0, N, pace=True))
    await b.alice_sends(0, N // 2)
    await until(lambda: len(b.bob_sent) >= N // 5, 30, "bob under way")
    p.stop()
    # alice went offline with the server, so her identity closed bob's
    # pipe; bob dials again and goes on writing (the gateway may dial him
    # too, for what it still has for him: he writes on whatever is up)
    bob_next = await asyncio.wait_for(bob_task, 30)
    await s.wait_closed(timeout=15)
    try:
        await bob.dial("alice", ALICE_ADDR)
    except (TimeoutError, ConnectionError, OSError):
        pass                    # crossed the gateway's own dial
    killed = []
    writer = asyncio.ensure_future(b.bob_keeps_writing(bob_next, lambda: killed))
    await wait_inbox(gw, 20, "bob's messages held while the server is away", timeout=30)
    expect(not writer.done(), "bob is still writing at the kill", None,
           writer.exception() if writer.done() else None)
    # 3. the crash, with rows certainly committed
    gw.kill()
    killed.append(True)
    must_carol = set(r[0] for r in store_rows(
        gw, "SELECT body FROM outbox WHERE state = 'queued' AND body LIKE 'K carol %'"))
    must_bob = set(r[0] for r in store_rows(
        gw, "SELECT body FROM outbox WHERE state = 'queued' AND body LIKE 'K alice %'"))
    must_alice = set()
    for (xml,) in store_rows(gw, "SELECT xml FROM inbox"):
        t = xml.split("<body>", 1)[-1].split("</body>", 1)[0]
        if t.startswith("K bob "):
            must_alice.add(t)
    bob_stopped = await asyncio.wait_for(writer, 30)
    expect_eq(len(must_carol), NQ, "carol's rows committed at the kill")
    expect(len(must_alice) >= 20, "bob's messages committed to the inbox at the kill",
           ">= 20", len(must_alice))
    # 4. everything back: the server, alice, the gateway, carol
    p.start()
    alice2 = Client("alice@example.org", "alice", p)
    b.watch(alice2)
    await alice2.connect_and_wait()
    ctx["alice"] = alice2
    gw.start()
    await gw.wait_up(timeout=20)
    s2 = await bob.wait_session("alice", timeout=30, exclude=(s,))
    await carol.start()
    try:
        await carol.wait_session("alice", timeout=30)

        def delivered():
            b.count_bob()
            return (must_bob <= set(b.at_bob) and must_alice <= set(b.at_alice)
                    and must_carol <= set(count_at(carol, "K carol ")))

        def missing():
            return "missing: bob %d, alice %d, carol %d" % (
                len(must_bob - set(b.at_bob)), len(must_alice - set(b.at_alice)),
                len(must_carol - set(count_at(carol, "K carol "))))
        await until(delivered, 90, "every committed message delivered", missing)
        # 5. settle, then count: nothing committed comes twice
        await settle(alice2, [bob, carol], "K")
        b.count_bob()
        at_carol = count_at(carol, "K carol ")
    finally:
        await carol.stop()
    dup = {k: v for c in (b.at_bob, b.at_alice, at_carol) for k, v in c.items() if v > 1}
    lost_to_bob = set(b.alice_ids.values()) - b.bounced - set(b.at_bob)
    lost_to_alice = set(b.bob_sent) - set(b.at_alice)
    print("kill -9 burst: committed at the kill and delivered after the restart: %d to"
          " carol, %d to bob, %d to alice (bob wrote %d); never arrived (in a client,"
          " server or kernel buffer at the stop or the kill): %d alice->bob, %d"
          " bob->alice (no acks in XEP-0114 or Barev)" % (
              len(must_carol), len(must_bob), len(must_alice), bob_stopped,
              len(lost_to_bob), len(lost_to_alice)))
    expect_eq(dup, {}, "messages delivered twice")
    expect_eq(sorted(at_carol.values()), [1] * NQ, "each of carol's messages exactly once")
test_kill9_during_burst_no_duplicates_committed_delivered.timeout = 300


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
