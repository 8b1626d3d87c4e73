#!/usr/bin/python3
"""Barev lives in Yggdrasil's 200::/7 (issue 15, security item 4).

With `refuse_outside_yggdrasil` at its default (true) the gateway never
connects anywhere else, so a user cannot make it probe a loopback service
(`add x@[::1]:47001`, then watch the contact's connected state): the add is
refused with a note naming the field, and a contact or identity that is
already stored outside 200::/7 (from before the switch) gets one WARN line
and is neither dialled nor accepted.  Set to false (here by SIGHUP, as an
operator would), the same contacts are dialled and accepted as before;
back to true, they are refused again.

alice@201:1::1 has contacts carol@201:3::3 (inside: the control),
bob@fd00:2::2 (outside: the gateway would dial him), dave@[fd00:4::4]:1338
(outside: he dials in; nothing listens on the port the gateway would dial)
and x@[::1]:47001 (a loopback "service" that counts connections).  zoe has
an identity outside, zoe@fd00:5::5, with carol as her contact.
"""
# ctest: timeout=300
import asyncio
import os
import signal
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client, expect, expect_eq  # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import chat, contact_jid, dial_refused, seed_identity, store_rows  # noqa: E402
from test_provisioning import run_form  # noqa: E402

ALICE_ADDR = "201:1::1"
CAROL_ADDR = "201:3::3"
BOB_ADDR = "fd00:2::2"
DAVE_ADDR = "fd00:4::4"
ZOE_ADDR = "fd00:5::5"
PROBE_PORT = 47001
DAVE = contact_jid("dave", "[%s]:1338" % DAVE_ADDR)


def seed_contact(gw, jid, nick, addr, port=1337):
    """A contact stored before the switch, the way a restart finds it."""
    db = sqlite3.connect(gw.config["database"])
    with db:
        ident = db.execute("SELECT id FROM identities WHERE jid = ?", (jid,)).fetchone()[0]
        db.execute("INSERT INTO contacts (identity_id, nick, address, port, created_at)"
                   " VALUES (?, ?, ?, ?, 0)", (ident, nick, addr, port))
    db.close()


class Probe:
    """A TCP service on [::1]:PROBE_PORT that only counts connections."""

    def __init__(self):
        self.connections = 0
        self.changed = asyncio.Event()

    async def start(self):
        self.server = await asyncio.start_server(self._conn, "::1", PROBE_PORT)
        return self

    async def _conn(self, reader, writer):
        self.connections += 1
        self.changed.set()
        writer.close()


def warn_count(gw, what, since=0):
    return gw.log_text(since).count("WARN policy: " + what)


async def sighup(gw, value):
    gw.config["refuse_outside_yggdrasil"] = value
    gw.write_config()
    since = gw.mark()
    os.kill(gw.pid, signal.SIGHUP)
    await gw.wait_log(r"policy: refuse_outside_yggdrasil is now %s" % value)
    return since


async def setup():
    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    for u in ("alice", "zoe"):
        p.create_user(u, u)
    # the default: the config says nothing about the switch
    gw = Gateway(p, harness.tmpdir("gw"))
    expect("refuse_outside_yggdrasil" not in gw.config, "the test runs on the default")
    gw.start()
    await gw.wait_up()
    gw.stop()
    seed_identity(gw, "alice@example.org", "alice", ALICE_ADDR)
    seed_identity(gw, "zoe@example.org", "zoe", ZOE_ADDR)
    seed_contact(gw, "alice@example.org", "carol", CAROL_ADDR)
    seed_contact(gw, "alice@example.org", "bob", BOB_ADDR)
    seed_contact(gw, "alice@example.org", "dave", DAVE_ADDR, port=1338)
    seed_contact(gw, "alice@example.org", "x", "::1", port=PROBE_PORT)
    seed_contact(gw, "zoe@example.org", "carol", CAROL_ADDR)
    probe = await Probe().start()
    peers = {}
    for nick, addr in (("bob", BOB_ADDR), ("carol", CAROL_ADDR), ("dave", DAVE_ADDR)):
        peers[nick] = bp.Peer(nick, addr, profile="purple")
        peers[nick].add_buddy("alice", ALICE_ADDR)
        await peers[nick].start()
    peers["carol"].add_buddy("zoe", ZOE_ADDR)
    gw.start()
    await gw.wait_up()
    return {"p": p, "gw": gw, "probe": probe, **peers}


