"""Attacks on the gateway through the server (issue 15, security items 1
and 5).  alice is a user of the gateway; what she types must not cut anyone
off or make the gateway fetch what it should not:

- a link whose file name holds percent-encoded bytes that are not UTF-8
  (`.../%FF%FEbad.txt`) used to put invalid UTF-8 into the "was not sent"
  note, Prosody closed the component stream and every user of the gateway
  was disconnected; now the name reads "\ufffd\ufffdbad.txt" everywhere;
- a link to an allowed host on another port (an admin or metrics service
  on the same machine) used to be fetched and handed to the peer; only the
  allowed scheme + host + port (the upload service's URL prefix,
  download_hosts = https://upload.example.org:PORT/ as the harness sets it)
  is.

Everything runs in a private network namespace.
"""
# ctest: timeout=300
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import os
import ssl
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
import servers                                   # noqa: E402
from harness import expect, expect_eq, Client     # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, CAROL, store_rows    # noqa: E402
from xfer import http, says, upload              # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"
GATEWAY = harness.COMPONENT     # notes about transfers come from here
BAD = "\ufffd\ufffdbad.txt"     # what %FF%FEbad.txt reads as


def refused(who, *words):
    """The message error (issue 10) the gateway puts on her message."""
    def pred(m):
        text = m["error"]["text"] or "" if m["type"] == "error" else ""
        return m["from"].bare == who and all(w in text for w in words)
    return pred


async def setup():
    return await barevworld.start(users=("alice", "admin"))


async def nobody_was_cut_off(ctx, gw_since, p_since):
    """The component link never went down, alice and bob still chat both
    ways, carol's pipe is up, and another user gets answers from the
    component."""
    alice, bob, carol, gw, p = ctx["alice"], ctx["bob"], ctx["carol"], ctx["gw"], ctx["p"]
    s = await bob.wait_session("alice")
    alice.send_message(BOB, "still there, bob?")
    body, _ = await s.wait_message(timeout=10)
    expect_eq(body, "still there, bob?", "alice's next message reaches bob")
    alice.mark()
    await s.send_message("yes")
    await alice.wait_message(says(BOB, "yes"), what="bob's answer")
    c = await carol.wait_session("alice")
    alice.send_message(CAROL, "and you, carol?")
    body, _ = await c.wait_message(timeout=10)
    expect_eq(body, "and you, carol?", "carol's pipe is still up")
    admin = await Client("admin@example.org", "admin", p).connect_and_wait()
    try:
        await admin.ping(p.component)      # fails unless the component answers
    finally:
        await admin.close()
    glog = gw.log_text(since=gw_since)
    expect("retrying in" not in glog and "link up" not in glog,
           "the component link stayed up", "no reconnect", glog[-2000:])
    with open(p.log_path, "rb") as f:
        f.seek(p_since)
        plog = f.read().decode("utf-8", "replace")
    expect("not-well-formed" not in plog, "Prosody saw only well-formed XML",
           "no not-well-formed", plog[-2000:])


def plog_size(p):
    return os.path.getsize(p.log_path)


async def test_a_link_with_invalid_utf8_in_its_name_cuts_nobody_off(ctx):
    """The fetch fails (nothing is there): the note alice gets names the
    file readably, and the component link stays up."""
    alice, gw, p = ctx["alice"], ctx["gw"], ctx["p"]
    await ctx["bob"].wait_session("alice")
    gw_since, p_since = gw.mark(), plog_size(p)
    alice.mark()
    # on the allowed prefix (download_hosts), so the gateway does try it
    url = "%sfile_share/nothing/%%FF%%FEbad.txt" % p.download_host
    expect(url.startswith("https://%s:%d/" % (p.upload_service, p.https_port)),
           "the link is on the upload service", "https://upload host:https port/", url)
    alice.send_message(BOB, url)
    m = await alice.wait_message(refused(BOB, "bad.txt", "not sent"), timeout=20,
                                 what="the error on her message saying the file was not sent")
    expect(BAD in m["error"]["text"], "the error names the file readably", BAD,
           m["error"]["text"])
    await nobody_was_cut_off(ctx, gw_since, p_since)
    # the name the gateway recorded (and logged) is repaired UTF-8 too
    names = [bytes.fromhex(r[0]) for r in store_rows(gw, "SELECT hex(name) FROM transfers")]
    expect(BAD.encode() in names, "the recorded name", BAD.encode(), names)


