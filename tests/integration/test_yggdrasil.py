#!/usr/bin/python3
"""The gateway over real Yggdrasil (issue 12): two yggdrasil nodes in two
network namespaces (tests/lib/ygg.py), joined only by a veth with ULA
addresses.  Node A runs Prosody and the gateway; the admin gives alice an
identity on node A's address and dave one on an address of node A's routed
300::/64 subnet, made local with the command docs/operators.md gives.  Node
B runs bob, the Barev test peer (purple profile), on node B's address.
Presence with status and messages both ways and a file each way work for
both identities, and node A's TUN byte counters show that the bytes
crossed Yggdrasil.
"""
# ctest: timeout=300
import ipaddress
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client, expect, expect_eq  # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import chat, contact_jid         # noqa: E402
import ygg                                       # noqa: E402
from xfer import blob, http, upload              # noqa: E402

COMPONENT = harness.COMPONENT
MIB = 1024 * 1024
FILE_SIZE = MIB


def subnet_address(subnet, host="a"):
    """An address of a routed /64: "300:1:2:3::/64" -> "300:1:2:3::a"."""
    return subnet.split("/")[0] + host


async def setup():
    world = ygg.World(harness.tmpdir("ygg"))
    a, b = world.start(2)
    for node in (a, b):
        harness._logs.append(("yggdrasil " + node.name, node.log_path))
    # docs/operators.md, "One address per identity": the whole subnet local.
    subprocess.run(["ip", "-6", "route", "add", "local", a.subnet, "dev", "lo"], check=True)
    dave_addr = subnet_address(a.subnet)

    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    for u in ("alice", "dave", "admin"):
        p.create_user(u, u)
    gw = Gateway(p, harness.tmpdir("gw")).start()
    await gw.wait_up()
    admin = await Client("admin@example.org", "admin", p).connect_and_wait()
    for user, addr in (("alice", a.address), ("dave", dave_addr)):
        gw.mark()
        answer = await chat(admin, "admin create %s@example.org %s %s" % (user, user, addr))
        expect("%s@%s" % (user, addr) in answer, "the admin is told %s's Barev address" % user,
               "%s@%s" % (user, addr), answer)
        await gw.wait_log(r"listening for Barev peers on \[%s\]:1337" % addr)

    ygg.patch_sockets(bp, b)              # bob's sockets live on node B
    bob = bp.Peer("bob", b.address, profile="purple")
    bob.add_buddy("alice", a.address)
    bob.add_buddy("dave", dave_addr)
    await bob.start()
    ctx = {"world": world, "a": a, "b": b, "p": p, "gw": gw, "bob": bob,
           "bob_jid": contact_jid("bob", b.address), "addr": {"alice": a.address,
                                                          "dave": dave_addr}}
    for user in ("alice", "dave"):
        c = await Client("%s@example.org" % user, user, p).connect_and_wait()
        answer = await chat(c, "add bob@%s" % b.address)
        expect("added" in answer, "%s is told bob was added" % user, "… added …", answer)
        ctx[user] = c
    ctx["tun0"] = a.tun_bytes()
    return ctx


async def test_the_nodes_peer_over_the_veth_only(ctx):
    a, b = ctx["a"], ctx["b"]
    expect_eq(a.peers(), [b.address], "node A's peers (yggdrasilctl getPeers)")
    expect_eq(b.peers(), [a.address], "node B's peers (yggdrasilctl getPeers)")
    ygg_net = ipaddress.ip_network("200::/7")
    for node in (a, b):
        expect(ipaddress.ip_address(node.address) in ygg_net,
               "node %s's address (yggdrasil -address) is in 200::/7" % node.name,
               "200::/7", node.address)
        subnet = ipaddress.ip_network(node.subnet)
        expect(subnet.prefixlen == 64 and subnet.subnet_of(ygg_net) and
               node.subnet.startswith("3"),
               "node %s's subnet (yggdrasil -subnet) is a 300::/64" % node.name,
               "300:…::/64", node.subnet)


async def test_bob_reaches_both_identities_and_sees_them_online(ctx):
    bob = ctx["bob"]
    for user in ("alice", "dave"):
        s = await bob.wait_session(user, timeout=30)
        expect_eq(bp.addr_norm(s.remote_addr), bp.addr_norm(ctx["addr"][user]),
                  "%s's pipe comes from her address over Yggdrasil" % user)
        await s.wait_presence(lambda el: el.get("type") != "unavailable", timeout=15)
