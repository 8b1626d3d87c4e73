#!/usr/bin/python3
"""Provisioning (issue 3): an admin of example.org gives alice a Barev
identity from an ordinary XMPP client; alice finds out what to tell her
Barev friends and adds them, by ad-hoc command (Gajim, Psi) and by chat
command (Conversations, Dino); mistakes are pointed out field by field and
change nothing; with `registration = open` users register themselves
(XEP-0077) and leave again; a restart forgets nothing.

alice's identity is alice@201:1::1; bob runs the Barev test peer (purple
profile) on 201:2::2.  Everything runs in a private network namespace.
"""
# ctest: timeout=400
import asyncio
import os
import sys
import time
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Server, Gateway, Client, expect, expect_eq  # noqa: E402
import barevpeer as bp                           # noqa: E402
import barevworld                                # noqa: E402
from barevworld import (chat, contact_jid, dial_refused, store_rows,  # noqa: E402
                        answer_contact_requests, expect_no_requests, gone, gateway_in_roster)

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"
DAVE_ADDR = "201:4::4"
OPEN_ADDR = "201:5::5"          # barev_address for self-registration
COMPONENT = harness.COMPONENT
CMD = "http://jabber.org/protocol/commands"
XDATA = "jabber:x:data"
REGISTER = "jabber:iq:register"

ADMIN_NODES = {"create-identity", "delete-identity", "list-identities",
               "add-contact", "remove-contact", "list-contacts", "status"}
USER_NODES = {"my-identity", "add-contact", "remove-contact", "list-contacts",
              "set-nick"}


BOB = contact_jid("bob", BOB_ADDR)
CAROL = contact_jid("carol", CAROL_ADDR)
DAVE = contact_jid("dave", DAVE_ADDR)


rows = store_rows


def store_snapshot(gw):
    return (rows(gw, "SELECT jid, nick, address, port FROM identities ORDER BY jid"),
            rows(gw, "SELECT identity_id, nick, address, port, name FROM contacts ORDER BY id"))


# ---------------------------------------------------------------- XEP-0050

class Cmd:
    """An ad-hoc command answer as a user's client sees it."""

    def __init__(self, iq):
        self.iq = iq
        self.type = iq["type"]
        self.error = iq["error"]["condition"] if self.type == "error" else None
        self.error_type = iq["error"]["type"] if self.type == "error" else None
        self.error_text = iq["error"]["text"] if self.type == "error" else None
        el = iq.xml.find("{%s}command" % CMD)
        self.status = self.sid = None
        self.note = self.note_type = None
        self.form = None            # {var: value} of the form, when one came
        if el is None:
            return
        self.status, self.sid = el.get("status"), el.get("sessionid")
        note = el.find("{%s}note" % CMD)
        if note is not None:
            self.note, self.note_type = note.text or "", note.get("type")
        x = el.find("{%s}x" % XDATA)
        if x is not None:
            self.form = {}
            for f in x.findall("{%s}field" % XDATA):
                v = f.find("{%s}value" % XDATA)
                self.form[f.get("var")] = v.text if v is not None and v.text else ""

    def __repr__(self):
        return "Cmd(%s status=%s note=%s:%r form=%s error=%s %r)" % (
            self.type, self.status, self.note_type, self.note, self.form,
            self.error, self.error_text)


async def command(client, node, fields=None, sid=None, action=None):
    attrs = " node='%s'" % node
    if sid:
        attrs += " sessionid='%s'" % sid
    if action:
        attrs += " action='%s'" % action
    x = ""
    if fields is not None:
        x = "<x xmlns='%s' type='submit'>%s</x>" % (XDATA, "".join(
            "<field var='%s'><value>%s</value></field>" % (k, escape(v))
            for k, v in fields.items()))
    r = await client.iq_query(COMPONENT, "set", "<command xmlns='%s'%s>%s</command>"
                              % (CMD, attrs, x))
    return Cmd(r)


async def run_form(client, node, fields):
    """What a user does in Gajim: open the command, fill the form, submit."""
    c = await command(client, node)
    expect(c.status == "executing" and c.form is not None,
           "%s opens with a form" % node, "executing + form", c)
    return await command(client, node, fields, sid=c.sid, action="complete")


async def command_nodes(client):
    r = await client.iq_query(COMPONENT, "get",
                              "<query xmlns='http://jabber.org/protocol/disco#items' node='%s'/>"
                              % CMD)
    expect(r["type"] == "result", "disco#items of the commands node", "result", str(r))
    return {item[1] for item in r["disco_items"]["items"]}


