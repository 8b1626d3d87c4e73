"""Two promises of the relay (DESIGN.md "Failure model", gateway/bridge/relay.c),
each checked so that breaking it on purpose fails a test (issue 15):

- A receipt (XEP-0184) reaches alice only after the peer answered a ping
  sent after her message: TCP order then proves the peer read it.  bob's
  test peer holds its ping answers; no receipt while it does, the receipt
  once it answers.
- The outbox row is committed before the message is handed to a pipe: when
  the commit fails, bob receives nothing and alice gets an error.  The
  failure is a real one from SQLite: a deferred foreign key, broken by a
  trigger on the outbox, makes COMMIT itself fail (no hook in the daemon).
- What the inbox held while the component link was down reaches alice at
  link up, every message once and in order, across the batches the flush
  takes it out in (256 rows a transaction).
"""
# ctest: timeout=300
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq            # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, store_rows           # noqa: E402

COMPONENT = harness.COMPONENT


async def setup():
    # no keepalive pings during a test (every ping bob gets is a receipt's),
    # and a receipt's ping may wait for bob as long as the test needs
    return await barevworld.start(users=("alice",), gw_config={
        "barev_ping_idle": "600s", "barev_ping_timeout": "60s"})


async def test_receipt_waits_for_the_peers_ping_answer(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=15)
    bob.hold_pings = True
    try:
        alice.mark()
        n0 = len(s.messages)
        mid = alice.send_message(BOB, "did you read this?", receipt=True)
        await s.wait_until(lambda: len(s.messages) > n0, 10, "the message at bob")
        expect_eq(s.messages[n0][0], "did you read this?", "the message at bob")
        # the gateway asks bob to prove he read it...
        await bob.wait_until(lambda: bob.held_pings, 10, "a ping at bob")
        # ...and says nothing to alice before he does: whatever it sent her
        # before answering this ping has reached her by the answer
        await alice.ping(COMPONENT)
        early = [m for m in alice.messages[alice._cursor["message"]:]
                 if m["receipt"] == mid]
        expect_eq(early, [], "receipts while bob's ping answer is held")
    finally:
        await bob.release_pings()
    r = await alice.wait_message(lambda m: m["receipt"] == mid, timeout=15,
                                 what="the receipt once bob answered")
    expect_eq(r["from"].bare, BOB, "receipt sender")


FAULT_SQL = """
CREATE TABLE test_fault_parent (id INTEGER PRIMARY KEY);
CREATE TABLE test_fault (p INTEGER REFERENCES test_fault_parent(id)
    DEFERRABLE INITIALLY DEFERRED);
CREATE TRIGGER test_fault_outbox AFTER INSERT ON outbox
    WHEN NEW.body LIKE 'COMMIT FAILS%'
    BEGIN INSERT INTO test_fault VALUES (-1); END;
"""


def set_commit_fault(gw, on):
    """With it on, a transaction that adds an outbox row whose body starts
    with "COMMIT FAILS" fails at COMMIT (the gateway enables foreign keys)."""
    db = sqlite3.connect(gw.config["database"], timeout=10)
    try:
        if on:
            db.executescript(FAULT_SQL)
        else:
            db.executescript("DROP TRIGGER test_fault_outbox; DROP TABLE test_fault;"
                             " DROP TABLE test_fault_parent;")
    finally:
        db.close()


async def test_a_message_whose_commit_fails_is_not_sent_and_alice_is_told(ctx):
    alice, bob, gw = ctx["alice"], ctx["bob"], ctx["gw"]
    s = await bob.wait_session("alice", timeout=15)
    set_commit_fault(gw, True)
    try:
        alice.mark()
        mid = alice.send_message(BOB, "COMMIT FAILS: never at bob")
        err = await alice.wait_message(lambda m: m["type"] == "error" and m["id"] == mid,
                                       timeout=15, what="the error for the unstored message")
        expect_eq(err["error"]["condition"], "internal-server-error", "error condition")
        expect("could not store" in err["error"]["text"], "the error says why",
               "could not store", err["error"]["text"])
    finally:
        set_commit_fault(gw, False)
    await gw.wait_log(r"could not be stored", timeout=5)
    # the next message goes through; by the time bob has it, anything sent
    # before it would have reached him first (one TCP stream, in order)
    n0 = len(s.messages)
    alice.send_message(BOB, "after the failure")
    await s.wait_until(lambda: any(b == "after the failure" for b, _ in s.messages[n0:]),
                       10, "the next message at bob")
    at_bob = [b for ss in bob.all_sessions for b, _ in ss.messages]
    expect(not [b for b in at_bob if b.startswith("COMMIT FAILS")],
           "bob never got the message that was not stored", "nothing", at_bob[-5:])
    rows = store_rows(gw, "SELECT body FROM outbox WHERE body LIKE 'COMMIT FAILS%'")
    expect_eq(rows, [], "outbox rows of the failed commit")


async def test_held_messages_arrive_in_order_across_batches(ctx):
    alice, gw = ctx["alice"], ctx["gw"]
    n = 600                     # more than two flush batches
    gw.stop()
    (cid,) = store_rows(gw, "SELECT id FROM contacts WHERE nick = 'bob'")[0]
    db = sqlite3.connect(gw.config["database"])
    with db:
        db.executemany(
            "INSERT INTO inbox (contact_id, stanza_id, xml, created_at) VALUES (?, ?, ?, 0)",
            [(cid, "held-%d" % i,
              "<message type='chat' to='alice@example.org'"
              " from='%s/barev' id='held-%d'><body>held %d</body></message>"
              % (BOB, i, i)) for i in range(n)])
    db.close()
    alice.mark()
    gw.start()
    await gw.wait_up(timeout=20)
    got = []
    while len(got) < n:
        m = await alice.wait_message(lambda m: m["body"].startswith("held "), timeout=30,
                                     what="held message %d of %d" % (len(got) + 1, n))
        got.append(int(m["body"].split()[1]))
    expect_eq(got, list(range(n)), "the held messages, each once, in order")
    await gw.wait_log(r"delivered %d message\(s\) held while" % n, timeout=5)
    expect_eq(store_rows(gw, "SELECT count(*) FROM inbox")[0][0], 0, "inbox rows left")


if __name__ == "__main__":
    import netns
    netns.enter([barevworld.ALICE_ADDR, barevworld.BOB_ADDR, barevworld.CAROL_ADDR])
    harness.main()
