"""The world most bridge tests start from: a private XMPP server (Prosody,
or ejabberd with BAREV_TEST_SERVER=ejabberd), the gateway
with alice@example.org given the Barev identity alice@201:1::1 (seeded in
the store, the way a restart finds it), and Barev test peers bob@201:2::2
(purple profile) and carol@201:3::3 (pascal profile) who have alice as a
buddy.  Plus the small helpers those tests share.
"""
import asyncio
import contextlib
import sqlite3
import time

import harness
from harness import Server, Gateway, Client, Prosody, expect
import barevpeer as bp

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"


def contact_jid(nick, addr, component=harness.COMPONENT):
    """The contact's JID on the component: XEP-0106-escaped nick@addr."""
    local = (nick + "@" + addr).replace("\\", "\\5c").replace("@", "\\40").replace(":", "\\3a")
    return local.lower() + "@" + component


BOB = contact_jid("bob", BOB_ADDR)
CAROL = contact_jid("carol", CAROL_ADDR)


def store_rows(gw, sql, *args):
    """Rows straight from the gateway's SQLite file."""
    db = sqlite3.connect(gw.config["database"])
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


async def wait_count(gw, table, pred, what, timeout=10):
    """Until the row count of `table` in the gateway's store satisfies
    pred (the inbox fills while the component link is down; delivered
    outbox rows are deleted a moment after they reach the kernel); fails
    after `timeout` seconds with the count."""
    deadline = time.monotonic() + timeout
    while True:
        have = store_rows(gw, "SELECT count(*) FROM %s" % table)[0][0]
        if pred(have):
            return have
        expect(time.monotonic() < deadline, what, "a matching count", have)
        await asyncio.sleep(0.05)


async def wait_inbox(gw, n, what, timeout=10):
    """Until the gateway's inbox holds at least n stanzas."""
    return await wait_count(gw, "inbox", lambda have: have >= n, what, timeout)


def seed_identity(gw, jid, nick, addr):
    """Provision an identity the way a restart finds it: in the store."""
    db = sqlite3.connect(gw.config["database"])
    with db:
        db.execute("INSERT INTO identities (jid, nick, address, port, created_at)"
                   " VALUES (?, ?, ?, 1337, 0)", (jid, nick, addr))
    db.close()


# Whether the server lets the gateway write rosters (XEP-0356 roster set).
# Prosody with prosody.cfg.example does; ejabberd 23.01 with
# deploy/ejabberd.yml.example grants roster read only (its mod_roster fails
# privileged sets), so there Barev contacts arrive as subscription requests.
ROSTER_PUSH = harness.server_kind() == "prosody"


def answer_contact_requests(client):
    """Where the gateway cannot write rosters, accept every subscription
    request from a contact JID or from the gateway JID itself the way
    Gajim's "Accept" does: name the item after the request's XEP-0172 nick,
    allow, and subscribe back.  Where it can (ROSTER_PUSH), leave requests
    unanswered: expect_no_requests() then fails the test, as contacts must
    appear with nothing to accept."""
    if ROSTER_PUSH:
        return

    def on_subscribe(pres):
        jid = pres["from"].bare
        if jid != harness.COMPONENT and not jid.endswith("@" + harness.COMPONENT):
            return
        nick = pres.xml.find("{http://jabber.org/protocol/nick}nick")
        name = nick.text if nick is not None and nick.text else ""
        client.update_roster(jid, name=name, block=False)
        client.send_presence(pto=jid, ptype="subscribed")
        client.send_presence(pto=jid, ptype="subscribe")
    client.add_event_handler("presence_subscribe", on_subscribe)


def expect_no_requests(client, jid):
    """With the roster privilege, the contact came without a subscription
    request for the user to accept."""
    if not ROSTER_PUSH:
        return
    asked = [p for p in client.presences
             if p["type"] == "subscribe" and p["from"].bare == jid]
    expect(not asked, "%s reached %s's roster with nothing to accept"
           % (jid, client.boundjid.bare), "no subscription request", asked)


GATEWAY_NAME = "Barev gateway"