async def test_stored_outside_contacts_are_not_dialled(ctx):
    gw, probe, bob, carol = ctx["gw"], ctx["probe"], ctx["bob"], ctx["carol"]
    for what in ("contact bob@fd00:2::2 of alice@example.org is outside",
                 "contact x@::1 of alice@example.org is outside",
                 "contact dave@fd00:4::4 of alice@example.org is outside",
                 "identity zoe@fd00:5::5 of zoe@example.org is outside"):
        expect_eq(warn_count(gw, what), 1, "one WARN line: " + what)
    # alice comes online: the gateway wants a pipe to every contact
    since = gw.mark()
    ctx["alice"] = await Client("alice@example.org", "alice", ctx["p"]).connect_and_wait()
    # the control: carol, inside 200::/7, is dialled
    await carol.wait_session("alice", timeout=15)
    # the gateway logs each refused dial; had it dialled instead, what the
    # probe and bob saw is the failure reported (the finally clauses)
    try:
        await gw.wait_log(r"not dialling x@\[::1\]:%d from \[201:1::1\]: refused by"
                          r" policy" % PROBE_PORT, since=since)
    finally:
        expect_eq(probe.connections, 0,
                  "connections the gateway made to [::1]:%d" % PROBE_PORT)
    try:
        await gw.wait_log(r"not dialling bob@\[fd00:2::2\]:1337 from \[201:1::1\]: refused",
                          since=since)
    finally:
        expect_eq(bob.all_sessions, [], "bob's sessions (the gateway never dialled him)")
    expect_eq(warn_count(gw, "contact bob@fd00:2::2"), 1,
              "still one WARN line for bob after the dial attempts")


async def test_outside_peers_are_not_accepted(ctx):
    gw, dave, carol = ctx["gw"], ctx["dave"], ctx["carol"]
    expect(await dial_refused(dave, "alice", ALICE_ADDR),
           "dave (allowlisted, outside 200::/7) dialling alice is closed",
           "refused", "stream up")
    await gw.wait_log(r"connection from \[fd00:4::4\] to \[201:1::1\]:1337 refused by policy")
    # an identity outside 200::/7 accepts nobody, even from inside
    expect(await dial_refused(carol, "zoe", ZOE_ADDR),
           "carol dialling zoe's identity outside 200::/7 is closed", "refused",
           "stream up")
    await gw.wait_log(r"connection from \[201:3::3\] to \[fd00:5::5\]:1337 refused by policy")


async def test_adding_outside_contacts_is_refused(ctx):
    alice, gw = ctx["alice"], ctx["gw"]
    before = store_rows(gw, "SELECT nick, address, port FROM contacts ORDER BY id")
    body = await chat(alice, "add eve@[::1]:47002")
    expect("contact" in body and "200::/7" in body,
           "the chat command explains why", "contact: … outside Yggdrasil's 200::/7", body)
    c = await run_form(alice, "add-contact", {"contact": "eve@[::1]:47002"})
    expect(c.status == "executing" and c.note_type == "error"
           and (c.note or "").startswith("contact:") and "200::/7" in c.note,
           "add-contact: an error note naming the contact field", "contact: … 200::/7", c)
    expect_eq(store_rows(gw, "SELECT nick, address, port FROM contacts ORDER BY id"), before,
              "the store after the refused adds")


async def test_switched_off_they_work_as_before(ctx):
    gw, alice, probe, bob, dave = ctx["gw"], ctx["alice"], ctx["probe"], ctx["bob"], ctx["dave"]
    await sighup(gw, "false")
    # the dials refused before are made now
    s = await bob.wait_session("alice", timeout=15)
    expect(s.up, "the gateway dials bob once the switch is off")
    while probe.connections == 0:
        probe.changed.clear()
        await asyncio.wait_for(probe.changed.wait(), 15)
    s = await dave.dial("alice", ALICE_ADDR, timeout=10)
    alice.mark()
    await s.send_message("from outside")
    m = await alice.wait_message(lambda m: m["from"].bare == DAVE and m["body"],
                                 what="dave's message")
    expect_eq(m["body"], "from outside", "dave, outside 200::/7, is accepted")
    body = await chat(alice, "add eve@[::1]:47002")
    expect("added" in body and "Warning" in body, "adding outside 200::/7 with a warning",
           "added … Warning …", body)
    body = await chat(alice, "remove eve@[::1]:47002")
    expect("removed" in body, "eve removed again", "removed", body)
    ctx["dave_session"] = s


async def test_switched_on_again_they_are_refused(ctx):
    gw, dave = ctx["gw"], ctx["dave"]
    await ctx["dave_session"].close()
    since = await sighup(gw, "true")
    expect_eq(warn_count(gw, "contact dave@fd00:4::4", since), 1,
              "the WARN line again when the switch is turned back on")
    expect(await dial_refused(dave, "alice", ALICE_ADDR),
           "dave's next connection is refused again", "refused", "stream up")
    await ctx["alice"].close()

if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, CAROL_ADDR, BOB_ADDR, DAVE_ADDR, ZOE_ADDR])
    harness.main()