# ---------------------------------------------------------------- helpers

async def wait_roster(client, pred, what, timeout=10):
    """Poll the roster (on every push) until pred(roster) holds."""
    pushed = asyncio.Event()
    client.add_event_handler("roster_update", lambda _iq: pushed.set())
    deadline = time.monotonic() + timeout
    while True:
        roster = await client.roster_items()
        if pred(roster):
            return roster
        left = deadline - time.monotonic()
        expect(left > 0, what, "within %ss" % timeout, roster)
        pushed.clear()
        try:
            await asyncio.wait_for(pushed.wait(), min(left, 1.0))
        except asyncio.TimeoutError:
            pass


async def register_iq(client, itype, payload=""):
    return await client.iq_query(COMPONENT, itype,
                                 "<query xmlns='%s'>%s</query>" % (REGISTER, payload))


# ---------------------------------------------------------------- setup

async def setup():
    # other.org: a second server domain whose users this gateway is not for
    p = Server(harness.tmpdir("server"), domains=["other.org"])
    p.start()
    for u in ("alice", "admin", "zoe"):
        p.create_user(u, u)
    p.create_user("mallory", "mallory", domain="other.org")
    gw = Gateway(p, harness.tmpdir("gw"))
    gw.start()
    await gw.wait_up()
    bob = bp.Peer("bob", BOB_ADDR, profile="purple")
    bob.add_buddy("alice", ALICE_ADDR)
    await bob.start()
    admin = Client("admin@example.org", "admin", p, resource="gajim")
    alice = Client("alice@example.org", "alice", p, resource="phone")
    zoe = Client("zoe@example.org", "zoe", p)
    for c in (admin, alice, zoe):
        answer_contact_requests(c)
        await c.connect_and_wait()
    mallory = await Client("mallory@other.org", "mallory", p).connect_and_wait()
    return {"p": p, "gw": gw, "bob": bob, "admin": admin, "alice": alice, "zoe": zoe,
            "mallory": mallory}


# ---------------------------------------------------------------- scenarios

async def test_admin_creates_alices_identity(ctx):
    admin, gw = ctx["admin"], ctx["gw"]
    c = await command(admin, "create-identity")
    expect(c.form is not None and {"jid", "nick", "address", "port"} <= set(c.form),
           "create-identity asks for jid, nick, address, port",
           "jid nick address port", c)
    expect_eq(c.form["port"], "1337", "the port defaults to 1337")
    gw.mark()
    c = await command(admin, "create-identity", {
        "jid": "alice@example.org", "nick": "alice", "address": ALICE_ADDR,
        "port": c.form["port"]}, sid=c.sid, action="complete")
    expect(c.status == "completed" and c.note_type == "info"
           and "alice@201:1::1" in c.note,
           "the admin is told alice's Barev address", "completed, alice@201:1::1", c)
    await gw.wait_log(r"listening for Barev peers on \[201:1::1\]:1337")
    expect_eq(rows(gw, "SELECT jid, nick, address, port FROM identities"),
              [("alice@example.org", "alice", ALICE_ADDR, 1337)], "the store")


async def test_alice_finds_her_barev_address(ctx):
    alice = ctx["alice"]
    c = await command(alice, "my-identity")
    expect(c.status == "completed" and "alice@201:1::1" in (c.note or "")
           and "1337" in c.note,
           "my-identity tells alice what to give her Barev friends",
           "alice@201:1::1 and port 1337", c)
    body = await chat(alice, "whoami")
    expect("alice@201:1::1" in body, "the chat command says the same",
           "alice@201:1::1", body)


async def test_non_admin_is_forbidden_and_nothing_changes(ctx):
    alice, gw = ctx["alice"], ctx["gw"]
    before = store_snapshot(gw)
    c = await command(alice, "create-identity")
    expect(c.error == "forbidden" and c.error_type == "auth",
           "a user opening an admin command", "error forbidden (auth)", c)
    c = await command(alice, "delete-identity", {"jid": "alice@example.org"},
                      action="complete")
    expect(c.error == "forbidden", "a user submitting an admin command",
           "error forbidden", c)
    c = await command(alice, "status")
    expect(c.error == "forbidden", "a user asking for status", "error forbidden", c)
    body = await chat(alice, "admin delete alice@example.org")
    expect("administrators" in body, "an admin chat command from a user is refused",
           "only the administrators…", body)
    expect_eq(store_snapshot(gw), before, "the store after refused commands")