async def gateway_in_roster(client, since=0, timeout=10):
    """Wait until the gateway JID is in the client's roster with both
    subscriptions (it sees her presence, she sees it online); returns the
    item after checking how it got there.  With the roster privilege
    (Prosody) the gateway pushed it, named "Barev gateway" in group
    "Barev", with nothing for her to accept.  Without (ejabberd 23.01) the
    gateway asked with a subscription request from its own JID carrying
    the nick "Barev gateway", and answer_contact_requests() accepted it as
    Gajim would: the item is named from the nick, in no group.  `since`:
    the request must be among client.presences[since:]."""
    me = harness.COMPONENT
    pushed = asyncio.Event()
    client.add_event_handler("roster_update", lambda _iq: pushed.set())
    deadline = time.monotonic() + timeout
    while True:
        roster = await client.roster_items()
        item = roster.get(me)
        if item is not None and item["subscription"] == "both":
            break
        left = deadline - time.monotonic()
        expect(left > 0, "the gateway in %s's roster" % client.boundjid.bare,
               "subscription both", item)
        pushed.clear()
        try:
            await asyncio.wait_for(pushed.wait(), min(left, 1.0))
        except asyncio.TimeoutError:
            pass
    groups = ["Barev"] if ROSTER_PUSH else []
    expect((item["name"], item["groups"]) == (GATEWAY_NAME, groups),
           "the gateway's roster item", (GATEWAY_NAME, groups, "both"), item)
    expect_no_requests(client, me)
    if not ROSTER_PUSH:
        asked = [p for p in client.presences[since:]
                 if p["type"] == "subscribe" and p["from"].bare == me]
        nicks = [p.xml.findtext("{http://jabber.org/protocol/nick}nick") for p in asked]
        expect(GATEWAY_NAME in nicks, "the gateway asked %s with a subscription request"
               % client.boundjid.bare, "subscribe with nick %r" % GATEWAY_NAME, nicks)
    return item


def gone(roster, jid):
    """jid left the roster.  Without roster writes (ejabberd 23.01) the
    gateway can only revoke both subscriptions; the item stays, with
    subscription none, until the user deletes it."""
    if jid not in roster:
        return True
    return not ROSTER_PUSH and roster[jid]["subscription"] == "none"


async def subscribe(alice, jid):
    """alice adds a contact from her client, as Gajim's 'Add contact' does.

    With XEP-0356 the gateway writes the roster item itself (subscription
    both) and the server swallows the then-redundant "subscribed": what
    alice sees is a roster push that puts the contact in her roster.
    Without roster writes (ejabberd 23.01) the gateway answers "subscribed"
    and asks back; answer_contact_requests() accepts."""
    pushed = asyncio.Event()
    alice.add_event_handler("roster_update", lambda _iq: pushed.set())
    alice.send_presence(pto=jid, ptype="subscribe")
    deadline = time.monotonic() + 10
    while True:
        roster = await alice.roster_items()
        if roster.get(jid, {}).get("subscription") in ("to", "both"):
            expect_no_requests(alice, jid)
            return roster[jid]
        left = deadline - time.monotonic()
        expect(left > 0, "%s in alice's roster" % jid, "subscription to/both",
               roster.get(jid))
        pushed.clear()
        try:
            await asyncio.wait_for(pushed.wait(), left)
        except asyncio.TimeoutError:
            pass


async def chat(client, text, to=harness.COMPONENT, timeout=10):
    """A chat command to the gateway `to`, as a user types it; the plain-text
    answer (which comes as a chat message)."""
    client.mark()
    client.send_message(to, text)
    m = await client.wait_message(lambda m: m["from"].bare == to and m["body"],
                                  timeout=timeout, what="%s's answer to %r" % (to, text))
    expect(m["type"] == "chat", "the answer to a chat command is a chat message",
           "chat", m["type"])
    return m["body"]


async def dial_refused(peer, nick, addr):
    """The Barev peer dials nick@addr; True when the gateway closed before a
    stream came up."""
    try:
        s = await peer.dial(nick, addr, timeout=10)
    except (ConnectionError, OSError):
        return True
    await s.close()
    return False


