"""bench/scale: U XMPP users logged in to Prosody by one light process.

Raw asyncio streams and expat, no slixmpp (1,000 slixmpp clients would
cost more CPU than the gateway): per user u<i>@DOMAIN (password "pw", as
bench/scale/scale.py's create_users makes them) the c2s login a client
does -- stream, STARTTLS (the server's certificate checked against the
harness's per-run CA), SASL PLAIN, stream restart, resource bind, roster
get -- then available presence with <status>gen<G></status>, G the
generation the driver set.  A user whose stream ends (the server was
killed) logs in again with jittered backoff (0.2-1 s, doubling to 8 s),
with the generation current then; `away S` makes a dropped user wait S s
more first (a storm where every pipe is dropped and re-dialled).

After a login, if a message tag is pending, the user sends one message
"storm TAG i seq T" to contact p(i % C) as soon as that contact's
available presence reaches her (what a person does: write when she sees
her contact online).  Messages received are counted by tag; message
errors too.

    xmppusers.py PORT CA_FILE DOMAIN COMPONENT USERS CONTACTS
stdin commands (one JSON line answers each):
  login G        all users log in (generation G); -> {"ok": true}
  gen G          later (re)logins use generation G
  away S         a dropped user waits S s (+ 0.2-1 s) before logging in again
  send_on_login TAG   each user's next login sends one message (above)
  stats          -> online, logins, failures, messages sent/received, errors
  last_login     -> {"t_last": CLOCK_MONOTONIC ns of the latest login}
  msgs TAG       -> {"got": distinct users that received TAG, "dups": n}
  quit
"""
import asyncio
import base64
import ipaddress
import json
import random
import resource
import ssl
import sys
import time
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat

CT_BASE = int(ipaddress.IPv6Address("201:2::"))
LOGIN_TIMEOUT = 60


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def contact_jid(k, component):
    a = ipaddress.IPv6Address(CT_BASE + k + 1).compressed
    return ("p%d@%s" % (k, a)).replace("@", "\\40").replace(":", "\\3a") + "@" + component


class Stream:
    """One XML stream: depth-1 elements (ElementTree) into a queue."""

    def __init__(self, reader):
        self.reader = reader
        self.q = asyncio.Queue()
        self.restart()

    def restart(self):
        p = self.p = expat.ParserCreate()
        self.depth = 0
        self.tb = None
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        p.buffer_text = True

    def _start(self, name, attrs):
        self.depth += 1
        if self.depth == 2:
            self.tb = ET.TreeBuilder()
        if self.depth >= 2:
            self.tb.start(name.rpartition(":")[2], attrs)

    def _end(self, name):
        if self.depth >= 2:
            self.tb.end(name.rpartition(":")[2])
        if self.depth == 2:
            self.q.put_nowait(self.tb.close())
            self.tb = None
        elif self.depth == 1:
            self.q.put_nowait(None)
        self.depth -= 1

    def _chars(self, data):
        if self.tb is not None:
            self.tb.data(data)

    def feed(self, data):
        self.p.Parse(data, False)

    async def pump(self):
        """Read and parse until EOF (after TLS: the new reader)."""
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.feed(data)
        except (ConnectionError, OSError, expat.ExpatError, ssl.SSLError):
            pass
        self.q.put_nowait(None)

    async def next(self, timeout):
        el = await asyncio.wait_for(self.q.get(), timeout)
        if el is None:
            raise ConnectionError("stream closed")
        return el


