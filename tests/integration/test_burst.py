"""Nothing lost, nothing doubled (issue 6): the gateway is stopped in the
middle of a burst of 500 messages each way between alice (XMPP) and bob
(a purple-profile Barev peer), then started again.

- SIGTERM: every message the gateway accepted is delivered exactly once.
  Messages alice sent while the component was away were bounced to her by
  her server (Prosody does not queue for components): those are not
  "accepted", and her client was told.
- kill -9: no duplicates, and every message committed to the outbox or the
  inbox at the moment of the kill is delivered after the restart.  What was
  still in kernel buffers is lost: neither XEP-0114 nor Barev acknowledges
  anything.  The test prints that count.
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
from barevworld import store_rows                # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
BOB = "bob\\40201\\3a2\\3a\\3a2@" + harness.COMPONENT
N = 500


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
        alice.add_event_handler("message", self._alice_msg)
        alice.add_event_handler("message_error", self._alice_err)

    def _alice_msg(self, m):
        b = m["body"] or ""
        if m["type"] != "error" and b.startswith(self.tag + " bob "):
            self.at_alice[b] += 1

    def _alice_err(self, m):
        if m["id"] in self.alice_ids:
            self.bounced.add(self.alice_ids[m["id"]])

    def count_bob(self, _session=None):
        """Everything bob received, over every pipe he ever had."""
        self.at_bob.clear()
        for session in self.bob.all_sessions:
            for body, _el in session.messages:
                if body and body.startswith(self.tag + " alice "):
                    self.at_bob[body] += 1

    async def alice_sends(self, start, stop):
        for i in range(start, stop):
            text = "%s alice %d" % (self.tag, i)
            self.alice_ids[self.alice.send_message(BOB, text)] = text
            if i % 20 == 0:
                await asyncio.sleep(0)    # let slixmpp write

    async def bob_sends(self, session, start, stop):
        """Bob writes until his pipe closes; returns where he stopped."""
        for i in range(start, stop):
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
    committed = {}

    def kill9(gw):
        gw.kill()
        committed["outbox"] = [r[0] for r in store_rows(gw, "SELECT body FROM outbox WHERE state='queued'")]
        committed["inbox"] = store_rows(gw, "SELECT xml FROM inbox")
        return None
    b, s2, _ = await run_burst(ctx, "K", kill9)
    must_bob = set(committed["outbox"])
    must_alice = set()
    for (xml,) in committed["inbox"]:
        for i in range(N):
            t = "K bob %d" % i
            if ">%s<" % t in xml:
                must_alice.add(t)
    resent_bob = set("K bob %d" % i for i in range(N)) & set(b.bob_sent)
    sent_after = set(b.alice_ids[i] for i in list(b.alice_ids)[N // 2 + 20:])

    def delivered():
        b.count_bob()
        return ((must_bob | sent_after) - b.bounced <= set(b.at_bob)
                and must_alice <= set(b.at_alice))
    await until(delivered, 90, "every committed message delivered")
    # everything bob wrote on the new pipe arrives
    await until(lambda: set(b.after_restart) <= set(b.at_alice), 30,
                "bob's messages after the restart",
                lambda: sorted(set(b.after_restart) - set(b.at_alice)))
    dup_bob = {k: v for k, v in b.at_bob.items() if v > 1}
    dup_alice = {k: v for k, v in b.at_alice.items() if v > 1}
    accepted_bob = set(b.alice_ids.values()) - b.bounced
    lost_to_bob = accepted_bob - set(b.at_bob)
    lost_to_alice = resent_bob - set(b.at_alice)
    print("kill -9 burst: committed and delivered after restart: %d to bob, %d to alice;"
          " lost in kernel buffers: %d alice->bob, %d bob->alice (no acks in XEP-0114"
          " or Barev)" % (len(must_bob), len(must_alice), len(lost_to_bob), len(lost_to_alice)))
    expect_eq(dup_bob, {}, "duplicates at bob")
    expect_eq(dup_alice, {}, "duplicates at alice")
test_kill9_during_burst_no_duplicates_committed_delivered.timeout = 300


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR])
    harness.main()
