"""bench/scale: every Barev peer of the storm bench in one light process.

The gateway's identity i is u<i>@201:1::<i+1>; its contacts p0..p(C-1) sit
on 201:2::<k+1> (bench/scale/scale.py's layout).  Contact k is the same
peer for every identity: one listener per contact address (port 1337,
IP_FREEBIND: the driver makes 201:2::/64 local), each accepting the dials
of all the identities.  Per (i, k) at most one pipe; a new stream replaces
the old one (purple, BAREV.md §2).

What crosses a pipe follows purple's bytes where the gateway can see them
(BAREV.md §2-§5, as bench/e2e/sink.py's `light` peer): the allowlist before
reading a byte (source in 201:1::/64, an identity that exists), the header
in one write after the initiator's, the initial presence, ping and vCard
answers, messages with purple's XHTML and x:event, `</stream:stream>` on
close.  Presences received are recorded per (i, k): available or not, the
`<status>` text, and the first arrival time (CLOCK_MONOTONIC ns, the same
clock in every process) of an available presence whose status is
"gen<G>" (the users process puts its login generation there).

stdin commands, one per line; one JSON line answers each:
  stats                    -> pipes up, accepted, closed, pings, ...
  gen G                    -> {"n": pipes whose peer has seen gen>=G available,
                               "t_last": ns of the latest first arrival}
  send TAG                 -> from p(i % C) to u_i on every such pipe that is
                              up: {"sent": n}
  msgs TAG                 -> {"got": distinct (i, seq), "dups": n}
  quit
"""
import asyncio
import ipaddress
import json
import resource
import socket
import sys
import time
import xml.parsers.expat as expat

ID_BASE = int(ipaddress.IPv6Address("201:1::"))
CT_BASE = int(ipaddress.IPv6Address("201:2::"))
NS_PING, NS_YGGB_PING, NS_VCARD = "urn:xmpp:ping", "urn:yggb:ping", "vcard-temp"
NS_EVENT = "jabber:x:event"


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def ident(i):
    return "u%d@%s" % (i, ipaddress.IPv6Address(ID_BASE + i + 1).compressed)


def contact(k):
    return "p%d@%s" % (k, ipaddress.IPv6Address(CT_BASE + k + 1).compressed)


class World:
    def __init__(self, users, contacts):
        self.users, self.contacts = users, contacts
        self.pipes = {}             # (i, k) -> Pipe that is up
        self.avail = {}             # (i, k) -> (available, status)
        self.gen_t = {}             # (gen, i, k) -> first arrival ns
        self.bodies = {}            # tag -> {(i, seq): count}
        self.st = {"accepted": 0, "rejected": 0, "up": 0, "closed": 0, "replaced": 0,
                   "pings": 0, "vcards": 0, "xml_errors": 0, "presences": 0,
                   "unavailable": 0, "messages": 0}

    def presence(self, key, ptype, status):
        self.st["presences"] += 1
        if ptype == "unavailable":
            self.st["unavailable"] += 1
            self.avail[key] = (False, status)
            return
        self.avail[key] = (True, status)
        if status and status.startswith("gen"):
            try:
                g = int(status[3:])
            except ValueError:
                return
            self.gen_t.setdefault((g,) + key, time.monotonic_ns())

    def body(self, text):
        self.st["messages"] += 1
        parts = (text or "").split()
        if len(parts) < 4 or parts[0] != "storm":
            return
        d = self.bodies.setdefault(parts[1], {})
        k = (parts[2], parts[3])
        d[k] = d.get(k, 0) + 1


