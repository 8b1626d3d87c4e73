#!/usr/bin/python3
"""Two XMPP servers, one Barev mesh (issue 12): alice@a.example and
bob@b.example chat through two gateways over real Yggdrasil, with no DNS,
no certificates and no s2s between the servers.

Node A (the test's own network namespace) runs Prosody for a.example and
gateway barev.a.example with alice's identity on node A's Yggdrasil
address; node B (tests/lib/ygg.py) runs Prosody for b.example and gateway
barev.b.example with bob's identity on node B's address.  Each user adds
the other by Barev address.  They see each other's presence and status,
exchange messages with markup characters and non-ASCII, typing
notifications, delivery receipts and avatars, and a file each way ends as
a link on the receiver's own server's upload service with identical bytes.
"""
# ctest: timeout=300
import functools
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq            # noqa: E402
from barevworld import chat, contact_jid, server_with_gateway  # noqa: E402
import ygg                                       # noqa: E402
from xfer import blob, http, png, photo_of, upload, vcard_photo  # noqa: E402

MIB = 1024 * 1024


# ---------------------------------------------------------------- the world

async def server(node, name, domain):
    """Prosody for `domain` and its gateway barev.<domain>, on `node`; an
    admin gives `name` an identity on the node's Yggdrasil address."""
    s = await server_with_gateway(name, domain, node.address, within=node.netns())
    s["node"] = node
    return s


async def setup():
    world = ygg.World(harness.tmpdir("ygg"))
    a, b = world.start(2)
    for node in (a, b):
        harness._logs.append(("yggdrasil " + node.name, node.log_path))
    alice = await server(a, "alice", "a.example")
    bob = await server(b, "bob", "b.example")
    # how each sees the other: a contact JID on their own gateway
    alice["peer"] = contact_jid("bob", b.address, alice["p"].component)
    bob["peer"] = contact_jid("alice", a.address, bob["p"].component)
    for me, other in ((alice, bob), (bob, alice)):
        answer = await chat(me["client"], "add %s@%s" % (other["name"], other["node"].address),
                            to=me["p"].component)
        expect("added" in answer, "%s adds %s" % (me["name"], other["name"]), "added", answer)
    for me, other in ((alice, bob), (bob, alice)):
        await me["gw"].wait_log(r"bridge: pipe up: %s@%s <-> %s@" % (
            me["name"], me["p"].domain, other["name"]), timeout=30, since=0)
    return {"a": a, "b": b, "alice": alice, "bob": bob}


def both(ctx):
    return ((ctx["alice"], ctx["bob"]), (ctx["bob"], ctx["alice"]))


# ---------------------------------------------------------------- tests

async def test_each_server_and_gateway_runs_on_its_own_node(ctx):
    for user in (ctx["alice"], ctx["bob"]):
        node = user["node"]
        want = node.run(["readlink", "/proc/self/ns/net"]).stdout.strip()
        for what, pid in (("Prosody", user["p"].proc.pid), ("gateway", user["gw"].pid)):
            expect_eq(os.readlink("/proc/%d/ns/net" % pid), want,
                      "%s's %s runs on node %s" % (user["name"], what, node.name))
    ctx["tun0"] = ctx["a"].tun_bytes()


async def test_presence_with_status_both_ways(ctx):
    for me, other in both(ctx):
        status = "%s is à la plage <3 & ☀" % me["name"]
        other["client"].mark()
        me["client"].send_presence(pshow="away", pstatus=status)
        pr = await other["client"].wait_presence(
            lambda p: p["from"].bare == other["peer"] and p["show"] == "away",
            timeout=20, what="%s away" % me["name"])
        expect_eq(pr["status"], status, "%s's status at %s" % (me["name"], other["name"]))


