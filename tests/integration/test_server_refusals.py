"""A server that grants the roster (XEP-0356) and then refuses every roster
push, as ejabberd 23.01 does (internal-server-error, module_not_loaded):
the gateway says so at WARN and in --health, and falls back to subscription
requests, so alice still gets the gateway and bob into her roster by
accepting them, and chat with bob works both ways.

The refusing server is the real Prosody behind a small proxy on the
component link that answers the gateway's roster sets itself, with the
error ejabberd 23.01 sends, and passes everything else through untouched.
Everything runs in a private network namespace.
"""
# ctest: timeout=300
import asyncio
import os
import sys
import xml.parsers.expat
from xml.sax.saxutils import quoteattr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Prosody, Gateway, Client, expect, expect_eq  # noqa: E402
import barevpeer as bp                           # noqa: E402
from barevworld import contact_jid               # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
COMPONENT = harness.COMPONENT
BOB = contact_jid("bob", BOB_ADDR)


class RefusingLink:
    """TCP proxy for the component link.  Stanzas from the gateway are cut
    at their top-level boundaries (expat byte offsets); a roster set is
    answered here with ejabberd 23.01's error and not forwarded."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.refused = []               # ids of the roster sets answered
        self.server = None
        self.port = None

    async def start(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self):
        if self.server:
            self.server.close()

    async def _client(self, gw_r, gw_w):
        srv_r, srv_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        def to_gateway(chunk, st):
            gw_w.write(chunk)

        def to_server(chunk, st):
            if (st and st["name"] == "iq" and st["attrs"].get("type") == "set"
                    and st["roster"]):
                gw_w.write(self._refusal(st["attrs"]))
            else:
                srv_w.write(chunk)

        down = asyncio.ensure_future(self._cut(srv_r, to_gateway))
        try:
            await self._cut(gw_r, to_server)
        finally:
            down.cancel()
            srv_w.close()
            gw_w.close()

    @staticmethod
    async def _cut(r, emit):
        """Read a stream, call emit(bytes, stanza) per whole top-level
        stanza (stanza = {name, attrs, roster}) and emit(bytes, None) for
        what comes before one (the stream header), so the two directions
        never interleave inside a stanza."""
        buf = bytearray()
        state = {"depth": 0, "sent": 0, "st": None}
        out = []
        p = xml.parsers.expat.ParserCreate()

        def start(name, attrs):
            state["depth"] += 1
            if state["depth"] == 1:     # the stream header: at once
                end_at = buf.index(b">", p.CurrentByteIndex) + 1
                out.append((bytes(buf[state["sent"]:end_at]), None))
                state["sent"] = end_at
            elif state["depth"] == 2:
                i = p.CurrentByteIndex
                out.append((bytes(buf[state["sent"]:i]), None))
                state["sent"] = i
                state["st"] = {"name": name, "attrs": attrs, "roster": False}
            elif state["depth"] == 3 and name == "query" and \
                    attrs.get("xmlns") == "jabber:iq:roster":
                state["st"]["roster"] = True

        def end(name):
            if state["depth"] == 2:
                # at "</name" for an end tag, just past "/>" for an empty one
                i = p.CurrentByteIndex
                end_at = (buf.index(b">", i) + 1 if buf.startswith(b"</" + name.encode(), i)
                          else i)
                out.append((bytes(buf[state["sent"]:end_at]), state["st"]))
                state["sent"] = end_at
            elif state["depth"] == 1:   # the stream's end
                out.append((bytes(buf[state["sent"]:]), None))
                state["sent"] = len(buf)
            state["depth"] -= 1

        p.StartElementHandler = start
        p.EndElementHandler = end
        while True:
            data = await r.read(65536)
            if not data:
                return
            buf += data
            p.Parse(bytes(data), False)
            for chunk, st in out:
                if chunk:
                    emit(chunk, st)
            out.clear()

    def _refusal(self, attrs):
        self.refused.append(attrs.get("id"))
        # what ejabberd 23.01 answers (its log: module_not_loaded, mod_roster)
        return ("<iq type='error' id=%s from=%s to=%s><error type='wait'>"
                "<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>module_not_loaded</text>"
                "</error></iq>" % (quoteattr(attrs.get("id", "")),
                                   quoteattr(attrs.get("to", "")),
                                   quoteattr(attrs.get("from", "")))).encode()


async def setup():
    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    p.create_user("alice", "alice")
    p.create_user("admin", "admin")
    link = RefusingLink(p.component_port)
    await link.start()
    gw = Gateway(p, harness.tmpdir("gw"), config={"server_port": str(link.port)})
    gw.start()
    await gw.wait_up()
    await gw.wait_log(r"granted roster privilege", timeout=10, since=0)
    bob = bp.Peer("bob", BOB_ADDR, profile="purple")
    bob.add_buddy("alice", ALICE_ADDR)
    await bob.start()
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    return {"p": p, "gw": gw, "bob": bob, "alice": alice, "link": link}


async def teardown(ctx):
    ctx["link"].stop()


def asks(who):
    return lambda pr: pr["from"].bare == who and pr["type"] == "subscribe"


async def accept(alice, who):
    """alice accepts `who`'s contact request and asks back, as a client's
    "accept and add" does; returns her roster item for it."""
    alice.send_presence(pto=who, ptype="subscribed")
    alice.send_presence(pto=who, ptype="subscribe")
    for _ in range(100):
        roster = await alice.roster_items()
        if roster.get(who, {}).get("subscription") == "both":
            return roster[who]
        await alice.wait_presence(lambda pr: pr["from"].bare == who, timeout=5,
                                  what="an answer from %s" % who)
    expect(False, "%s in alice's roster with subscription both" % who, "both", roster.get(who))


async def test_refused_push_becomes_a_subscription_request_for_the_gateway(ctx):
    alice, gw, p, link = ctx["alice"], ctx["gw"], ctx["p"], ctx["link"]
    admin = await Client("admin@example.org", "admin", p).connect_and_wait()
    try:
        alice.mark()
        admin.send_message(COMPONENT, "admin create alice@example.org alice " + ALICE_ADDR)
        await admin.wait_message(lambda m: "is now alice@" in (m["body"] or ""),
                                 what="identity created")
    finally:
        await admin.close()
    pr = await alice.wait_presence(asks(COMPONENT), timeout=40,
                                   what="the gateway's contact request")
    nick = pr.xml.find("{http://jabber.org/protocol/nick}nick")
    expect_eq(nick.text if nick is not None else None, "Barev gateway",
              "the request names the gateway (XEP-0172)")
    expect(link.refused, "the proxy refused a roster push", "an id", link.refused)
    item = await accept(alice, COMPONENT)
    expect_eq(item["subscription"], "both", "the gateway in alice's roster")
    await gw.wait_log(r"WARN iqtrack: roster request \(XEP-0356\) to alice@example.org failed: "
                      r"internal-server-error \(module_not_loaded\)", timeout=5, since=0)
    await gw.wait_log(r"WARN bridge: the server refused a roster push", timeout=5, since=0)


async def test_bob_arrives_as_a_request_and_chat_works(ctx):
    alice, bob, gw, link = ctx["alice"], ctx["bob"], ctx["gw"], ctx["link"]
    before = len(link.refused)
    alice.mark()
    alice.send_message(COMPONENT, "add bob@" + BOB_ADDR)
    await alice.wait_message(lambda m: "was added" in (m["body"] or ""), what="bob added")
    await alice.wait_presence(asks(BOB), timeout=10, what="bob's contact request")
    expect(len(link.refused) > before, "the push for bob was tried too", before, link.refused)
    await accept(alice, BOB)
    s = await bob.wait_session("alice", timeout=20)
    alice.send_message(BOB, "through the fallback")
    body, _ = await s.wait_message(timeout=10)
    expect_eq(body, "through the fallback", "bob gets alice's message")
    await s.send_message("and back")
    await alice.wait_message(lambda m: m["from"].bare == BOB and m["body"] == "and back",
                             what="bob's answer")


async def test_status_says_pushes_are_refused_and_warns_once(ctx):
    gw = ctx["gw"]
    r = gw.run("--config", gw.config_path, "--health")
    expect_eq(r.returncode, 0, "--health: the link is up")
    expect("roster privilege granted by example.org, but pushes are refused: internal-server-error"
           " (module_not_loaded)" in r.stdout, "--health says the pushes are refused",
           "roster privilege granted but pushes are refused: …", r.stdout)
    expect("Server refused: roster request (XEP-0356)" in r.stdout,
           "--health lists the refusal", "Server refused: roster request …", r.stdout)
    warns = [line for line in gw.log_text(since=0).splitlines()
             if "WARN iqtrack: roster request" in line]
    expect_eq(len(warns), 1, "one WARN line for the same cause, however often")


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR])
    harness.main()