class Users:
    def __init__(self, port, ca, domain, component, n, contacts):
        self.port, self.domain, self.component = port, domain, component
        self.n, self.contacts = n, contacts
        self.ctx = ssl.create_default_context(cafile=ca)
        self.gen = 0
        self.online = set()
        self.logged = set()          # logged in since the last (re)connect
        self.away = 0.0              # s a dropped user waits before logging in again
        self.pending = {}            # i -> tag to send at next login
        self.recv = {}               # tag -> {i: count}
        self.st = {"logins": 0, "failures": 0, "sent": 0, "errors": 0, "received": 0,
                   "drops": 0}
        self.fail_why = {}
        self.tasks = []
        self.t_last = None           # monotonic ns of the latest login

    def header(self):
        return ("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client'"
                " xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
                % self.domain).encode()

    async def session(self, i):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            await self._session(i, reader, writer)
        finally:
            self.online.discard(i)
            writer.close()

    async def _session(self, i, reader, writer):
        s = Stream(reader)
        # plain stream, STARTTLS (read by hand: the parser must stop at <proceed/>)
        writer.write(self.header())
        buf, asked = b"", False
        while b"<proceed" not in buf:
            data = await asyncio.wait_for(reader.read(4096), LOGIN_TIMEOUT)
            if not data:
                raise ConnectionError("closed before STARTTLS")
            buf += data
            if not asked and b"</stream:features>" in buf:
                writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                asked = True
        await asyncio.wait_for(writer.start_tls(self.ctx, server_hostname=self.domain),
                               LOGIN_TIMEOUT)
        tag = None
        pump = asyncio.ensure_future(s.pump())
        try:
            writer.write(self.header())
            el = await s.next(LOGIN_TIMEOUT)                      # features
            cred = base64.b64encode(("\0u%d\0pw" % i).encode()).decode()
            writer.write(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                          "%s</auth>" % cred).encode())
            el = await s.next(LOGIN_TIMEOUT)
            if el.tag != "success":
                raise ConnectionError("auth: %s" % el.tag)
            s.restart()
            writer.write(self.header())
            el = await s.next(LOGIN_TIMEOUT)                      # features
            writer.write(b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                         b"<resource>bench</resource></bind></iq>")
            while True:
                el = await s.next(LOGIN_TIMEOUT)
                if el.tag == "iq" and el.get("id") == "b":
                    break
            if el.get("type") != "result":
                raise ConnectionError("bind refused")
            writer.write(b"<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
            while True:
                el = await s.next(LOGIN_TIMEOUT)
                if el.tag == "iq" and el.get("id") == "r":
                    break
            writer.write(("<presence><status>gen%d</status></presence>" % self.gen).encode())
            self.online.add(i)
            self.logged.add(i)
            self.st["logins"] += 1
            self.t_last = time.monotonic_ns()
            tag = self.pending.pop(i, None)
            target = contact_jid(i % self.contacts, self.component)
            seq = 0
            while True:
                el = await s.next(None)
                if el.tag == "message":
                    if el.get("type") == "error":
                        self.st["errors"] += 1
                        continue
                    b = el.find("body")
                    if b is not None and b.text:
                        self.st["received"] += 1
                        parts = b.text.split()
                        if len(parts) >= 2 and parts[0] == "storm":
                            d = self.recv.setdefault(parts[1], {})
                            d[i] = d.get(i, 0) + 1
                elif el.tag == "presence" and tag is not None:
                    frm = el.get("from", "")
                    if frm.split("/")[0] == target and el.get("type") in (None, "available"):
                        writer.write(("<message type='chat' to='%s' id='s%d'><body>storm %s"
                                      " %d %d %d</body></message>"
                                      % (esc(target), seq, tag, i, seq,
                                         time.monotonic_ns())).encode())
                        self.st["sent"] += 1
                        seq += 1
                        tag = None
                elif el.tag == "iq" and el.get("type") in ("get", "set"):
                    writer.write(("<iq type='error' id='%s' to='%s'><error type='cancel'>"
                                  "<service-unavailable xmlns='urn:ietf:params:xml:ns:"
                                  "xmpp-stanzas'/></error></iq>"
                                  % (esc(el.get("id", "")), esc(el.get("from", "")))).encode()
                                 if el.find("query") is None or el.get("type") == "get"
                                 else ("<iq type='result' id='%s'/>"
                                       % esc(el.get("id", ""))).encode())
        finally:
            pump.cancel()
            if tag is not None and i not in self.pending:
                self.pending[i] = tag        # not sent: the next login sends it

    async def user(self, i):
        delay = 0.2
        while True:
            n0 = self.st["logins"]
            try:
                await self.session(i)
            except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError) as e:
                if self.st["logins"] == n0 or i not in self.logged:
                    self.st["failures"] += 1
                    why = type(e).__name__ + ": " + str(e)[:60]
                    self.fail_why[why] = self.fail_why.get(why, 0) + 1
            if i in self.logged:             # was logged in: come back quickly
                self.logged.discard(i)
                self.st["drops"] += 1
                delay = 0.2
                await asyncio.sleep(self.away + random.uniform(0.2, 1.0))
                continue
            delay = min(delay * 2, 8.0)
            await asyncio.sleep(delay * random.uniform(1.0, 2.0))


async def main():
    port, ca, domain, component, n, contacts = sys.argv[1:7]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    u = Users(int(port), ca, domain, component, int(n), int(contacts))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "quit":
            break
        cmd, out = line[0], {}
        if cmd == "login":
            u.gen = int(line[1])
            u.tasks = [asyncio.ensure_future(u.user(i)) for i in range(u.n)]
            out = {"ok": True}
        elif cmd == "gen":
            u.gen = int(line[1])
            out = {"ok": True}
        elif cmd == "away":
            u.away = float(line[1])
            out = {"ok": True}
        elif cmd == "send_on_login":
            for i in range(u.n):
                u.pending[i] = line[1]
            out = {"ok": True}
        elif cmd == "stats":
            out = dict(u.st, online=len(u.online), fail_why=u.fail_why)
        elif cmd == "last_login":
            out = {"t_last": u.t_last}
        elif cmd == "msgs":
            d = u.recv.get(line[1], {})
            out = {"got": len(d), "dups": sum(v - 1 for v in d.values())}
        print(json.dumps(out), flush=True)
    for t in u.tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
