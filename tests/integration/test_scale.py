#!/usr/bin/python3
"""A moderate scale (issue 13): 50 identities x 20 contacts, 40 Barev peers,
5 users logged in.  Each online user's presence reaches exactly the peers
that are her contacts, her messages arrive on the pipe of the contact she
wrote to and nowhere else, and after a Prosody restart (every user
offline, every pipe closed, everybody back) the 100 pipes are re-dialled
through max_concurrent_dials slots: the status counters show the peak of
dials in flight at the cap, never above it.

The identities share one address (201:1::1, nicks u0..u49) and a listener;
identity i lists the peers p((i + k) mod 40), k < 20, each on its own
address; a peer knows (as buddies) exactly the identities that list it, so
a pipe from anybody else would be refused and counted.
"""
# ctest: timeout=600
import asyncio
import os
import re
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client, expect, expect_eq  # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import contact_jid               # noqa: E402

GW_ADDR = "201:1::1"
N_IDENT, N_CONTACTS, N_PEERS, N_ONLINE, CAP = 50, 20, 40, 5, 5
PEER_ADDRS = ["201:2::%x" % (j + 1) for j in range(N_PEERS)]


def contacts_of(i):
    return [(i + k) % N_PEERS for k in range(N_CONTACTS)]


def seed(gw):
    db = sqlite3.connect(gw.config["database"])
    with db:
        for i in range(N_IDENT):
            cur = db.execute("INSERT INTO identities (jid, nick, address, port,"
                             " created_at) VALUES (?, ?, ?, 1337, 0)",
                             ("u%d@example.org" % i, "u%d" % i, GW_ADDR))
            for j in contacts_of(i):
                db.execute("INSERT INTO contacts (identity_id, nick, address, port,"
                           " created_at) VALUES (?, ?, ?, 1337, 0)",
                           (cur.lastrowid, "p%d" % j, PEER_ADDRS[j]))
    db.close()


def status(gw):
    return gw.run("--config", gw.config_path, "--health").stdout