class Pipe(asyncio.Protocol):
    """One accepted connection from the gateway (the gateway dials)."""

    def __init__(self, world, k):
        self.w, self.k = world, k
        self.key = None
        self.tr = None
        self.up = False
        self.closed = False

    def connection_made(self, tr):
        self.tr = tr
        w = self.w
        ip = tr.get_extra_info("peername")[0].partition("%")[0]
        i = int(ipaddress.IPv6Address(ip)) - ID_BASE - 1
        if not 0 <= i < w.users:
            w.st["rejected"] += 1           # before reading a byte
            self.closed = True
            tr.abort()
            return
        w.st["accepted"] += 1
        self.key = (i, self.k)
        self.me, self.remote = contact(self.k), ident(i)
        self.depth = 0
        self.name = None
        self.ptype = self.iqtype = self.iqid = self.q = None
        self.text = None                    # list collecting <status>/<body> text
        self.status = self.bodytext = None
        p = self.p = expat.ParserCreate()
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        p.buffer_text = True

    def _start(self, name, attrs):
        d = self.depth = self.depth + 1
        if d == 2:
            self.name = name
            if name == "presence":
                self.ptype, self.status = attrs.get("type"), None
            elif name == "message":
                self.bodytext = None
            elif name == "iq":
                self.iqtype, self.iqid, self.q = attrs.get("type"), attrs.get("id", ""), None
        elif d == 3:
            if self.name == "presence" and name == "status":
                self.text = []
            elif self.name == "message" and name == "body":
                self.text = []
            elif self.name == "iq" and self.q is None:
                ns = attrs.get("xmlns")
                if name == "ping" and ns in (NS_PING, NS_YGGB_PING):
                    self.q = "ping"
                elif name == "vCard" and ns == NS_VCARD:
                    self.q = "vcard"
        elif d == 1:
            self._header()

    def _end(self, name):
        d = self.depth
        self.depth = d - 1
        if d == 3 and self.text is not None:
            if self.name == "presence":
                self.status = "".join(self.text)
            elif self.name == "message":
                self.bodytext = "".join(self.text)
            self.text = None
        elif d == 2:
            if self.name == "presence":
                self.w.presence(self.key, self.ptype, self.status)
            elif self.name == "message":
                if self.bodytext is not None:
                    self.w.body(self.bodytext)
            elif self.name == "iq" and self.iqtype == "get":
                if self.q == "ping":
                    self.w.st["pings"] += 1
                    self.tr.write(("<iq type='result' id='%s' to='%s' from='%s'/>"
                                   % (esc(self.iqid), esc(self.remote), esc(self.me))).encode())
                elif self.q == "vcard":
                    self.w.st["vcards"] += 1
                    self.tr.write(("<iq type='result' id='%s' from='%s' to='%s'>"
                                   "<vCard xmlns='vcard-temp'/></iq>"
                                   % (esc(self.iqid), esc(self.me), esc(self.remote))).encode())
        elif d == 1:
            self.close()

    def _chars(self, data):
        if self.text is not None:
            self.text.append(data)

    def _header(self):
        w = self.w
        self.tr.write(('<?xml version="1.0" encoding="UTF-8" ?>\n<stream:stream '
                       'xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" '
                       'from="%s" to="%s">' % (esc(self.me), esc(self.remote))).encode())
        self.tr.write(("<presence from='%s'><x xmlns='vcard-temp:x:update'><photo/></x>"
                       "</presence>" % esc(self.me)).encode())
        old = w.pipes.get(self.key)
        w.pipes[self.key] = self
        self.up = True
        w.st["up"] += 1
        if old is not None:
            w.st["replaced"] += 1
            old.close()

    def data_received(self, data):
        if self.closed:
            return
        try:
            self.p.Parse(data, False)
        except expat.ExpatError as e:
            self.w.st["xml_errors"] += 1
            print("peers: xml error %s on %s" % (e, self.key), file=sys.stderr, flush=True)
            self.close()

    def send_message(self, text):
        self.tr.write(("<message to='%s' from='%s' type='chat'><body>%s</body>"
                       "<html xmlns='http://www.w3.org/1999/xhtml'><body><font>%s</font>"
                       "</body></html><x xmlns='%s'><composing/></x></message>"
                       % (esc(self.remote), esc(self.me), esc(text), esc(text),
                          NS_EVENT)).encode())

    def _gone(self):
        if self.up:
            self.up = False
            if self.w.pipes.get(self.key) is self:
                del self.w.pipes[self.key]
                a = self.w.avail.get(self.key)
                self.w.avail[self.key] = (False, a[1] if a else None)
            self.w.st["closed"] += 1

    def close(self):
        """purple: </stream:stream>, then close."""
        if self.closed:
            return
        self.closed = True
        self._gone()
        try:
            self.tr.write(b"</stream:stream>")
        except (ConnectionError, OSError, RuntimeError):
            pass
        self.tr.close()

    def connection_lost(self, exc):
        self.closed = True
        if self.key is not None:
            self._gone()


async def main():
    users, contacts = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    w = World(users, contacts)
    loop = asyncio.get_running_loop()
    servers = []
    for k in range(contacts):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_IP, 15, 1)       # IP_FREEBIND (not in Python 3.11)
        s.bind((contact(k).split("@")[1], 1337))
        servers.append(await loop.create_server(lambda k=k: Pipe(w, k), sock=s,
                                                backlog=4096))
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "quit":
            break
        cmd, out = line[0], {}
        if cmd == "stats":
            out = dict(w.st, pipes=len(w.pipes),
                       available=sum(1 for key, (a, _s) in w.avail.items()
                                     if a and key in w.pipes))
        elif cmd == "gen":
            g = int(line[1])
            ts = [t for (gg, i, k), t in w.gen_t.items() if gg >= g
                  and w.avail.get((i, k), (False,))[0] and (i, k) in w.pipes]
            out = {"n": len(ts), "t_last": max(ts) if ts else None}
        elif cmd == "send":
            n = 0
            for i in range(users):
                pipe = w.pipes.get((i, i % contacts))
                if pipe is not None:
                    pipe.send_message("storm %s %d 0 %d" % (line[1], i, time.monotonic_ns()))
                    n += 1
            out = {"sent": n}
        elif cmd == "msgs":
            d = w.bodies.get(line[1], {})
            out = {"got": len(d), "dups": sum(v - 1 for v in d.values())}
        print(json.dumps(out), flush=True)
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
