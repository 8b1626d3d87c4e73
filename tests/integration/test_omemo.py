#!/usr/bin/python3
"""OMEMO (XEP-0384) between two gateways' users (issue 12 §2).

Two Prosody servers, each with its own barev-gateway, as in
test_gateways: alice@a.example (Barev alice@201:1::1) and bob@b.example
(bob@201:2::2) have each other as Barev contacts, and each gateway knows
the other is a gateway.  Each user's client is python-omemo (Debian's
python3-omemo, -oldmemo, -twomemo) with both OMEMO versions; it publishes
its device list and bundle on its own account with open access, as
Conversations, Gajim and Dino do.

What a user sees: her client finds the contact's devices and bundles on
the contact's JID on her own server's gateway (her gateway asks the other
one over the pipe, which reads them from the contact's account), builds
a session, and the contact's client decrypts exactly what she wrote, both
ways, in both OMEMO versions; when the contact adds a device, the new
device list reaches her from the contact's JID as a PEP event.  A Barev
peer (purple) has no OMEMO: its JID answers item-not-found and the peer
never sees a pubsub request.
"""
# ctest: timeout=300
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import barevpeer as bp                          # noqa: E402
import harness                                   # noqa: E402
from harness import expect, expect_eq           # noqa: E402
from barevworld import chat, contact_jid, two_gateways, wait_gateway_peers  # noqa: E402
import omemoclient                               # noqa: E402
from omemoclient import OLD, TWO, NS_EVENT        # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"


async def setup():
    alice, bob = await two_gateways(ALICE_ADDR, BOB_ADDR)
    carol = bp.Peer("carol", CAROL_ADDR, profile="purple")
    carol.add_buddy("alice", ALICE_ADDR)
    await carol.start()
    answer = await chat(alice["client"], "add carol@%s" % CAROL_ADDR, to=alice["p"].component)
    expect("added" in answer, "alice adds carol", "added", answer)
    await carol.wait_session("alice", timeout=15)
    await wait_gateway_peers(alice, bob)
    for u in (alice, bob):
        u["omemo"] = await omemoclient.Omemo(u["client"]).start()
        u["device"] = await u["omemo"].own_device_id()
    return {"alice": alice, "bob": bob, "carol": carol}


def both(ctx):
    return ((ctx["alice"], ctx["bob"]), (ctx["bob"], ctx["alice"]))


async def round_trip(ctx, ns, text):
    """`text` encrypted under `ns` by each user, decrypted by the other."""
    for me, other in both(ctx):
        other["client"].mark()
        mid = await me["omemo"].send(ns, me["peer"], text % me["name"])
        msg = await other["client"].wait_message(
            lambda m: m["from"].bare == other["peer"] and m["id"] == mid, timeout=30,
            what="%s's OMEMO message (%s)" % (me["name"], ns))
        expect_eq(await other["omemo"].decrypt(msg, ns), text % me["name"],
                  "what %s's client decrypts of %s's %s message" % (other["name"], me["name"], ns))


# ---------------------------------------------------------------- tests

async def test_each_client_finds_the_others_devices_on_the_contact_jid(ctx):
    for me, other in both(ctx):
        for ns in (OLD, TWO):
            found = await me["omemo"].devices_of(ns, me["peer"])
            expect_eq(found, [other["device"]],
                      "%s's devices (%s) as %s's client reads them on %s" % (
                          other["name"], ns, me["name"], me["peer"]))


async def test_legacy_omemo_both_ways(ctx):
    await round_trip(ctx, OLD, "secret from %s: <b>&amp; ünïcödé ✓</b>")
    # a second message rides the session the first one built
    await round_trip(ctx, OLD, "and again from %s")


async def test_omemo2_both_ways(ctx):
    await round_trip(ctx, TWO, "OMEMO 2 from %s: ¿qué tal? 🔒")
    await round_trip(ctx, TWO, "OMEMO 2 again from %s")


async def test_a_new_device_list_reaches_the_contact(ctx):
    # the reads above subscribed each contact JID to the other side's
    # device lists; a device added now is announced to the contact
    for me, other in both(ctx):
        for ns in (OLD, TWO):
            other["client"].mark()
            new = 4242 + (ns == TWO)
            mod = omemoclient.oldmemo.etree if ns == OLD else omemoclient.twomemo.etree
            await omemoclient.publish(me["client"], omemoclient.devices_node(ns), "current",
                                      mod.serialize_device_list({me["device"]: None, new: None}))
            node = omemoclient.devices_node(ns)

            def announced(m):
                ev = m.xml.find("{%s}event" % NS_EVENT)
                items = ev.find("{%s}items" % NS_EVENT) if ev is not None else None
                return (m["from"].bare == other["peer"] and items is not None and
                        items.get("node") == node and
                        str(new) in [d.get("id") for d in items.iter("{%s}device" % ns)])
            msg = await other["client"].wait_message(
                announced, timeout=30,
                what="%s's new %s device list as a PEP event from %s" % (me["name"], ns, other["peer"]))
            expect(msg.xml.find(".//{%s}item[@publisher]" % NS_EVENT) is None,
                   "no JID of the far side in the event", "no publisher", msg)


async def test_a_barev_peer_has_no_devices_and_gets_no_pubsub(ctx):
    alice, carol = ctx["alice"], ctx["carol"]
    jid = contact_jid("carol", CAROL_ADDR, alice["p"].component)
    for node in (omemoclient.devices_node(OLD), omemoclient.devices_node(TWO)):
        got = await omemoclient.fetch_item(alice["client"], jid, node)
        expect(got is None, "carol's %s on her contact JID" % node, "item-not-found", got)
    s = await carol.wait_session("alice")
    # a message after the reads: what carol got before it is all she got
    alice["client"].send_message(jid, "after the key reads")
    body, _ = await s.wait_message(timeout=15)
    expect_eq(body, "after the key reads", "carol's message")
    pubsub = [s.raw_of(e).decode() for e in s.received
              if e.find(".//{%s}pubsub" % NS_PUBSUB) is not None]
    expect_eq(pubsub, [], "pubsub stanzas carol received")
    expect(s.quirks == [], "nothing purple would mishandle", [], s.quirks)


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
