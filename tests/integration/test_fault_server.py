"""Server flaps (issue 14, fault injection): Prosody is killed with -9 and
started again 20 times (see FLAPS) while alice@example.org (XMPP) and bob (purple
Barev peer) write to each other.

Each round: alice (logged in afresh) and bob exchange a few messages and
see them arrive, then each sends a few more and the server dies with them
in flight.  At the end:

- nothing arrives twice, and each side receives the other's messages in
  the order they were sent (per pair);
- every message confirmed in its round (seen at the other side before the
  kill) is still there once, and what was in flight at a kill arrives at
  most once and in order: bob's go through the gateway's inbox while the
  link is down and Prosody's offline storage while alice is away; what died
  inside Prosody with it (XEP-0114 has no acks) is counted and printed.
"""
# ctest: timeout=900
import asyncio
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Client, expect, expect_eq     # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, ALICE_ADDR, BOB_ADDR, CAROL_ADDR  # noqa: E402

# Issue 14 asks for 20.  A link lost after 10 s or more is a new incident
# for the component (COMP_RESET_AFTER_UP_S): its reconnect is 1-2 s.  Links
# killed sooner are a flapping server, and the backoff grows on purpose
# (to 30 s and more after a few), so each round lets the link reach that
# age before the kill: ~12 s a round.  Each wait in a round is bounded on
# its own; the test's limit (ROUND_LIMIT_S a round) only catches a hang and
# leaves a loaded CI machine room (330 s for ~240 s of work was too close).
FLAPS = 20
ROUND_LIMIT_S = 20
LINK_AGE = 10.5
SYNCED = 3          # per round and way, waited for
IN_FLIGHT = 2       # per round and way, sent just before the kill


async def until(pred, timeout, what, detail=lambda: None):
    deadline = time.monotonic() + timeout
    while not pred():
        expect(time.monotonic() < deadline, what + " within %ss" % timeout, None, detail())
        await asyncio.sleep(0.05)


def seq_no(text):
    return int(text.rsplit(" ", 1)[1])


async def setup():
    return await barevworld.start()


def kill9(p):
    harness._killpg(p.proc, 9)
    p.proc.wait(5)
    p.proc = None


async def test_server_kills_lose_nothing_confirmed_and_double_nothing(ctx):
    p, gw, bob = ctx["p"], ctx["gw"], ctx["bob"]
    clients = [ctx["alice"]]
    at_alice = []                       # bob's bodies as alice's clients saw them
    bounced = set()
    alice_sent, bob_sent = [], []

    def attach(c):
        c.add_event_handler("message", lambda m: at_alice.append(m["body"])
                            if m["type"] != "error" and m["from"].bare == BOB
                            and (m["body"] or "").startswith("S b ") else None)
        c.add_event_handler("message_error", lambda m: bounced.add(c.sent_ids.get(m["id"])))
        c.sent_ids = {}

    def at_bob():
        return [b for s in bob.all_sessions for b, _el in s.messages if b.startswith("S a ")]

    attach(clients[0])
    n_a = n_b = 0
    up_at = time.monotonic() - LINK_AGE     # up since the setup
    for flap in range(FLAPS):
        alice = clients[-1]
        s = await bob.wait_session("alice", timeout=30)
        for _ in range(SYNCED):
            t = "S a %d" % n_a
            alice.sent_ids[alice.send_message(BOB, t)] = t
            alice_sent.append(t)
            n_a += 1
            t = "S b %d" % n_b
            await s.send_message(t)
            bob_sent.append(t)
            n_b += 1
        last_a, last_b = alice_sent[-1], bob_sent[-1]
        await until(lambda: last_a in at_bob() and last_b in at_alice, 20,
                    "round %d delivered both ways" % flap)
        # a scenario step, not a synchronisation: the link's age decides
        # how soon the gateway comes back (see LINK_AGE)
        await asyncio.sleep(max(0.0, up_at + LINK_AGE - time.monotonic()))
        for _ in range(IN_FLIGHT):
            t = "S a %d" % n_a
            alice.sent_ids[alice.send_message(BOB, t)] = t
            alice_sent.append(t)
            n_a += 1
            t = "S b %d" % n_b
            await s.send_message(t)
            bob_sent.append(t)
            n_b += 1
        await asyncio.sleep(0)          # let slixmpp write what it has
        gw.mark()
        kill9(p)
        # the one line a lost link logs, whatever the socket said: EOF,
        # a reset, or EPIPE when the gateway wrote after the FIN (bob's
        # in-flight messages are on their way to Prosody at the kill)
        await gw.wait_log(r"component: .*; retrying in", timeout=15)
        p.start()
        await gw.wait_up(timeout=45)
        up_at = time.monotonic()
        alice = Client("alice@example.org", "alice", p)
        attach(alice)
        await alice.connect_and_wait(timeout=20)
        clients.append(alice)

    # one last round on the settled system: everything before it is through
    s = await bob.wait_session("alice", timeout=30)
    alice = clients[-1]
    t = "S a %d" % n_a
    alice.sent_ids[alice.send_message(BOB, t)] = t
    alice_sent.append(t)
    t = "S b %d" % n_b
    await s.send_message(t)
    bob_sent.append(t)
    await until(lambda: alice_sent[-1] in at_bob() and bob_sent[-1] in at_alice, 30,
                "the last round")
    got_bob, got_alice = at_bob(), list(at_alice)
    for got, what in ((got_bob, "at bob"), (got_alice, "at alice")):
        dups = sorted({t for t in got if got.count(t) > 1}, key=seq_no)
        expect_eq(dups, [], "duplicates " + what)
        expect_eq(got, sorted(got, key=seq_no), "sending order " + what)
    synced_a = [t for i, t in enumerate(alice_sent) if i % (SYNCED + IN_FLIGHT) < SYNCED]
    synced_b = [t for i, t in enumerate(bob_sent) if i % (SYNCED + IN_FLIGHT) < SYNCED]
    expect_eq(sorted(set(synced_a) - set(got_bob), key=seq_no), [], "confirmed, missing at bob")
    expect_eq(sorted(set(synced_b) - set(got_alice), key=seq_no), [],
              "confirmed, missing at alice")
    lost_a = sorted(set(alice_sent) - set(got_bob) - bounced, key=seq_no)
    lost_b = sorted(set(bob_sent) - set(got_alice), key=seq_no)
    print("%d server kills: alice->bob %d sent, %d bounced, %d lost in flight %s;"
          " bob->alice %d sent, %d lost in flight %s"
          % (FLAPS, len(alice_sent), len(bounced - {None}), len(lost_a), lost_a[:6],
             len(bob_sent), len(lost_b), lost_b[:6]))
    for c in clients[1:]:
        await c.close()
test_server_kills_lose_nothing_confirmed_and_double_nothing.timeout = 60 + FLAPS * ROUND_LIMIT_S


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