async def test_a_fetched_file_with_such_a_name_reaches_bob_readably(ctx):
    """The same name on a link that does fetch: bob (whose parser would
    drop the pipe on invalid UTF-8) gets the file with the repaired name."""
    alice, bob, gw, p = ctx["alice"], ctx["bob"], ctx["gw"], ctx["p"]
    s = await bob.wait_session("alice")
    url = await upload(alice, p.upload_service, "ok.txt", b"hello bob")
    hostile = url.rsplit("/", 1)[0] + "/%FF%FEbad.txt"    # Prosody serves by slot id
    gw_since, p_since = gw.mark(), plog_size(p)
    alice.mark()
    alice.send_message(BOB, hostile)
    name, data = await bob.wait_file(timeout=30)
    expect_eq(name, BAD, "the name bob sees")
    expect_eq(data, b"hello bob", "bob's bytes")
    await alice.wait_message(says(GATEWAY, BAD, "delivered"), timeout=20, what="the delivery note")
    expect(not s.closed, "bob's pipe stayed up", "open", s.close_reason)
    await nobody_was_cut_off(ctx, gw_since, p_since)


# ---------------------------------------------------------------- ports

class Witness:
    """A tiny HTTPS service on the upload host (upload.example.org, which
    the test's private /etc/hosts points at 127.0.0.1) but another port,
    standing for an admin or metrics port: it counts every request.  Same
    scheme, same host name, a certificate from the run's CA: only the port
    differs from the upload service's URLs."""

    def __init__(self, host):
        hits = self.hits = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                body = b"secret metrics"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        crt, key = servers.certificate(harness.tmpdir("witness"), [host])
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(crt, key)
        self.srv.socket = tls.wrap_socket(self.srv.socket, server_side=True)
        self.url = "https://%s:%d/" % (host, self.port)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


async def test_a_link_to_the_upload_host_on_another_port_is_not_fetched(ctx):
    alice, bob, gw, p = ctx["alice"], ctx["bob"], ctx["gw"], ctx["p"]
    s = await bob.wait_session("alice")
    w = Witness(p.upload_service)
    try:
        # the witness answers, by the upload host's name: the test could see a fetch
        status, _ = await http("GET", w.url + "probe")
        expect_eq((status, w.hits), (200, ["/probe"]), "the witness service answers")
        del w.hits[:]
        for url in (w.url + "metrics.txt",
                    # the right port, but a way out of the upload path
                    "%sfile_share/%%2e%%2e/admin.txt" % p.download_host):
            alice.mark()
            alice.send_message(BOB, url, oob_url=url)
            m = await alice.wait_message(says(GATEWAY, "as text"), timeout=10,
                                         what="the note that the link was not fetched")
            expect("upload service" in m["body"], "the note says why",
                   "… upload service …", m["body"])
            body, _ = await s.wait_message(timeout=10)
            expect_eq(body, url, "bob gets the link as text")
        expect_eq(w.hits, [], "requests the witness saw from the gateway")
        expect(not any("admin.txt" in ln for ln in gw.log_text().splitlines()
                       if "sends" in ln), "no fetch was started", "none", gw.log_text()[-1500:])
    finally:
        w.close()
    # the upload service itself still works
    url = await upload(alice, p.upload_service, "fine.txt", b"fine")
    alice.mark()
    alice.send_message(BOB, url, oob_url=url)
    name, data = await bob.wait_file(timeout=30)
    expect_eq((name, data), ("fine.txt", b"fine"), "a file from the upload service")


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
