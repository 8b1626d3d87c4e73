"""The bridge (issue 6): alice@example.org, in an ordinary XMPP client, talks
to bob@201:2::2, a Barev peer, as if bob were any other contact.

alice's Barev identity is alice@201:1::1; bob runs the independent Barev
test peer (tests/barevpeer) with the purple profile, carol (201:3::3) with
the pascal profile.  Everything runs in a private network namespace.
"""
# ctest: timeout=400
import asyncio
import os
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Client, expect, expect_eq    # noqa: E402
import barevpeer as bp                           # noqa: E402
import barevworld                                # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"
DAVE_ADDR = "201:4::4"
COMPONENT = harness.COMPONENT


from barevworld import (contact_jid, store_rows, subscribe, wait_count, wait_inbox,  # noqa: E402
                        answer_contact_requests, gateway_in_roster)

BOB = contact_jid("bob", BOB_ADDR)
CAROL = contact_jid("carol", CAROL_ADDR)
DAVE = contact_jid("dave", DAVE_ADDR)


async def setup():
    # the tests add bob and carol themselves, from alice's client
    return await barevworld.start(users=("alice", "nobody", "admin"),
                                  gw_config={"outbox_ttl": "30s"},
                                  subscribe_peers=False)


async def test_the_gateway_is_in_alices_roster_and_online_from_start_up(ctx):
    """alice's identity was in the store when the gateway started: it put
    itself into her roster (XEP-0356; on ejabberd 23.01, which grants the
    roster read only, by a subscription request she accepts) and answered
    her server's probe."""
    alice = ctx["alice"]
    await gateway_in_roster(alice)
    alice.mark()
    await alice.close()
    alice = ctx["alice"] = Client("alice@example.org", "alice", ctx["p"])
    answer_contact_requests(alice)
    await alice.connect_and_wait()
    await alice.wait_presence(lambda pr: pr["from"].bare == COMPONENT and pr["type"] == "available",
                              what="the gateway online when alice logs in")