async def test_disco_shows_a_user_only_user_commands(ctx):
    alice, admin = ctx["alice"], ctx["admin"]
    nodes = await command_nodes(alice)
    expect_eq(nodes, USER_NODES, "commands alice sees")
    nodes = await command_nodes(admin)
    expect(ADMIN_NODES <= nodes, "commands the admin sees", sorted(ADMIN_NODES),
           sorted(nodes))


async def test_bad_inputs_name_the_field_and_change_nothing(ctx):
    admin, alice, gw = ctx["admin"], ctx["alice"], ctx["gw"]
    before = store_snapshot(gw)
    good = {"jid": "zoe@example.org", "nick": "zoe", "address": "201:6::6"}
    cases = [
        ("address", dict(good, address="not-an-ip")),
        ("nick", dict(good, nick="")),
        ("nick", dict(good, nick="n" * 2000)),
        ("jid", dict(good, jid="alice@example.org")),           # has one already
        ("nick", dict(good, nick="ALICE", address=ALICE_ADDR)),  # nick@addr taken
        ("port", dict(good, port="99999")),
    ]
    for field, fields in cases:
        c = await run_form(admin, "create-identity", fields)
        expect(c.status == "executing" and c.note_type == "error"
               and (c.note or "").startswith(field + ":"),
               "create-identity with a bad %s: an error note naming it" % field,
               "executing, note '%s: …'" % field, c)
        expect(c.form is not None and c.form.get(field) == fields[field],
               "the form comes back with the user's %s" % field, fields[field][:80],
               (c.form or {}).get(field, "")[:80])
    for bad in ("bob@", "bob@not-an-ip", "bob@201:1::1:99999"):
        c = await run_form(alice, "add-contact", {"contact": bad})
        expect(c.status == "executing" and c.note_type == "error"
               and (c.note or "").startswith("contact:"),
               "add-contact %r: an error note naming the contact field" % bad,
               "note 'contact: …'", c)
        expect_eq(c.form.get("contact"), bad, "the form keeps what alice typed")
        body = await chat(alice, "add " + bad)
        expect("contact" in body and "Usage" in body,
               "the chat command explains %r" % bad, "contact … Usage", body)
    expect_eq(store_snapshot(gw), before, "the store after every bad input")
    # the same session, corrected, goes through: the form was kept for that
    c = await run_form(admin, "create-identity", dict(good, address="not-an-ip"))
    c = await command(admin, "create-identity", good, sid=c.sid, action="complete")
    expect_eq(c.status, "completed", "the corrected form completes")
    c = await run_form(admin, "delete-identity", {"jid": "zoe@example.org"})
    expect_eq(c.status, "completed", "the admin deletes the test identity")
    expect_eq(store_snapshot(gw), before, "the store after create + delete")


