#!/usr/bin/python3
"""Start-up work proportional to what changed (issue 13): with Prosody's
roster grant (prosody.cfg.example: roster = "both") the gateway reads
alice's roster at each start and pushes only what differs.  Restarted after
a contact was added and another renamed while it was down, it sends
alice's client exactly those two pushes; restarted with nothing changed,
no roster push at all.

alice@example.org has the identity alice@201:1::1 with the Barev contacts
bob@201:2::2 and carol@201:3::3, provisioned in the store as a restart finds
them.  No Barev peer is needed: what is looked at is alice's roster.
"""
# ctest: timeout=300
import asyncio
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Server, Gateway, Client, expect, expect_eq  # noqa: E402
from barevworld import contact_jid, seed_identity, chat  # noqa: E402

ALICE_ADDR = "201:1::1"
COMPONENT = harness.COMPONENT
BOB = contact_jid("bob", "201:2::2")
CAROL = contact_jid("carol", "201:3::3")
DAVE = contact_jid("dave", "201:4::4")


def seed_contact(gw, nick, addr, name=None):
    db = sqlite3.connect(gw.config["database"])
    with db:
        db.execute("INSERT INTO contacts (identity_id, nick, address, port, name,"
                   " created_at) SELECT id, ?, ?, 1337, ?, 0 FROM identities"
                   " WHERE jid = 'alice@example.org'", (nick, addr, name))
    db.close()


def rename_contact(gw, nick, name):
    db = sqlite3.connect(gw.config["database"])
    with db:
        db.execute("UPDATE contacts SET name = ? WHERE nick = ?", (name, nick))
    db.close()


class Pushes(list):
    """The roster pushes (iq set) a client receives, each as the sorted
    list of its item JIDs, in arrival order."""

    def __init__(self, client):
        super().__init__()
        self.client = client
        self.arrived = asyncio.Event()
        client.add_event_handler("roster_update", self._on_update)

    def _on_update(self, iq):
        if iq["type"] == "set":
            self.append(sorted(str(j) for j in iq["roster"]["items"]))
            self.arrived.set()

    async def wait_for(self, jid, timeout=20):
        """Until a push of `jid` has arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(jid in p for p in self):
            left = deadline - loop.time()
            expect(left > 0, "a roster push of %s at %s"
                   % (jid, self.client.boundjid.bare), jid, list(self))
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass


async def setup():
    if harness.server_kind() != "prosody":
        harness.skip("needs a roster grant that writes (ejabberd 23.01 reads only)")
    p = Server(harness.tmpdir("server"))
    p.start()
    p.create_user("alice", "alice")
    gw = Gateway(p, harness.tmpdir("gw"))
    gw.start()
    await gw.wait_up()
    gw.stop()
    seed_identity(gw, "alice@example.org", "alice", ALICE_ADDR)
    seed_contact(gw, "bob", "201:2::2")
    seed_contact(gw, "carol", "201:3::3")
    gw.start()
    await gw.wait_log(r"granted roster privilege", timeout=20)
    alice = Client("alice@example.org", "alice", p)
    pushes = Pushes(alice)
    await alice.connect_and_wait()
    # her roster was empty: the gateway and both contacts are pushed
    want = {COMPONENT: "Barev gateway", BOB: "bob", CAROL: "carol"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        roster = await alice.roster_items()
        have = {j: (roster[j]["name"], roster[j]["subscription"], roster[j]["groups"])
                for j in want if j in roster}
        if have == {j: (n, "both", ["Barev"]) for j, n in want.items()}:
            break
        expect(loop.time() < deadline, "the gateway, bob and carol in alice's roster",
               want, have)
        pushes.arrived.clear()
        try:
            await asyncio.wait_for(pushes.arrived.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    return {"p": p, "gw": gw, "alice": alice, "pushes": pushes}


async def test_what_changed_while_down_is_pushed_and_nothing_else(ctx):
    """While the gateway is down, dave is provisioned and carol renamed:
    the restart pushes exactly those two items."""
    gw, alice, pushes = ctx["gw"], ctx["alice"], ctx["pushes"]
    gw.mark()
    gw.stop()
    seed_contact(gw, "dave", "201:4::4", "Dave D")
    rename_contact(gw, "carol", "Carol C")
    del pushes[:]
    gw.start()
    await gw.wait_up(timeout=20)
    await pushes.wait_for(DAVE)
    await pushes.wait_for(CAROL)
    # everything the gateway pushed at this start went before this answer
    await chat(alice, "help", timeout=20)
    expect_eq(sorted(j for p in pushes for j in p), sorted([CAROL, DAVE]),
              "the roster pushes at alice after dave was added and carol renamed")
    roster = await alice.roster_items()
    expect_eq(roster.get(DAVE, {}).get("name"), "Dave D", "dave's roster name")
    expect_eq(roster.get(CAROL, {}).get("name"), "Carol C", "carol's new roster name")
    expect_eq(roster.get(BOB, {}).get("name"), "bob", "bob untouched")


async def test_a_restart_with_nothing_changed_pushes_nothing(ctx):
    """The gateway restarts; alice's roster is as it wants it: her client
    sees no roster push (the gateway's answer to a chat command, sent after
    its roster round, is the barrier)."""
    gw, alice, pushes = ctx["gw"], ctx["alice"], ctx["pushes"]
    del pushes[:]
    gw.mark()
    gw.restart()
    await gw.wait_up(timeout=20)
    await gw.wait_log(r"roster sync: 1 roster\(s\) read, 0 item\(s\) pushed", timeout=30)
    await chat(alice, "help", timeout=20)
    expect_eq(pushes, [], "roster pushes at alice after a restart with nothing changed")


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR])
    harness.main()
