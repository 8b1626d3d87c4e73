#!/usr/bin/python3
"""The test bed itself, without the gateway: the private Prosody lets users
log in and chat, keeps messages for offline users, hands out upload slots
that really work over HTTPS, and grants the component its XEP-0356
privileges.  When this fails, the other integration tests can't mean
anything — look here first.
"""
# ctest: timeout=120
import asyncio
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, Prosody, expect  # noqa: E402


async def setup():
    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    p.create_user("alice", "alice")
    p.create_user("bob", "bob")
    return p


async def test_users_chat(p):
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    bob = await Client("bob@example.org", "bob", p).connect_and_wait()
    alice.send_message("bob@example.org", "hello bob", chat_state="active")
    m = await bob.wait_message(lambda m: m["body"] == "hello bob", what="'hello bob'")
    expect(m["from"].bare == "alice@example.org", "sender", "alice@example.org", str(m["from"]))
    expect(m["chat_state"] == "active", "chat state kept", "active", m["chat_state"])
    await alice.close()
    await bob.close()


async def test_offline_message_is_delivered_at_login(p):
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    alice.send_message("bob@example.org", "while you were out")
    await alice.ping("example.org")     # the server has handled the message
    bob = await Client("bob@example.org", "bob", p).connect_and_wait()
    await bob.wait_message(lambda m: m["body"] == "while you were out",
                           what="the offline message")
    await alice.close()
    await bob.close()


async def test_upload_slot_works_over_https(p):
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    data = b"barev file\n"
    r = await alice.iq_query(p.upload_service, "get",
                             "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' "
                             "size='%d' content-type='text/plain'/>" % len(data))
    expect(r["type"] == "result", "upload slot granted", "result", str(r))
    put_el = r.xml.find(".//{urn:xmpp:http:upload:0}put")
    put = put_el.get("url")
    headers = {h.get("name"): h.text for h in put_el}   # the slot's auth token
    headers["Content-Type"] = "text/plain"
    get = r.xml.find(".//{urn:xmpp:http:upload:0}get").get("url")
    # Prosody's own URL (no http_external_url): https on the upload host,
    # which resolves to loopback in the test and has a test-CA certificate.
    want = "https://%s:%d/" % (p.upload_service, p.https_port)
    expect(put.startswith(want), "slot on the upload host over https", want + "...", put)

    def http():
        req = urllib.request.Request(put, data=data, method="PUT", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = resp.status
        with urllib.request.urlopen(get, timeout=10) as resp:
            return status, resp.read()
    status, body = await asyncio.get_running_loop().run_in_executor(None, http)
    expect(status in (200, 201) and body == data, "PUT then GET returns the file",
           (201, data), (status, body))
    await alice.close()


async def test_component_is_privileged(p):
    # A stand-in component: the server must accept the secret and announce
    # XEP-0356 permissions (roster both, message outgoing, presence roster).
    import slixmpp
    got = asyncio.get_running_loop().create_future()
    comp = slixmpp.ComponentXMPP(p.component, p.secret, "127.0.0.1", p.component_port)
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
    comp.register_handler(Callback(
        "privilege", MatchXPath("{jabber:component:accept}message/{urn:xmpp:privilege:2}privilege"),
        lambda m: got.done() or got.set_result(m)))
    comp.connect()
    try:
        m = await asyncio.wait_for(got, 10)
    except asyncio.TimeoutError:
        raise harness.TestFailure("no XEP-0356 <privilege/> message for the component")
    perms = {e.get("access"): e.get("type")
             for e in m.xml.iter("{urn:xmpp:privilege:2}perm")}
    want = {"roster": "both", "message": "outgoing", "presence": "roster"}
    expect(perms == want, "component privileges", want, perms)
    comp.disconnect(wait=0)


async def test_restart_keeps_accounts(p):
    p.restart()
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    await alice.ping("example.org")
    await alice.close()


if __name__ == "__main__":
    import netns
    netns.enter()
    harness.main()