async def test_alice_adds_bob_by_chat_command_and_bob_reaches_her(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    body = await chat(alice, "add bob@201:2::2 Bob Barev")
    expect("added" in body, "alice is told bob was added", "… added …", body)
    roster = await wait_roster(alice, lambda r: BOB in r, "bob appears in alice's roster")
    # Prosody (stock config + prosody.cfg.example): a roster push, nothing
    # for alice to accept; ejabberd 23.01: she accepted the gateway's request
    expect_no_requests(alice, BOB)
    expect_eq(roster[BOB]["name"], "Bob Barev", "bob's roster name")
    # bob is allowlisted now: his dial to alice's identity is answered
    s = await bob.dial("alice", ALICE_ADDR, timeout=10)
    alice.mark()
    await s.send_message("hello from Barev")
    m = await alice.wait_message(lambda m: m["from"].bare == BOB and m["body"],
                                 what="bob's message")
    expect_eq(m["body"], "hello from Barev", "bob's message reaches alice")
    body = await chat(alice, "contacts")
    expect("bob@201:2::2" in body and "Bob Barev" in body,
           "alice's contact list", "bob@201:2::2 (Bob Barev)", body)


async def test_alice_adds_carol_by_adhoc_command(ctx):
    alice = ctx["alice"]
    c = await command(alice, "add-contact")
    expect(c.form is not None and "jid" not in c.form and "contact" in c.form,
           "a user's add-contact form has no jid field", "contact, name", c)
    c = await command(alice, "add-contact", {"contact": "carol@201:3::3", "name": "Carol"},
                      sid=c.sid, action="complete")
    expect(c.status == "completed" and c.note_type == "info",
           "add-contact completes", "completed", c)
    roster = await wait_roster(alice, lambda r: CAROL in r, "carol appears in alice's roster")
    expect_no_requests(alice, CAROL)
    expect_eq(roster[CAROL]["name"], "Carol", "carol's roster name")
    c = await command(alice, "list-contacts")
    expect(c.status == "completed" and "carol@201:3::3" in c.note and "bob@201:2::2" in c.note,
           "list-contacts shows both", "bob and carol", c)


async def next_header_from(bob):
    """bob drops his pipes to alice; alice being online, the gateway dials
    him again: the `from` of the stream header it sends on the next pipe."""
    old = list(bob.sessions)
    for s in old:
        await s.close()
    s = await bob.wait_session(timeout=15, exclude=old)
    return s.remote_header.get("from")


async def test_alice_changes_her_nick_and_peers_see_it(ctx):
    """`nick` (chat) and `set-nick` (ad-hoc) change what alice is called on
    Barev: whoami/my-identity say so, the store keeps it, and the next pipe
    to a Barev friend carries the new nick in the gateway's stream header."""
    alice, bob, gw = ctx["alice"], ctx["bob"], ctx["gw"]
    body = await chat(alice, "nick alicia")
    expect("alicia@201:1::1" in body and "add" in body,
           "the nick command says the new address and that friends re-add it",
           "… alicia@201:1::1 … add …", body)
    body = await chat(alice, "whoami")
    expect("alicia@201:1::1" in body, "whoami after the nick change", "alicia@201:1::1", body)
    expect_eq(rows(gw, "SELECT nick FROM identities WHERE jid = ?", "alice@example.org"),
              [("alicia",)], "the stored nick")
    # bob adds her under the new name, as the gateway told her to ask
    bob.remove_buddy("alice", ALICE_ADDR)
    bob.add_buddy("alicia", ALICE_ADDR)
    expect_eq(await next_header_from(bob), "alicia@201:1::1",
              "the gateway's header on bob's next pipe")

    c = await run_form(alice, "set-nick", {"nick": "a lice"})
    expect(c.status == "executing" and c.note_type == "error"
           and (c.note or "").startswith("nick:"),
           "set-nick with a space: an error note naming the nick", "nick: …", c)
    c = await command(alice, "set-nick", {"nick": "alice"}, sid=c.sid, action="complete")
    expect(c.status == "completed" and "alice@201:1::1" in (c.note or ""),
           "set-nick back to alice", "completed, alice@201:1::1", c)
    c = await command(alice, "my-identity")
    expect("alice@201:1::1" in (c.note or ""), "my-identity after set-nick",
           "alice@201:1::1", c)
    bob.remove_buddy("alicia", ALICE_ADDR)
    bob.add_buddy("alice", ALICE_ADDR)
    expect_eq(await next_header_from(bob), "alice@201:1::1",
              "the gateway's header on bob's next pipe after set-nick")


async def test_removing_bob_drops_him_and_his_connection(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=5)
    body = await chat(alice, "remove bob@201:2::2")
    expect("removed" in body, "alice is told bob was removed", "… removed …", body)
    await wait_roster(alice, lambda r: gone(r, BOB), "bob leaves alice's roster")
    await s.wait_closed(timeout=10)
    expect(await dial_refused(bob, "alice", ALICE_ADDR),
           "bob's new connection is refused after the removal", "refused", "stream up")


async def test_admin_chat_commands(ctx):
    admin = ctx["admin"]
    body = await chat(admin, "help")
    expect("admin create" in body and "status" in body, "an admin's help", "admin …", body)
    body = await chat(admin, "admin identities")
    expect("alice@example.org" in body and "alice@201:1::1" in body,
           "admin identities", "alice@example.org: alice@201:1::1", body)
    body = await chat(admin, "admin contacts alice@example.org")
    expect("carol@201:3::3" in body, "admin contacts", "carol@201:3::3", body)
    c = await command(admin, "status")
    expect(c.status == "completed" and "201:1::1" in (c.note or ""),
           "status lists the listener", "[201:1::1]:1337 listening", c)
    # what the shipped server example grants: Prosody's roster write,
    # ejabberd 23.01's read only (deploy/ejabberd.yml.example)
    want = ("roster privilege granted" if barevworld.ROSTER_PUSH
            else "no roster privilege (subscription requests are used)")
    expect(want in c.note, "status tells the roster privilege", want, c.note)
    body = await chat(admin, "frobnicate")
    expect("help" in body.lower(), "unknown input gets the help text", "help", body)


async def test_registration_admin_refuses_with_an_explanation(ctx):
    zoe, gw = ctx["zoe"], ctx["gw"]
    before = store_snapshot(gw)
    r = await register_iq(zoe, "get")
    expect(r["type"] == "error" and r["error"]["condition"] == "not-allowed"
           and "administrator" in r["error"]["text"],
           "XEP-0077 get under registration = admin", "not-allowed, ask an administrator",
           str(r))
    r = await register_iq(zoe, "set", "<nick>zoe</nick>")
    expect(r["type"] == "error" and r["error"]["condition"] == "not-allowed"
           and r["error"]["type"] == "cancel" and "administrator" in r["error"]["text"],
           "XEP-0077 set under registration = admin", "not-allowed (cancel)", str(r))
    c = await command(zoe, "register")
    expect(c.error == "not-allowed", "the register command under admin", "not-allowed", c)
    body = await chat(zoe, "register zoe")
    expect("administrators" in body, "the register chat command explains",
           "ask an administrator", body)
    c = await command(zoe, "my-identity")
    expect(c.status == "completed" and "no Barev identity" in (c.note or "")
           and "admin" in c.note, "my-identity without one says how to get one",
           "ask an admin", c)
    expect_eq(store_snapshot(gw), before, "the store after refused registrations")


async def test_restart_preserves_everything(ctx):
    alice, gw = ctx["alice"], ctx["gw"]
    before = store_snapshot(gw)
    gw.mark()
    gw.restart()
    await gw.wait_log(r"listening for Barev peers on \[201:1::1\]:1337")
    await gw.wait_up()
    expect_eq(store_snapshot(gw), before, "the store after a restart")
    c = await command(alice, "my-identity")
    expect("alice@201:1::1" in (c.note or ""), "alice's identity after the restart",
           "alice@201:1::1", c)
    c = await command(alice, "list-contacts")
    expect("carol@201:3::3" in (c.note or "") and "bob@" not in c.note,
           "alice's contacts after the restart", "carol only", c)
    c = await run_form(alice, "remove-contact", {"contact": "carol@201:3::3"})
    expect_eq(c.status, "completed", "remove-contact by ad-hoc command")
    await wait_roster(alice, lambda r: gone(r, CAROL), "carol leaves alice's roster")


async def test_registration_open_register_and_unregister(ctx):
    zoe, gw = ctx["zoe"], ctx["gw"]
    gw.config.update(registration="open", barev_address=OPEN_ADDR)
    gw.write_config()
    gw.mark()
    gw.restart()
    await gw.wait_up()
    expect("register" in await command_nodes(zoe),
           "zoe, without an identity, sees the register command", "register", None)
    r = await register_iq(zoe, "get")
    q = r.xml.find("{%s}query" % REGISTER)
    expect(r["type"] == "result" and q is not None and q.find("{%s}nick" % REGISTER) is not None
           and q.find("{%s}registered" % REGISTER) is None,
           "XEP-0077 get offers a nick field", "<nick/>, not <registered/>", str(r))
    r = await register_iq(zoe, "set", "<nick>zoe</nick>")
    expect_eq(r["type"], "result", "XEP-0077 registration")
    await gw.wait_log(r"listening for Barev peers on \[201:5::5\]:1337")
    expect_eq(rows(gw, "SELECT nick, address, port FROM identities WHERE jid = ?",
                   "zoe@example.org"), [("zoe", OPEN_ADDR, 1337)], "zoe's identity")
    r = await register_iq(zoe, "get")
    q = r.xml.find("{%s}query" % REGISTER)
    expect(q is not None and q.find("{%s}registered" % REGISTER) is not None
           and q.findtext("{%s}nick" % REGISTER) == "zoe",
           "XEP-0077 get once registered", "<registered/><nick>zoe</nick>", str(r))
    body = await chat(zoe, "add dave@201:4::4 Dave")
    expect("added" in body, "zoe adds dave", "added", body)
    await wait_roster(zoe, lambda r: DAVE in r, "dave appears in zoe's roster")
    expect_no_requests(zoe, DAVE)
    r = await register_iq(zoe, "set", "<remove/>")
    expect_eq(r["type"], "result", "XEP-0077 unregistration")
    await wait_roster(zoe, lambda r: gone(r, DAVE), "dave leaves zoe's roster")
    expect_eq(rows(gw, "SELECT COUNT(*) FROM identities WHERE jid = ?", "zoe@example.org"),
              [(0,)], "zoe's identity is gone")
    expect_eq(rows(gw, "SELECT COUNT(*) FROM contacts WHERE address = ?", DAVE_ADDR),
              [(0,)], "zoe's contacts are gone")
    # the register command does the same, and the refusal names the field
    c = await run_form(zoe, "register", {"nick": "zo e"})
    expect(c.note_type == "error" and c.note.startswith("nick:"),
           "register with a bad nick", "note 'nick: …'", c)
    c = await command(zoe, "register", {"nick": "zoe"}, sid=c.sid, action="complete")
    expect_eq(c.status, "completed", "the register command")
    r = await register_iq(zoe, "set", "<remove/>")
    expect_eq(r["type"], "result", "XEP-0077 unregistration again")


async def test_after_register_the_gateway_is_in_her_roster_and_online(ctx):
    """Gajim and Dino cannot open a chat with a JID without '@': the
    gateway puts itself into the roster of whoever gets an identity (name
    "Barev gateway", group "Barev") and is online there, probes answered."""
    zoe, gw, p = ctx["zoe"], ctx["gw"], ctx["p"]
    r = await zoe.iq_query(None, "set", "<query xmlns='jabber:iq:roster'><item jid='%s'"
                           " subscription='remove'/></query>" % COMPONENT)
    expect(r["type"] == "result" or r["error"]["condition"] == "item-not-found",
           "zoe removes the gateway from her roster first", "result", str(r))
    await wait_roster(zoe, lambda r: COMPONENT not in r, "the gateway is out of zoe's roster")
    zoe.mark()
    since = len(zoe.presences)
    r = await register_iq(zoe, "set", "<nick>zoe</nick>")
    expect_eq(r["type"], "result", "zoe registers")
    # pushed (Prosody), or asked for and accepted as Gajim does (ejabberd 23.01)
    await gateway_in_roster(zoe, since=since)
    online = lambda pr: pr["from"].bare == COMPONENT and pr["type"] not in (  # noqa: E731
        "unavailable", "error", "subscribe", "subscribed", "unsubscribe", "unsubscribed")
    await zoe.wait_presence(online, what="the gateway's available presence")
    # logging in again, her server probes the gateway: it answers
    again = await Client("zoe@example.org", "zoe", p, resource="dino").connect_and_wait()
    try:
        await again.wait_presence(online, what="the gateway online after a new login")
    finally:
        await again.close()
    r = await register_iq(zoe, "set", "<remove/>")
    expect_eq(r["type"], "result", "zoe unregisters")


async def test_open_registration_is_for_the_servers_own_users(ctx):
    """registration = open lets the users of example.org (the domain the
    component hangs under) take identities, not any JID that can reach
    the component; registration_domains names other domains."""
    zoe, mallory, gw = ctx["zoe"], ctx["mallory"], ctx["gw"]
    gw.config.update(registration="open", barev_address=OPEN_ADDR)
    gw.write_config()
    gw.restart()
    await gw.wait_up()
    expect("register" not in await command_nodes(mallory),
           "a user of another server is not offered the register command", "no register",
           None)
    r = await register_iq(mallory, "set", "<nick>mallory</nick>")
    expect_eq(r["error"]["condition"], "not-allowed", "XEP-0077 from another server")
    c = await command(mallory, "register", {"nick": "mallory"})
    expect(c.error == "not-allowed" or c.note_type == "error",
           "the register command from another server is refused", "not-allowed", c)
    body = await chat(mallory, "register mallory")
    expect("own server" in body and "administrator" in body,
           "the chat command tells mallory why and to ask an administrator",
           "…for the users of its own server; ask an administrator…", body)
    expect_eq(rows(gw, "SELECT COUNT(*) FROM identities WHERE jid = ?", "mallory@other.org"),
              [(0,)], "no identity for mallory")

    gw.config.update(registration_domains="other.org")
    gw.write_config()
    gw.restart()
    await gw.wait_up()
    r = await register_iq(mallory, "set", "<nick>mallory</nick>")
    expect_eq(r["type"], "result", "XEP-0077 once other.org is listed")
    r = await register_iq(zoe, "set", "<nick>zoe</nick>")
    expect_eq(r["error"]["condition"], "not-allowed",
              "example.org is no longer implied once the list is set")
    r = await register_iq(mallory, "set", "<remove/>")
    expect_eq(r["type"], "result", "mallory unregisters")
    del gw.config["registration_domains"]
    gw.write_config()

if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR, DAVE_ADDR, OPEN_ADDR, "201:6::6"])
    harness.main()