async def wait_status(gw, regex, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        text = status(gw)
        m = re.search(regex, text)
        if m:
            return m, text
        expect(time.monotonic() < deadline, what, regex, text)
        await asyncio.sleep(0.2)


def dials(text):
    m = re.search(r"Dials: (\d+) in flight, (\d+) waiting for a slot \(max (\d+),"
                  r" peak (\d+), started (\d+)\)", text)
    expect(m is not None, "the Dials line of status", "Dials: …", text)
    return [int(x) for x in m.groups()]


def up_sessions(peers):
    """{peer index: sorted nicks of the identities with a pipe up}"""
    return {j: sorted((s.remote_nick or "?").lower() for s in p.sessions
                      if s.up and not s.closed)
            for j, p in enumerate(peers)}


def expected_sessions(online):
    want = {j: [] for j in range(N_PEERS)}
    for i in online:
        for j in contacts_of(i):
            want[j].append("u%d" % i)
    return {j: sorted(v) for j, v in want.items()}


async def login(p, online):
    clients = []
    for i in online:
        c = Client("u%d@example.org" % i, "pw", p)
        await c.connect_and_wait()
        clients.append(c)
    return clients


async def setup():
    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    for i in range(N_ONLINE):
        p.create_user("u%d" % i, "pw")
    gw = Gateway(p, harness.tmpdir("gw"),
                 config={"max_concurrent_dials": str(CAP), "log_level": "info"})
    gw.start()
    await gw.wait_up()
    gw.stop()
    seed(gw)
    gw.start()
    await gw.wait_log(r"listening for Barev peers on \[201:1::1\]:1337")
    await gw.wait_up()
    await gw.wait_log(r"granted roster privilege")
    peers = []
    for j, addr in enumerate(PEER_ADDRS):
        peer = bp.Peer("p%d" % j, addr, profile="purple")
        for i in range(N_IDENT):
            if j in contacts_of(i):
                peer.add_buddy("u%d" % i, GW_ADDR)
        await peer.start()
        peers.append(peer)
    online = list(range(N_ONLINE))
    clients = await login(p, online)
    return {"p": p, "gw": gw, "peers": peers, "clients": clients,
            "online": online}


async def test_pipes_go_exactly_to_the_online_users_contacts(ctx):
    gw, peers, online = ctx["gw"], ctx["peers"], ctx["online"]
    n = N_ONLINE * N_CONTACTS
    _, text = await wait_status(gw, r"Pipes up: %d," % n, "%d pipes up" % n)
    expect_eq(up_sessions(peers), expected_sessions(online),
              "identities with a pipe up, per peer")
    expect_eq(sum(len(p.rejected) for p in peers), 0, "pipes the peers refused")
    inflight, waiting, cap, peak, started = dials(text)
    expect_eq(cap, CAP, "max_concurrent_dials in status")
    expect(peak <= CAP, "dials in flight never above the cap", "<= %d" % CAP, peak)
    expect(started >= n, "dials started", ">= %d" % n, started)
    m = re.search(r"Identities: (\d+), contacts: (\d+), users online: (\d+)", text)
    expect_eq([int(x) for x in m.groups()], [N_IDENT, N_IDENT * N_CONTACTS, N_ONLINE],
              "identities, contacts, users online")


async def test_presence_reaches_exactly_her_contacts(ctx):
    peers, clients = ctx["peers"], ctx["clients"]
    u0 = clients[0]
    u0.send_presence(pshow="away", pstatus="at lunch")
    mine = [s for j in contacts_of(0) for s in peers[j].sessions
            if s.up and (s.remote_nick or "").lower() == "u0"]
    expect_eq(len(mine), N_CONTACTS, "u0's pipes")
    for s in mine:
        await s.wait_presence(lambda el: any(bp.local(c.tag) == "show" and c.text == "away"
                                             for c in el), timeout=15)
    # u1 changes too: once her peers have it, u0's went nowhere else
    clients[1].send_presence(pshow="dnd")
    theirs = [s for j in contacts_of(1) for s in peers[j].sessions
              if s.up and (s.remote_nick or "").lower() == "u1"]
    for s in theirs:
        await s.wait_presence(lambda el: any(bp.local(c.tag) == "show" and c.text == "dnd"
                                             for c in el), timeout=15)
    for j, p in enumerate(peers):
        for s in p.sessions:
            if (s.remote_nick or "").lower() == "u0":
                continue
            away = [el for el in s.received if bp.local(el.tag) == "presence"
                    and any(bp.local(c.tag) == "show" and c.text == "away" for c in el)]
            expect_eq(len(away), 0, "u0's away at p%d on %s's pipe" % (j, s.remote_nick))


async def test_messages_take_the_right_pipe(ctx):
    peers, clients = ctx["peers"], ctx["clients"]
    u2 = clients[2]
    for j in contacts_of(2):
        u2.send_message(contact_jid("p%d" % j, PEER_ADDRS[j]), "to p%d from u2" % j)
    for j in contacts_of(2):
        s = await peers[j].wait_session("u2", timeout=10)
        body, _ = await s.wait_message(timeout=15)
        expect_eq(body, "to p%d from u2" % j, "the message on p%d's pipe from u2" % j)
    for j, p in enumerate(peers):
        for s in p.sessions:
            if (s.remote_nick or "").lower() == "u2":
                continue
            bodies = [el for el in s.received if bp.local(el.tag) == "message"]
            expect_eq(len(bodies), 0, "messages at p%d on %s's pipe" % (j, s.remote_nick))


async def test_prosody_restart_redials_through_the_cap(ctx):
    p, gw, peers, online = ctx["p"], ctx["gw"], ctx["peers"], ctx["online"]
    for c in ctx["clients"]:
        await c.close()
    p.restart()
    # the link comes back, nobody is online: every pipe is closed
    await wait_status(gw, r"users online: 0\b", "everybody offline")
    await wait_status(gw, r"Pipes up: 0,", "every pipe closed")
    _, text = await wait_status(gw, r"Dials: 0 in flight", "no dials")
    started0 = dials(text)[4]
    # everybody back at once: 100 dials through 5 slots
    ctx["clients"] = await login(p, online)
    n = N_ONLINE * N_CONTACTS
    _, text = await wait_status(gw, r"Pipes up: %d," % n, "%d pipes up again" % n,
                                timeout=120)
    inflight, waiting, cap, peak, started = dials(text)
    expect_eq(peak, CAP, "peak of dials in flight (the cap, reached, never passed)")
    expect(started - started0 >= n, "dials started after the restart",
           ">= %d" % n, started - started0)
    expect_eq(waiting, 0, "dials still waiting")
    expect_eq(up_sessions(peers), expected_sessions(online),
              "identities with a pipe up, per peer, after the restart")
    for c in ctx["clients"]:
        await c.close()


if __name__ == "__main__":
    import netns
    netns.enter([GW_ADDR] + PEER_ADDRS)
    harness.main()
