#!/usr/bin/python3
"""Between two gateways the whole of modern XMPP passes (issue 12 §2).

Two Prosody servers (a.example, b.example) on loopback, each with its own
barev-gateway; alice@a.example has the Barev identity alice@201:1::1 and
bob@b.example bob@201:2::2, and each adds the other by Barev address.
When the pipe comes up each gateway asks the other what it is (one
disco#info; purple and pascal never answer it, and their tests prove they
still get today's bytes) and learns it talks to a gateway.  From then on,
both ways: message ids are kept, so corrections (XEP-0308), reactions
(XEP-0444), replies (XEP-0461), retractions (XEP-0424) and displayed
markers (XEP-0333) name the right message at the other end; receipts
(XEP-0184) come from the recipient's own client, not from the gateway;
chat states (XEP-0085) arrive as the client sent them, beside a body too;
bodies arrive intact.  Alice's Barev contacts carol (purple) and dave
(pascal) are asked the same question, leave it unanswered, and still get
exactly the bytes they got before, whatever alice's client adds.
"""
# ctest: timeout=300
import os
import re
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import barevpeer as bp                          # noqa: E402
import harness                                   # noqa: E402
from harness import Client, expect, expect_eq     # noqa: E402
from barevworld import (chat, contact_jid, two_gateways, wait_count,  # noqa: E402
                        wait_gateway_peers, wait_inbox)

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
BAREV_PEERS = (("carol", "201:3::3", "purple"), ("dave", "201:4::4", "pascal"))
NS_RECEIPTS = "urn:xmpp:receipts"
NS_CORRECT = "urn:xmpp:message-correct:0"
NS_REACTIONS = "urn:xmpp:reactions:0"
NS_REPLY = "urn:xmpp:reply:0"
NS_FALLBACK = "urn:xmpp:fallback:0"
NS_RETRACT = "urn:xmpp:message-retract:1"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_HINTS = "urn:xmpp:hints"


async def setup():
    alice, bob = await two_gateways(ALICE_ADDR, BOB_ADDR)
    peers = {}
    for nick, addr, profile in BAREV_PEERS:
        peers[nick] = bp.Peer(nick, addr, profile=profile)
        peers[nick].add_buddy("alice", ALICE_ADDR)
        await peers[nick].start()
        answer = await chat(alice["client"], "add %s@%s" % (nick, addr),
                            to=alice["p"].component)
        expect("added" in answer, "alice adds " + nick, "added", answer)
        await peers[nick].wait_session("alice", timeout=15)
    await wait_gateway_peers(alice, bob)
    return {"alice": alice, "bob": bob, "peers": peers}


def both(ctx):
    return ((ctx["alice"], ctx["bob"]), (ctx["bob"], ctx["alice"]))


def child(m, name, ns):
    return m.xml.find("{%s}%s" % (ns, name))


async def from_peer(user, pred, what, timeout=20):
    """The next message to `user` from her contact for which pred holds."""
    return await user["client"].wait_message(
        lambda m: m["from"].bare == user["peer"] and pred(m), timeout=timeout, what=what)


async def barrier(ctx):
    """A message each way, waited for: what was sent before it has arrived."""
    for me, other in both(ctx):
        tag = "barrier " + me["client"].new_id()
        other["client"].mark()
        me["client"].send_message(me["peer"], tag)
        await from_peer(other, lambda m: m["body"] == tag, "the barrier from " + me["name"])


# ---------------------------------------------------------------- tests