test_bob_reaches_both_identities_and_sees_them_online.timeout = 60


async def test_presence_with_status_reaches_both_users(ctx):
    bob, bob_jid = ctx["bob"], ctx["bob_jid"]
    for user in ("alice", "dave"):
        ctx[user].mark()
    await bob.set_presence("away", "über Yggdrasil")
    for user in ("alice", "dave"):
        pr = await ctx[user].wait_presence(
            lambda p: p["from"].bare == bob_jid and p["show"] == "away",
            timeout=15, what="bob away, at %s" % user)
        expect_eq(pr["status"], "über Yggdrasil", "bob's status at %s" % user)


async def test_presence_with_status_reaches_bob_from_both_users(ctx):
    bob = ctx["bob"]
    for user in ("alice", "dave"):
        s = await bob.wait_session(user)
        status = "%s über Yggdrasil" % user
        ctx[user].send_presence(pshow="dnd", pstatus=status)
        pr = await s.wait_presence(lambda el: el.findtext("{jabber:client}show") == "dnd",
                                   timeout=15)
        expect_eq(pr.findtext("{jabber:client}status"), status, "%s's status at bob" % user)


async def test_messages_both_ways_for_both_identities(ctx):
    bob, bob_jid = ctx["bob"], ctx["bob_jid"]
    for user in ("alice", "dave"):
        c = ctx[user]
        s = await bob.wait_session(user)
        text = "hello bob from %s — <ygg> & ünïcode" % user
        c.send_message(bob_jid, text)
        body, _ = await s.wait_message(timeout=15)
        expect_eq(body, text, "%s's message at bob" % user)
        c.mark()
        await s.send_message("hi %s ✓" % user)
        m = await c.wait_message(lambda m: m["from"].bare == bob_jid and m["body"],
                                 timeout=15, what="bob's message")
        expect_eq(m["body"], "hi %s ✓" % user, "bob's message at %s" % user)


async def test_a_file_each_way_for_both_identities(ctx):
    bob, bob_jid, p = ctx["bob"], ctx["bob_jid"], ctx["p"]
    for user in ("alice", "dave"):
        c = ctx[user]
        s = await bob.wait_session(user)
        # bob -> user: a link on the user's upload service, identical bytes
        data = blob(FILE_SIZE, "bob to " + user)
        c.mark()
        res = await s.send_file("from-bob-%s.bin" % user, data, timeout=60)
        expect(res["ok"], "bob's transfer to %s went through" % user, True, res)
        m = await c.wait_message(lambda m: m["from"].bare == bob_jid and
                                 (m["body"] or "").startswith("http"),
                                 timeout=60, what="the link to bob's file")
        status, got = await http("GET", m["body"])
        expect(status == 200 and got == data, "%s downloads bob's bytes unchanged" % user,
               len(data), (status, len(got)))
        expect_eq(res.get("data_from"), bp.addr_norm(ctx["addr"][user]),
                  "the data connection comes from %s's address" % user)
        # user -> bob
        data = blob(FILE_SIZE, user + " to bob")
        url = await upload(c, p.upload_service, "from-%s.bin" % user, data)
        c.send_message(bob_jid, url, oob_url=url)
        name, got = await bob.wait_file(timeout=60)
        expect_eq(name, "from-%s.bin" % user, "the file name at bob")
        expect(got == data, "bob gets %s's bytes unchanged" % user, len(data), len(got))
test_a_file_each_way_for_both_identities.timeout = 240


async def test_the_bytes_crossed_yggdrasil(ctx):
    """Four files of FILE_SIZE went through node A's TUN: two in, two out."""
    rx0, tx0 = ctx["tun0"]
    rx, tx = ctx["a"].tun_bytes()
    expect(rx - rx0 >= 2 * FILE_SIZE, "node A's TUN received bob's two files",
           ">= %d bytes" % (2 * FILE_SIZE), rx - rx0)
    expect(tx - tx0 >= 2 * FILE_SIZE, "node A's TUN sent alice's and dave's files",
           ">= %d bytes" % (2 * FILE_SIZE), tx - tx0)
    brx, btx = ctx["b"].tun_bytes()
    expect(brx >= 2 * FILE_SIZE and btx >= 2 * FILE_SIZE, "node B's TUN carried them too",
           ">= %d each way" % (2 * FILE_SIZE), (brx, btx))


if __name__ == "__main__":
    import netns
    netns.enter()
    harness.main()