async def test_messages_with_markup_and_non_ascii_both_ways(ctx):
    for me, other in both(ctx):
        text = "<b>hi</b> & 'q' \"dq\" <![CDATA[x]]> — %s: ünïcødé ✓ 𝄞 日本" % me["name"]
        other["client"].mark()
        me["client"].send_message(me["peer"], text)
        m = await other["client"].wait_message(
            lambda m: m["from"].bare == other["peer"] and m["body"], timeout=20,
            what="%s's message" % me["name"])
        expect_eq(m["body"], text, "%s's message at %s" % (me["name"], other["name"]))


async def test_chat_states_both_ways(ctx):
    for me, other in both(ctx):
        other["client"].mark()
        me["client"].send_message(me["peer"], None, chat_state="composing")
        await other["client"].wait_message(
            lambda m: m["from"].bare == other["peer"] and m["chat_state"] == "composing",
            timeout=20, what="%s is typing" % me["name"])


async def test_receipts_both_ways(ctx):
    for me, other in both(ctx):
        me["client"].mark()
        mid = me["client"].send_message(me["peer"], "receipt please", receipt=True)
        r = await me["client"].wait_message(lambda m: m["receipt"] == mid, timeout=20,
                                            what="the receipt for %s's message" % me["name"])
        expect_eq(r["from"].bare, me["peer"], "the receipt comes from the contact")
        await other["client"].wait_message(
            lambda m: m["from"].bare == other["peer"] and m["body"] == "receipt please",
            timeout=20, what="the message itself")


async def test_avatars_both_ways(ctx):
    for i, (me, other) in enumerate(both(ctx)):
        picture = png(48, 48, seed=i + 1)
        want = hashlib.sha1(picture).hexdigest()
        other["client"].mark()
        await me["client"]["xep_0153"].set_avatar(avatar=picture, mtype="image/png", timeout=10)
        await other["client"].wait_presence(
            lambda p: p["from"].bare == other["peer"] and photo_of(p) == want,
            timeout=30, what="%s's presence with her avatar's hash" % me["name"])
        _, got = await vcard_photo(other["client"], other["peer"])
        expect(got == picture, "%s's avatar in her vCard at %s" % (me["name"], other["name"]),
               len(picture), None if got is None else len(got))
test_avatars_both_ways.timeout = 120


async def test_a_file_each_way_ends_on_the_receivers_own_upload_service(ctx):
    for me, other in both(ctx):
        data = blob(MIB, "from " + me["name"])
        url = await upload(me["client"], me["p"].upload_service, "from-%s.bin" % me["name"],
                           data, via=functools.partial(http, node=me["node"]))
        other["client"].mark()
        me["client"].send_message(me["peer"], url, oob_url=url)
        m = await other["client"].wait_message(
            lambda m: m["from"].bare == other["peer"] and (m["body"] or "").startswith("http"),
            timeout=60, what="the link to %s's file" % me["name"])
        # the receiver's upload service as her server hands it out (and as
        # her gateway's download_hosts names it): https://upload.<her
        # domain>:<her https port>/
        own = other["p"].download_host
        expect(own.startswith("https://%s:" % other["p"].upload_service),
               "%s's upload service URL prefix" % other["name"],
               "https://%s:…" % other["p"].upload_service, own)
        expect(m["body"].startswith(own) and m["body"] != url,
               "the link is on %s's own upload service" % other["name"], own + "…", m["body"])
        status, got = await http("GET", m["body"], node=other["node"])
        expect(status == 200 and got == data, "%s downloads identical bytes" % other["name"],
               len(data), (status, len(got)))
test_a_file_each_way_ends_on_the_receivers_own_upload_service.timeout = 180


async def test_it_all_crossed_yggdrasil(ctx):
    """A file of 1 MiB each way went through node A's TUN."""
    rx0, tx0 = ctx["tun0"]
    rx, tx = ctx["a"].tun_bytes()
    expect(rx - rx0 >= MIB and tx - tx0 >= MIB, "node A's TUN carried both files",
           ">= %d bytes each way" % MIB, (rx - rx0, tx - tx0))


if __name__ == "__main__":
    import netns
    netns.enter()
    harness.main()