async def test_barev_peers_get_todays_bytes_whatever_the_client_adds(ctx):
    alice = ctx["alice"]
    for nick, addr, profile in BAREV_PEERS:
        s = await ctx["peers"][nick].wait_session("alice")
        jid = contact_jid(nick, addr, alice["p"].component)
        mid = alice["client"].send_message(jid, "first")
        body, first = await s.wait_message(timeout=15)
        expect_eq(body, "first", "%s's first message" % nick)
        # everything a gateway would pass, to a Barev peer
        alice["client"].send_message(jid, None, xml=[
            "<reactions xmlns='%s' id='%s'><reaction>👍</reaction></reactions>"
            % (NS_REACTIONS, mid), "<store xmlns='%s'/>" % NS_HINTS])
        alice["client"].send_message(jid, "second", receipt=True, chat_state="active", xml=[
            "<replace xmlns='%s' id='%s'/>" % (NS_CORRECT, mid),
            "<markable xmlns='%s'/>" % NS_MARKERS])
        alice["client"].send_message(jid, "third")
        body, second = await s.wait_message(timeout=15)
        expect_eq(s.raw_of(second).decode(),
                  '<message to="%s@%s" from="alice@%s" type="chat"><body>second</body>'
                  '</message>' % (nick, addr, ALICE_ADDR),
                  "the bytes %s (%s) gets: today's, body only" % (nick, profile))
        body, third = await s.wait_message(timeout=15)
        expect_eq(body, "third", "the next message %s gets" % nick)
        between = s.received[s.received.index(first) + 1:s.received.index(third)]
        expect_eq([bp.local(e.tag) for e in between if bp.local(e.tag) == "message"],
                  ["message"], "messages %s got between the first and the third" % nick)
        asked = [s.raw_of(e).decode() for e in s.received if bp.local(e.tag) == "iq"
                 and e.find("{http://jabber.org/protocol/disco#info}query") is not None]
        expect(len(asked) == 1 and asked[0].startswith("<iq type='get' id='gwcaps-"),
               "%s was asked once what it is, single-quoted, id first" % nick,
               "<iq type='get' id='gwcaps-…'>", asked)
        expect(s.quirks == [], "nothing %s would mishandle" % profile, [], s.quirks)
    expect(not re.search(r"peercaps: (carol|dave)@", alice["gw"].log_text()),
           "carol and dave are not taken for gateways", "no peercaps line", None)


async def test_each_contact_shows_what_passes_to_it(ctx):
    for me, _other in both(ctx):
        info = await me["client"].disco_info(me["peer"])
        for f in (NS_CORRECT, NS_REACTIONS, NS_REPLY, NS_RETRACT, NS_MARKERS,
                  NS_RECEIPTS, NS_CHATSTATES):
            expect(f in info.features, "%s's contact offers %s" % (me["name"], f),
                   f, info)


async def test_bodies_arrive_intact_with_their_ids(ctx):
    for me, other in both(ctx):
        text = "<b>hi</b> & 'q' \"dq\" — %s: ünïcødé ✓ 𝄞 日本\nline two" % me["name"]
        other["client"].mark()
        mid = me["client"].send_message(me["peer"], text, id="%s-msg-1" % me["name"])
        m = await from_peer(other, lambda m: m["body"], "%s's message" % me["name"])
        expect_eq(m["body"], text, "the body at %s" % other["name"])
        expect_eq(m["id"], mid, "the message id at %s" % other["name"])


async def test_receipts_come_from_the_recipients_client(ctx):
    for me, other in both(ctx):
        other["client"]["xep_0184"].auto_ack = False
        try:
            me["client"].mark()
            other["client"].mark()
            mid = me["client"].send_message(me["peer"], "receipt please", receipt=True)
            m = await from_peer(other, lambda m: m["body"] == "receipt please",
                                "the message asking for a receipt")
            expect(child(m, "request", NS_RECEIPTS) is not None,
                   "%s's client is asked for a receipt" % other["name"], "<request/>", m)
            # her client acknowledges, with a message id of its own
            rid = other["client"].send_message(
                other["peer"], None, id="%s-receipt-1" % other["name"],
                xml=["<received xmlns='%s' id='%s'/>" % (NS_RECEIPTS, mid)])
            r = await from_peer(me, lambda m: m["receipt"] == mid,
                                "%s's receipt" % other["name"])
            expect_eq(r["id"], rid, "the receipt is the one %s's client sent" % other["name"])
            await barrier(ctx)
            receipts = [x for x in me["client"].messages if x["receipt"] == mid]
            expect_eq(len(receipts), 1, "receipts for one message (none from the gateway)")
        finally:
            other["client"]["xep_0184"].auto_ack = True