async def start(users=("alice",), gw_config=None, prosody_kwargs=None,
                subscribe_peers=True):
    """Prosody + gateway + bob and carol listening; alice logged in and,
    with subscribe_peers, both peers in her roster and their pipes up.
    Returns {"p", "gw", "bob", "carol", "alice"}."""
    p = Server(harness.tmpdir("server"), **(prosody_kwargs or {}))
    p.start()
    for u in users:
        p.create_user(u, u)
    gw = Gateway(p, harness.tmpdir("gw"), config=gw_config)
    gw.start()
    await gw.wait_up()
    gw.stop()
    seed_identity(gw, "alice@example.org", "alice", ALICE_ADDR)
    gw.start()
    await gw.wait_log(r"listening for Barev peers on \[201:1::1\]:1337")
    await gw.wait_up()
    peers = {}
    for nick, addr, profile in (("bob", BOB_ADDR, "purple"), ("carol", CAROL_ADDR, "pascal")):
        peers[nick] = bp.Peer(nick, addr, profile=profile)
        peers[nick].add_buddy("alice", ALICE_ADDR)
        await peers[nick].start()
    alice = Client("alice@example.org", "alice", p)
    answer_contact_requests(alice)
    await alice.connect_and_wait()
    if subscribe_peers:
        await subscribe(alice, BOB)
        await subscribe(alice, CAROL)
        await peers["bob"].wait_session("alice", timeout=15)
        await peers["carol"].wait_session("alice", timeout=15)
    return {"p": p, "gw": gw, "bob": peers["bob"], "carol": peers["carol"],
            "alice": alice}


async def two_gateways(alice_addr, bob_addr):
    """alice@a.example and bob@b.example, each on a Prosody with its own
    gateway (server_with_gateway), with Barev identities on the given
    addresses; each adds the other by chat command.  Each dict gets
    "peer": the other's contact JID on its own gateway."""
    alice = await server_with_gateway("alice", "a.example", alice_addr)
    bob = await server_with_gateway("bob", "b.example", bob_addr)
    alice["peer"] = contact_jid("bob", bob_addr, alice["p"].component)
    bob["peer"] = contact_jid("alice", alice_addr, bob["p"].component)
    for me, other in ((alice, bob), (bob, alice)):
        answer = await chat(me["client"], "add %s@%s" % (other["name"], other["addr"]),
                            to=me["p"].component)
        expect("added" in answer, "%s adds %s" % (me["name"], other["name"]), "added", answer)
    return alice, bob


async def wait_gateway_peers(alice, bob, timeout=30):
    """Until each gateway has learnt that the other one is a gateway."""
    for me, other in ((alice, bob), (bob, alice)):
        await me["gw"].wait_log(r"peercaps: %s@%s is a barev-gateway" % (
            other["name"], other["addr"]), timeout=timeout, since=0)


async def server_with_gateway(name, domain, addr, within=None):
    """A Prosody of its own for `domain` with its gateway barev.<domain>
    (for two servers side by side); its admin gives `name` an identity
    on `addr`.  `within`: a context the server's processes and sockets
    start in (a node's network namespace).  {name, addr, p, gw, client,
    jid}."""
    with within or contextlib.nullcontext():
        p = Prosody(harness.tmpdir("prosody-" + name), domain=domain,
                    component="barev." + domain)
        p.start()
        gw = Gateway(p, harness.tmpdir("gw-" + name)).start()
        for u in (name, "admin"):
            p.create_user(u, u)
        await gw.wait_up()
        admin = await Client("admin@" + domain, "admin", p).connect_and_wait()
        c = await Client("%s@%s" % (name, domain), name, p).connect_and_wait()
    gw.mark()
    answer = await chat(admin, "admin create %s@%s %s %s" % (name, domain, name, addr),
                        to=p.component)
    expect("%s@%s" % (name, addr) in answer, "%s's identity" % name,
           "%s@%s" % (name, addr), answer)
    await gw.wait_log(r"listening for Barev peers on \[%s\]:1337" % addr)
    await admin.close()
    return {"name": name, "addr": addr, "p": p, "gw": gw, "client": c,
            "jid": "%s@%s" % (name, domain)}