async def test_alice_adds_bob_and_sees_his_presence(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    await subscribe(alice, BOB)
    roster = await alice.roster_items()
    expect(BOB in roster, "bob is in alice's roster", BOB, list(roster))
    expect_eq(roster[BOB]["name"], "bob", "bob's roster name")
    # bob's peer sees alice's identity come online
    s = await bob.wait_session("alice", timeout=15)
    await s.wait_presence(lambda el: el.get("type") != "unavailable", timeout=10)
    # bob goes away with a status: alice sees it
    alice.mark()
    await s.send_presence(show="away", status="gone fishing")
    pr = await alice.wait_presence(
        lambda p: p["from"].bare == BOB and p["show"] == "away",
        what="bob away")
    expect_eq(pr["status"], "gone fishing", "bob's status text")
    expect_eq(pr["from"].resource, "barev", "bob's resource")


async def test_messages_both_ways_with_special_characters(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    text = "hi bob & <friends> \"quoted\" 'apos' — héllo ✓"
    alice.send_message(BOB, text)
    body, _ = await s.wait_message(timeout=10)
    expect_eq(body, text, "alice's message at bob")
    alice.mark()
    await s.send_message("back at you <b>&amp;</b> ünïcode")
    m = await alice.wait_message(lambda m: m["from"].bare == BOB and m["body"],
                                 what="bob's message")
    expect_eq(m["body"], "back at you <b>&amp;</b> ünïcode", "bob's message at alice")
    expect(m["id"], "bob's message carries an id", "an id", m["id"])


async def test_typing_both_ways_and_body_with_active_survives_purple(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    alice.send_message(BOB, None, chat_state="composing")
    await s.wait_chatstate("composing", timeout=10)
    # composing is refreshed while alice types (purple forgets after ~1 s)
    await s.wait_chatstate("composing", timeout=5)
    alice.send_message(BOB, "typed it", chat_state="active")
    body, el = await s.wait_message(timeout=10)
    expect_eq(body, "typed it", "the body sent beside <active/>")
    expect_eq(len(s.dropped_bodies), 0, "bodies purple would have dropped")
    alice.mark()
    await s.send_chatstate("composing")
    await alice.wait_message(lambda m: m["from"].bare == BOB and m["chat_state"] == "composing",
                             what="bob typing")


async def test_messages_of_one_write_keep_their_order_around_typing(ctx):
    """The gateway commits the bodies of one read together; a chat state
    behind them must not overtake them on the pipe, nor they each other."""
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    n0 = len(s.received)

    def msg(inner):
        return "<message type='chat' to='%s'>%s</message>" % (BOB, inner)
    alice.send_raw("".join([msg("<body>order %d</body>" % i) for i in range(5)]
                           + [msg("<composing xmlns='%s'/>" % bp.NS_CHATSTATES),
                              msg("<body>order 5</body>")]))
    await s.wait_until(lambda: any(e.findtext("{%s}body" % bp.NS_CLIENT) == "order 5"
                                   for e in s.received[n0:]), 10, "the last body")
    seen = []
    for e in s.received[n0:]:
        if bp.local(e.tag) != "message":
            continue
        b = e.findtext("{%s}body" % bp.NS_CLIENT)
        seen += [b] if b is not None else [
            bp.local(c.tag) for c in e if c.tag.startswith("{%s}" % bp.NS_CHATSTATES)]
    expect_eq(seen, ["order %d" % i for i in range(5)] + ["composing", "order 5"],
              "what bob's client shows, in order")


async def test_pascal_peer_talks_too(ctx):
    alice, carol = ctx["alice"], ctx["carol"]
    await subscribe(alice, CAROL)
    s = await carol.wait_session("alice", timeout=15)
    alice.send_message(CAROL, "hello pascal <&>")
    body, _ = await s.wait_message(timeout=10)
    expect_eq(body, "hello pascal <&>", "alice's message at carol")
    alice.mark()
    await s.send_message("hi from pascal")
    m = await alice.wait_message(lambda m: m["from"].bare == CAROL and m["body"],
                                 what="carol's message")
    expect_eq(m["body"], "hi from pascal", "carol's message")


async def test_bob_offline_then_alice_sees_unavailable(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    alice.mark()
    await s.close()
    await alice.wait_presence(lambda p: p["from"].bare == BOB and p["type"] == "unavailable",
                              what="bob unavailable")


async def test_offline_alice_gets_bobs_message_from_offline_storage(ctx):
    p, bob, alice = ctx["p"], ctx["bob"], ctx["alice"]
    s = await bob.wait_session("alice", timeout=15)
    await alice.close()
    # alice's identity goes unavailable on the Barev side...
    await s.wait_presence(lambda el: el.get("type") == "unavailable", timeout=10)
    # ...but bob can still reach the listener and leave a message
    await s.wait_closed(timeout=10)
    s2 = await bob.dial("alice", ALICE_ADDR)
    await s2.send_message("while you were away")
    alice2 = Client("alice@example.org", "alice", p)
    await alice2.connect_and_wait()
    m = await alice2.wait_message(lambda m: m["body"] == "while you were away",
                                  timeout=15, what="the offline message")
    expect_eq(m["from"].bare, BOB, "sender of the offline message")
    ctx["alice"] = alice2


async def test_bobs_message_crossing_alices_goodbye_reaches_her(ctx):
    """alice goes offline as bob hits Enter: his message, written after the
    gateway's </stream:stream> left but before he read it, is hers too (the
    pipe keeps reading until bob closes; it used to be dropped unread)."""
    p, bob, alice = ctx["p"], ctx["bob"], ctx["alice"]
    s = await bob.wait_session("alice", timeout=15)
    s.parting = ["as you left"]
    await alice.close()
    await s.wait_closed(timeout=10)
    expect(b"as you left" in bytes(s.raw_out), "bob wrote it after the gateway's goodbye",
           "as you left", bytes(s.raw_out[-300:]))
    alice2 = Client("alice@example.org", "alice", p)
    await alice2.connect_and_wait()
    m = await alice2.wait_message(lambda m: m["body"] == "as you left",
                                  timeout=15, what="bob's message that crossed her goodbye")
    expect_eq(m["from"].bare, BOB, "its sender")
    ctx["alice"] = alice2


async def test_outbox_waits_for_unreachable_peer_and_receipt_comes_only_then(ctx):
    alice, gw = ctx["alice"], ctx["gw"]
    dave = bp.Peer("dave", DAVE_ADDR, profile="purple")
    dave.add_buddy("alice", ALICE_ADDR)
    await subscribe(alice, DAVE)
    alice.mark()
    mid = alice.send_message(DAVE, "are you there, dave?", receipt=True)
    await gw.wait_log(r"waits in the outbox", timeout=10)
    rows = store_rows(gw, "SELECT body FROM outbox")
    expect(("are you there, dave?",) in rows, "the message waits in the outbox",
           "a row", rows)
    # no receipt while dave is down (a ping through the gateway first:
    # whatever it sent before has reached alice by its answer)
    await alice.ping(COMPONENT)
    for m in alice.messages[alice._cursor["message"]:]:
        expect(m["receipt"] != mid, "no receipt before delivery", None, str(m))
    await dave.start()
    s = await dave.wait_session("alice", timeout=20)
    body, _ = await s.wait_message(timeout=10)
    expect_eq(body, "are you there, dave?", "the queued message at dave")
    r = await alice.wait_message(lambda m: m["receipt"] == mid, timeout=15,
                                 what="the receipt")
    expect_eq(r["from"].bare, DAVE, "receipt sender")
    # delivered rows are deleted with the next commit (or 20 ms later)
    await wait_count(gw, "outbox", lambda n: n == 0, "outbox empty after delivery",
                     timeout=5)
    await dave.stop()
    ctx["dave"] = dave


async def test_outbox_ttl_expiry_tells_alice(ctx):
    alice, dave = ctx["alice"], ctx["dave"]
    await dave.stop()
    alice.mark()
    alice.send_message(DAVE, "this one will never arrive")
    err = await alice.wait_message(lambda m: m["type"] == "error", timeout=60,
                                   what="the expiry error")
    expect("this one will never arrive" in str(err), "the error names the text",
           "the text", str(err))
test_outbox_ttl_expiry_tells_alice.timeout = 90


async def wait_offline_count(p, user, n, timeout=30):
    """Until ejabberd holds n offline messages for user (ejabberdctl)."""
    deadline = time.monotonic() + timeout
    while True:
        have = int(p.ctl("get_offline_count", user, p.domain).strip() or 0)
        if have >= n:
            return
        expect(time.monotonic() < deadline, "ejabberd stores %s's messages" % user, n, have)
        await asyncio.sleep(0.2)


async def test_component_link_cut_loses_nothing(ctx):
    p, gw, bob = ctx["p"], ctx["gw"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=20)
    p.stop()
    await gw.wait_log(r"retrying in", timeout=10)
    if harness.server_kind() == "prosody":
        # Prosody's shutdown logs alice out before it closes the component
        # link, so her identity says goodbye; bob dials again (the
        # listener stays) and writes while the server is down
        await s.wait_closed(timeout=10)
        s = await bob.dial("alice", ALICE_ADDR)
    else:
        # ejabberd's shutdown races alice's logout against the component
        # link: the gateway may or may not hear her leave.  The link is
        # down now, so that is decided; a ping on the pipe (answered, or
        # failing on the close) tells which, and bob writes either way.
        try:
            alive = await s.send_ping(timeout=10)
        except (ConnectionError, OSError):
            alive = False
        if not alive:
            await s.wait_closed(timeout=10)
            s = await bob.dial("alice", ALICE_ADDR)
    for i in range(20):
        await s.send_message("while the server is down %d" % i)
    # every message is in the inbox before the server comes back
    await wait_inbox(gw, 20, "20 messages held in the inbox")
    p.start()
    await gw.wait_log(r"link up", timeout=20)
    if p.kind == "ejabberd":
        # ejabberd 23.01 can store a message for alice and flush her
        # offline messages at login in either order: one that loses the
        # race waits for her next login.  Log in once all 20 are stored.
        await gw.wait_log(r"delivered 20 message\(s\) held", timeout=20)
        await wait_offline_count(p, "alice", 20)
    alice = Client("alice@example.org", "alice", p)
    await alice.connect_and_wait()
    got = []
    while len(got) < 20:
        m = await alice.wait_message(lambda m: (m["body"] or "").startswith("while the server"),
                                     timeout=20, what="held messages")
        got.append(m["body"])
    expect_eq(got, ["while the server is down %d" % i for i in range(20)],
              "held messages, in order")
    ctx["alice"] = alice


async def test_errors_for_no_identity_and_unknown_contact(ctx):
    p, alice = ctx["p"], ctx["alice"]
    nobody = Client("nobody@example.org", "nobody", p)
    await nobody.connect_and_wait()
    nobody.send_message(BOB, "hello?")
    err = await nobody.wait_message(lambda m: m["type"] == "error", what="an error")
    expect_eq(err["error"]["condition"], "registration-required", "error for no identity")
    expect("identity" in err["error"]["text"], "the error says why", "identity",
           err["error"]["text"])
    alice.mark()
    stranger = contact_jid("eve", "201:5::5")
    alice.send_message(stranger, "hi eve")
    err = await alice.wait_message(lambda m: m["type"] == "error", what="an error")
    expect_eq(err["error"]["condition"], "forbidden", "error for a non-contact")
    expect("not among your contacts" in err["error"]["text"], "the error says why",
           "not among your contacts", err["error"]["text"])
    await nobody.close()


async def test_gateway_turns_a_typed_address_into_a_contact_jid(ctx):
    """XEP-0100 §6.3, what Gajim's 'Add contact' uses for transports."""
    alice = ctx["alice"]
    r = await alice.iq_raw("<iq type='get' to='%s'><query xmlns='jabber:iq:gateway'/></iq>"
                           % COMPONENT)
    expect_eq(r["type"], "result", "jabber:iq:gateway get")
    q = r.xml.find("{jabber:iq:gateway}query")
    expect(q is not None and q.find("{jabber:iq:gateway}prompt") is not None,
           "a prompt is offered", "<prompt/>", str(r))
    r = await alice.iq_raw("<iq type='set' to='%s'><query xmlns='jabber:iq:gateway'>"
                           "<prompt>Bob@0201:0002:0000::0002</prompt></query></iq>" % COMPONENT)
    jid = r.xml.find("{jabber:iq:gateway}query/{jabber:iq:gateway}jid")
    expect_eq(jid.text if jid is not None else None, BOB,
              "the JID for what alice typed (mixed case, uncompressed)")
    r = await alice.iq_raw("<iq type='set' to='%s'><query xmlns='jabber:iq:gateway'>"
                           "<prompt>bob@not-an-ip</prompt></query></iq>" % COMPONENT)
    expect_eq(r["error"]["condition"], "bad-request", "a bad address is refused")
    expect("IPv6" in r["error"]["text"], "the error says why", "IPv6", r["error"]["text"])


async def test_a_message_that_cannot_be_stored_is_refused_to_its_sender(ctx):
    """Durable before sent: when the outbox cannot take a message (here
    another process holds the database's write lock longer than the
    gateway's 5 s busy timeout, as a stuck backup job or a full disk
    would), alice gets an error reply saying so, and bob never gets it."""
    alice, bob, gw = ctx["alice"], ctx["bob"], ctx["gw"]
    s = await bob.wait_session("alice", timeout=20)
    seen = len(s.messages)
    lock = sqlite3.connect(gw.config["database"], isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        alice.mark()
        mid = alice.send_message(BOB, "while the database is locked")
        err = await alice.wait_message(lambda m: m["type"] == "error" and m["id"] == mid,
                                       timeout=30, what="the error for the unstored message")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    expect(err["error"]["type"] in ("wait", "cancel") and err["error"]["text"],
           "an error alice's client can show (type wait or cancel, with a text)",
           "wait/cancel + text", str(err))
    expect_eq(err["from"].bare, BOB, "the error comes from bob's JID")
    expect_eq(store_rows(gw, "SELECT count(*) FROM outbox WHERE body = ?",
                         "while the database is locked"), [(0,)], "nothing in the outbox")
    # the next message goes through; the refused one never came before it
    alice.send_message(BOB, "after the lock")
    await s.wait_until(lambda: any(b == "after the lock" for b, _ in s.messages[seen:]),
                       timeout=15, what="bob gets the message sent after the lock")
    expect_eq([b for b, _ in s.messages[seen:]], ["after the lock"],
              "what bob received (not the refused message)")
test_a_message_that_cannot_be_stored_is_refused_to_its_sender.timeout = 90


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR, DAVE_ADDR, "201:5::5"])
    harness.main()