async def test_corrections_replace_the_right_message(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        mid = me["client"].send_message(me["peer"], "helo")
        await from_peer(other, lambda m: m["body"] == "helo", "the typo")
        me["client"].send_message(me["peer"], "hello",
                                  xml=["<replace xmlns='%s' id='%s'/>" % (NS_CORRECT, mid)])
        m = await from_peer(other, lambda m: m["body"] == "hello", "the correction")
        r = child(m, "replace", NS_CORRECT)
        expect(r is not None and r.get("id") == mid, "the correction names the typo",
               mid, m)


async def test_reactions_name_the_message(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        mid = me["client"].send_message(me["peer"], "react to me")
        await from_peer(other, lambda m: m["body"] == "react to me", "the message")
        other["client"].send_message(
            other["peer"], None,
            xml=["<reactions xmlns='%s' id='%s'><reaction>👍</reaction>"
                 "<reaction>🎉</reaction></reactions>" % (NS_REACTIONS, mid),
                 "<store xmlns='%s'/>" % NS_HINTS])
        m = await from_peer(me, lambda m: child(m, "reactions", NS_REACTIONS) is not None,
                            "%s's reactions" % other["name"])
        r = child(m, "reactions", NS_REACTIONS)
        expect_eq(r.get("id"), mid, "the reactions name the message")
        expect_eq([x.text for x in r], ["👍", "🎉"], "the reactions")


async def test_replies_quote_the_right_message_and_person(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        mid = me["client"].send_message(me["peer"], "question?")
        await from_peer(other, lambda m: m["body"] == "question?", "the question")
        me["client"].mark()
        # a reply to the question, from the other side, quoting its author
        other["client"].send_message(
            other["peer"], "> question?\nanswer!",
            xml=["<reply xmlns='%s' to='%s' id='%s'/>" % (NS_REPLY, other["peer"], mid),
                 "<fallback xmlns='%s' for='%s'><body start='0' end='12'/></fallback>"
                 % (NS_FALLBACK, NS_REPLY)])
        m = await from_peer(me, lambda m: m["body"] == "> question?\nanswer!", "the reply")
        r = child(m, "reply", NS_REPLY)
        expect(r is not None, "the reply says what it answers", "<reply/>", m)
        expect_eq((r.get("id"), r.get("to")), (mid, me["jid"]),
                  "the reply names the question and its author as %s knows her"
                  % me["name"])
        fb = child(m, "fallback", NS_FALLBACK)
        expect(fb is not None and fb.get("for") == NS_REPLY, "the quote is marked as such",
               NS_REPLY, m)


async def test_retractions_name_the_message(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        mid = me["client"].send_message(me["peer"], "oops, wrong chat")
        await from_peer(other, lambda m: m["body"] == "oops, wrong chat", "the message")
        me["client"].send_message(
            me["peer"], None,
            xml=["<retract xmlns='%s' id='%s'/>" % (NS_RETRACT, mid),
                 "<store xmlns='%s'/>" % NS_HINTS])
        m = await from_peer(other, lambda m: child(m, "retract", NS_RETRACT) is not None,
                            "the retraction")
        expect_eq(child(m, "retract", NS_RETRACT).get("id"), mid,
                  "the retraction names the message")


async def test_displayed_markers_name_the_message(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        mid = me["client"].send_message(me["peer"], "read me",
                                        xml=["<markable xmlns='%s'/>" % NS_MARKERS])
        m = await from_peer(other, lambda m: m["body"] == "read me", "the message")
        expect(child(m, "markable", NS_MARKERS) is not None, "it arrives markable",
               "<markable/>", m)
        other["client"].send_message(
            other["peer"], None, xml=["<displayed xmlns='%s' id='%s'/>" % (NS_MARKERS, mid)])
        d = await from_peer(me, lambda m: child(m, "displayed", NS_MARKERS) is not None,
                            "%s has read it" % other["name"])
        expect_eq(child(d, "displayed", NS_MARKERS).get("id"), mid,
                  "the marker names the message")


async def test_chat_states_arrive_as_sent(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        me["client"].send_message(me["peer"], None, chat_state="composing")
        await from_peer(other, lambda m: m["chat_state"] == "composing" and not m["body"],
                        "%s is typing" % me["name"])
        me["client"].send_message(me["peer"], "done typing", chat_state="active")
        m = await from_peer(other, lambda m: m["body"] == "done typing", "the message")
        expect_eq(m["chat_state"], "active", "the state beside the body")


async def test_foreign_elements_do_not_cross(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        me["client"].send_message(me["peer"], "just this",
                                  xml=["<x xmlns='urn:example:private'><secret/></x>",
                                       "<reactions xmlns='%s' id='x'><evil xmlns='urn:example:"
                                       "private'/></reactions>" % NS_REACTIONS])
        m = await from_peer(other, lambda m: m["body"] == "just this", "the message")
        raw = ET.tostring(m.xml, encoding="unicode")
        expect("urn:example:private" not in raw, "nothing outside the allowlist crossed",
               "no urn:example:private", raw)


def queue_reaction_and_correction(alice, mid, emoji, text):
    """alice reacts to message `mid` and corrects it to `text`, while her
    gateway cannot reach bob's end: both wait with their extras."""
    alice["client"].send_message(
        alice["peer"], None,
        xml=["<reactions xmlns='%s' id='%s'><reaction>%s</reaction></reactions>"
             % (NS_REACTIONS, mid, emoji), "<store xmlns='%s'/>" % NS_HINTS])
    alice["client"].send_message(alice["peer"], text,
                                 xml=["<replace xmlns='%s' id='%s'/>" % (NS_CORRECT, mid)])


async def reaction_and_correction_arrive(bob, mid, text, when):
    """Both reach bob as what they were: a reaction and a correction of
    message `mid`, not a plain message."""
    m = await from_peer(bob, lambda m: child(m, "reactions", NS_REACTIONS) is not None,
                        "the reaction " + when, timeout=30)
    expect_eq(child(m, "reactions", NS_REACTIONS).get("id"), mid, "it names the message")
    m = await from_peer(bob, lambda m: m["body"] == text, "the correction " + when,
                        timeout=30)
    r = child(m, "replace", NS_CORRECT)
    expect(r is not None and r.get("id") == mid, "it is still a correction", mid, m)


async def test_what_waits_for_an_offline_gateway_user_keeps_its_extras(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    bob["client"].mark()
    mid = alice["client"].send_message(alice["peer"], "see you later")
    await from_peer(bob, lambda m: m["body"] == "see you later", "the message")
    alice["gw"].mark()
    await bob["client"].close()
    await alice["gw"].wait_log(r"pipe down: alice@a\.example <-> bob@", timeout=20)
    # queued at alice's gateway while bob is away
    queue_reaction_and_correction(alice, mid, "👋", "see you soon")
    c = Client(bob["jid"], "bob", bob["p"])
    await c.connect_and_wait()
    bob["client"] = c
    await reaction_and_correction_arrive(bob, mid, "see you soon", "made while bob was away")


async def test_what_waits_across_a_restart_of_our_gateway_keeps_its_extras(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    bob["client"].mark()
    mid = alice["client"].send_message(alice["peer"], "before the restart")
    await from_peer(bob, lambda m: m["body"] == "before the restart", "the message")
    # bob's gateway goes away: what alice writes now certainly waits
    alice["gw"].mark()
    bob["gw"].stop()
    await alice["gw"].wait_log(r"pipe down: alice@a\.example <-> bob@", timeout=20)
    queue_reaction_and_correction(alice, mid, "🔁", "after the restart")
    await wait_count(alice["gw"], "outbox", lambda n: n == 2,
                     "both waiting in alice's gateway's outbox")
    # alice's gateway restarts with them queued: it must still know that
    # bob's end is a gateway, or the first pipe takes them as Barev
    alice["gw"].stop()
    alice["gw"].start()
    await alice["gw"].wait_up(timeout=20)
    bob["gw"].start()
    await bob["gw"].wait_up(timeout=20)
    await reaction_and_correction_arrive(bob, mid, "after the restart",
                                         "queued across the restart")


async def test_an_id_used_twice_while_the_server_is_down_loses_nothing(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    await alice["client"].close()
    alice["gw"].mark()
    alice["p"].stop()
    await alice["gw"].wait_log(r"retrying in", timeout=10)
    # ids are the client's to choose, and some repeat them
    for i in (1, 2):
        bob["client"].send_message(bob["peer"], "twin %d" % i, id="same-id")
    await wait_inbox(alice["gw"], 2, "both held in alice's gateway's inbox", timeout=20)
    alice["p"].start()
    await alice["gw"].wait_log(r"link up", timeout=20)
    c = Client(alice["jid"], "alice", alice["p"])
    await c.connect_and_wait()
    alice["client"] = c
    got = []
    for i in (1, 2):
        m = await from_peer(alice, lambda m: (m["body"] or "").startswith("twin"),
                            "bob's twin messages")
        got.append((m["body"], m["id"]))
    expect_eq([b for b, _ in got], ["twin 1", "twin 2"], "both messages, in order")
    expect_eq(got[0][1], "same-id", "the first keeps its id")


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR] + [addr for _, addr, _ in BAREV_PEERS])
    harness.main()
