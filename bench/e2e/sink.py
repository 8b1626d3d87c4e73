"""bench/e2e: the far end of the path, in a process of its own.

Two roles, one small line protocol on stdin/stdout (so the driver's
process, which runs alice's slixmpp client, does not also carry the
receiver's parsing):

  sink.py component PORT JID SECRET     the baseline: a trivial XEP-0114
      component (raw asyncio socket, expat, handshake = hex SHA1(stream id
      + secret)) connected as the gateway's JID.  It records the arrival
      time of every <message> body; nothing else is done with anything.
  sink.py light NICK ADDR BUDDY_NICK BUDDY_ADDR
      bob as a light Barev receiver (the default for the gateway mode): as
      cheap per stanza as the component above (raw asyncio sockets, expat,
      no ElementTree, no raw-byte bookkeeping), speaking purple's bytes
      where the gateway can see them (BAREV.md §2-§5: header, initial
      presence, ping and vCard answers, message format, stream end).  It
      listens on ADDR port 1337 for the buddy's dial and, when no pipe came
      up a few seconds into a wait_up, dials BUDDY_ADDR port 1337 itself
      (source bound to ADDR).
  sink.py peer NICK ADDR BUDDY_NICK BUDDY_ADDR
      bob: the full Barev test peer (tests/barevpeer, purple profile),
      recording the arrival time of every message body on any pipe.  It
      keeps every element and byte for the integration tests' assertions:
      ~240 us CPU per message received, more than the gateway's.

Bodies the driver sends are "e2e TAG SEQ T_SEND_NS pad…" with T_SEND_NS
from CLOCK_MONOTONIC (system-wide, so the same clock in every process).

stdin commands, one per line; answers are one JSON line on stdout:
  wait_up                      -> {"up": true}  (handshake done / pipe up)
  expect TAG N TIMEOUT         -> {"tag":…, "got": n, "rows": [[seq, t_send_ns, t_arr_ns], …]}
  send TAG N TO                -> {"sent": n, "t0": ns, "t1": ns}  N messages
      as fast as the socket takes them (component: from the contact JID
      TO's peer; light/peer: to its buddy), bodies as above
  quit
"""
import asyncio
import hashlib
import json
import os
import socket
import sys
import time
import xml.parsers.expat as expat

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "barevpeer"))

PAD = 300           # body length, bytes


def body_for(tag, seq, pad=PAD):
    head = "e2e %s %d %d " % (tag, seq, time.monotonic_ns())
    return head + "x" * max(0, pad - len(head))


class Recorder:
    """Arrival times per tag; wakes waiters."""

    def __init__(self):
        self.rows = {}
        self.ev = asyncio.Event()

    def body(self, text):
        t = time.monotonic_ns()
        if not text or not text.startswith("e2e "):
            return
        parts = text.split(" ", 4)
        if len(parts) < 4:
            return
        self.rows.setdefault(parts[1], []).append((int(parts[2]), int(parts[3]), t))
        self.ev.set()

    async def expect(self, tag, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.rows.get(tag, ())) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.ev.clear()
            try:
                await asyncio.wait_for(self.ev.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass
        rows = self.rows.pop(tag, [])
        return {"tag": tag, "got": len(rows), "rows": rows}


# ---------------------------------------------------------------- component

def xesc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;"))


class Component:
    """The trivial XEP-0114 component: handshake, then count messages."""

    def __init__(self, port, jid, secret, rec):
        self.port, self.jid, self.secret, self.rec = port, jid, secret, rec
        self.up = asyncio.get_running_loop().create_future()
        self.writer = None
        self.closing = False

    async def run(self):
        while True:
            try:
                await self._session()
                return
            except (ConnectionError, OSError, RuntimeError) as e:
                if self.closing:
                    return
                # Prosody may still hold the previous component session
                # ("conflict"): come back a little later
                print("component: %s; retrying" % e, file=sys.stderr, flush=True)
                await asyncio.sleep(0.5)

    async def _session(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer = writer
        p = expat.ParserCreate()
        st = {"depth": 0, "id": None, "name": None, "in_body": False, "body": [],
              "shaken": False, "error": None}

        def start(name, attrs):
            st["depth"] += 1
            d = st["depth"]
            if d == 1:
                st["id"] = attrs.get("id")
            elif d == 2:
                st["name"] = name
                st["body"] = []
            elif d == 3 and st["name"] == "message" and name == "body":
                st["in_body"] = True
            elif d == 3 and st["name"] == "stream:error":
                st["error"] = name

        def end(name):
            d = st["depth"]
            st["depth"] -= 1
            if d == 3:
                st["in_body"] = False
            elif d == 2:
                if name == "handshake":
                    st["shaken"] = True
                elif name == "message":
                    self.rec.body("".join(st["body"]))

        def chars(data):
            if st["in_body"]:
                st["body"].append(data)

        p.StartElementHandler = start
        p.EndElementHandler = end
        p.CharacterDataHandler = chars
        p.buffer_text = True
        writer.write(("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept'"
                      " xmlns:stream='http://etherx.jabber.org/streams' to='%s'>"
                      % self.jid).encode())
        sent_handshake = False
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("stream closed (error: %s)" % st["error"])
            p.Parse(data, False)
            if st["error"]:
                writer.close()
                raise RuntimeError("stream error %s" % st["error"])
            if st["id"] and not sent_handshake:
                h = hashlib.sha1((st["id"] + self.secret).encode()).hexdigest()
                writer.write(("<handshake>%s</handshake>" % h).encode())
                sent_handshake = True
            if st["shaken"] and not self.up.done():
                self.up.set_result(True)

    async def send(self, tag, n, to, contact):
        t0 = time.monotonic_ns()
        w = self.writer
        for i in range(n):
            w.write(("<message type='chat' from='%s/barev' to='%s' id='e%d'><body>%s</body></message>"
                     % (xesc(contact), xesc(to), i, xesc(body_for(tag, i)))).encode())
            if w.transport.get_write_buffer_size() > 256 * 1024:
                await w.drain()
        await w.drain()
        return {"sent": n, "t0": t0, "t1": time.monotonic_ns()}

    async def close(self):
        self.closing = True
        if self.writer:
            self.writer.write(b"</stream:stream>")
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                pass
            self.writer.close()


# ---------------------------------------------------------------- light Barev peer

class LightPeer:
    """bob, as cheap per stanza as Component: one pipe to one buddy.

    Only what the gateway can see follows purple byte for byte (BAREV.md,
    tests/barevpeer Session, purple profile): the header
    (barevpeer.header_bytes), the initial presence, ping and vCard results,
    messages, </stream:stream> on close.  Not modelled: avatars, files,
    chat states, purple's quirks (a body beside a chat state or an x:event
    id is recorded anyway, and counted on stderr at quit), pinging.

    Inbound: allowlist the buddy's source address before reading, wait for
    the header (with one buddy purple's matching accepts any `from` from
    the buddy's address), reply with ours, then presence.  Outbound (only while a wait_up waits and no
    pipe is up or being set up, after DIAL_AFTER s): connect from our own
    address, header at once, presence when the buddy's header arrives.  A
    pipe that comes up replaces the older one (purple: a new stream from a
    buddy replaces its pipe)."""

    DIAL_AFTER = 5.0          # s without a pipe in a wait_up before we dial
    DIAL_EVERY = 5.0          # s between our dials while still nothing

    def __init__(self, nick, addr, buddy_nick, buddy_addr, rec, port=1337):
        import barevpeer as bp
        self.bp = bp
        self.rec = rec
        self.addr, self.port = bp.addr_norm(addr), port
        self.buddy_nick, self.buddy_addr = buddy_nick, bp.addr_norm(buddy_addr)
        self.me = "%s@%s" % (nick, self.addr)
        self.remote = "%s@%s" % (buddy_nick, self.buddy_addr)
        me, remote = bp.esc(self.me), bp.esc(self.remote)
        self.header = bp.header_bytes(self.me, self.remote)
        # Session._presence_xml (purple, no show/status/photo)
        self.presence = ("<presence from='%s'><x xmlns='%s'><photo/></x></presence>"
                         % (me, bp.NS_VCARD_UPDATE)).encode()
        # Session._answer_ping (purple)
        self.pong = "<iq type='result' id='%%s' to='%s' from='%s'/>" % (remote, me)
        # Session._iq_attrs("result") + Peer._vcard_xml() without an avatar
        self.vcard = ("<iq type='result' id='%%s' from='%s' to='%s'><vCard xmlns='%s'/></iq>"
                      % (me, remote, bp.NS_VCARD))
        # Session.send_message (purple, no chat state)
        self.msg_head = "<message to='%s' from='%s' type='chat'><body>" % (remote, me)
        self.msg_mid = "</body><html xmlns='http://www.w3.org/1999/xhtml'><body><font>"
        self.msg_tail = ("</font></body></html><x xmlns='%s'><composing/></x></message>"
                         % bp.NS_EVENT)
        self.pipe = None              # the writer of the pipe that is up
        self.pending = 0              # connections whose stream is not up yet
        self.writers = set()
        self.changed = asyncio.Event()
        self.server = None
        self.stats = {"pipes": 0, "dials": 0, "pings": 0, "vcards": 0, "rejected": 0,
                      "purple_would_drop": 0, "xml_errors": 0}

    async def start(self):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        self.server = await asyncio.start_server(self._accepted, sock=s, backlog=64)

    def _changed(self):
        self.changed.set()
        self.changed = asyncio.Event()

    async def _accepted(self, reader, writer):
        ip = writer.get_extra_info("peername")[0]
        if self.bp.addr_norm(ip.partition("%")[0]) != self.buddy_addr:
            writer.close()                  # before reading a byte
            self.stats["rejected"] += 1
            return
        await self._pipe(reader, writer, True)

    async def _dial(self):
        self.stats["dials"] += 1
        self.pending += 1
        try:
            sock = await self.bp._connect_from(self.addr, self.buddy_addr, self.port, 10)
            reader, writer = await asyncio.open_connection(sock=sock)
        except (ConnectionError, OSError, asyncio.TimeoutError) as e:
            print("light: dial failed: %s" % e, file=sys.stderr, flush=True)
            self.pending -= 1
            return
        self.pending -= 1
        writer.write(self.header)           # initiator speaks first, one write
        await self._pipe(reader, writer, False)

    async def _pipe(self, reader, writer, inbound):
        """One pipe, from connect/accept to close."""
        self.pending += 1
        self.writers.add(writer)
        st = {"depth": 0, "header": False, "end": False, "name": None, "type": None,
              "id": None, "q": None, "in_body": False, "body": [], "drop": False}
        bp, rec = self.bp, self.rec
        ns_chatstates = bp.NS_CHATSTATES
        ping_ns = (bp.NS_PING, bp.NS_YGGB_PING)
        ns_vcard = bp.NS_VCARD

        def start(name, attrs):
            d = st["depth"] = st["depth"] + 1
            if d == 2:
                st["name"] = name
                if name == "message":
                    st["body"] = []
                    st["drop"] = False
                elif name == "iq":
                    st["type"], st["id"], st["q"] = attrs.get("type"), attrs.get("id", ""), None
            elif d == 3:
                kind = st["name"]
                if kind == "message":
                    if name == "body":
                        st["in_body"] = True
                    elif attrs.get("xmlns") == ns_chatstates:
                        st["drop"] = True
                elif kind == "iq" and st["q"] is None:
                    ns = attrs.get("xmlns")
                    if name == "ping" and ns in ping_ns:
                        st["q"] = "ping"
                    elif name == "vCard" and ns == ns_vcard:
                        st["q"] = "vcard"
            elif d == 4 and name == "id" and st["name"] == "message":
                st["drop"] = True           # jabber:x:event <id/> (loosely)
            elif d == 1:
                # the buddy's header.  purple matches `from` to a buddy by
                # JID, unique nick, then source address, and insists on the
                # address: with one buddy, allowlisted at accept, any `from`
                # is that buddy
                st["header"] = True

        def end(name):
            d = st["depth"]
            st["depth"] = d - 1
            if d == 3:
                st["in_body"] = False
            elif d == 2:
                kind = st["name"]
                if kind == "message":
                    if st["drop"]:
                        self.stats["purple_would_drop"] += 1
                    rec.body("".join(st["body"]))
                elif kind == "iq" and st["type"] == "get":
                    if st["q"] == "ping":
                        self.stats["pings"] += 1
                        writer.write((self.pong % bp.esc(st["id"])).encode())
                    elif st["q"] == "vcard":
                        self.stats["vcards"] += 1
                        writer.write((self.vcard % bp.esc(st["id"])).encode())
            elif d == 1:
                st["end"] = True

        def chars(data):
            if st["in_body"]:
                st["body"].append(data)

        p = expat.ParserCreate()
        p.StartElementHandler = start
        p.EndElementHandler = end
        p.CharacterDataHandler = chars
        p.buffer_text = True
        up = False
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    p.Parse(data, False)
                except expat.ExpatError as e:
                    self.stats["xml_errors"] += 1
                    print("light: xml error %s" % e, file=sys.stderr, flush=True)
                    break
                if st["header"] and not up:
                    if inbound:
                        writer.write(self.header)
                    up = True
                    self.pending -= 1
                    old, self.pipe = self.pipe, writer
                    self.stats["pipes"] += 1
                    if old is not None:       # a new stream replaces the pipe
                        self._close_writer(old)
                    writer.write(self.presence)
                    self._changed()
                if st["end"]:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            if not up:
                self.pending -= 1
            if self.pipe is writer:
                self.pipe = None
                self._changed()
            self._close_writer(writer)

    def _close_writer(self, writer):
        """purple: </stream:stream>, then close (also after the peer's EOF)."""
        if writer in self.writers:
            self.writers.discard(writer)
            try:
                writer.write(b"</stream:stream>")
            except (ConnectionError, OSError, RuntimeError):
                pass
            writer.close()

    async def wait_up(self, timeout=60):
        deadline = time.monotonic() + timeout
        last_dial = time.monotonic() - self.DIAL_EVERY + self.DIAL_AFTER
        while self.pipe is None:
            now = time.monotonic()
            if now >= deadline:
                raise asyncio.TimeoutError("no pipe to %s" % self.remote)
            if now - last_dial >= self.DIAL_EVERY and not self.pending:
                last_dial = now
                asyncio.ensure_future(self._dial())
            try:
                await asyncio.wait_for(self.changed.wait(), min(1.0, deadline - now))
            except asyncio.TimeoutError:
                pass
        return self.pipe

    async def send(self, tag, n, _to, _contact):
        w = await self.wait_up()
        esc = self.bp.esc
        head, mid, tail = self.msg_head, self.msg_mid, self.msg_tail
        t0 = time.monotonic_ns()
        try:
            for i in range(n):
                t = esc(body_for(tag, i))
                w.write((head + t + mid + t + tail).encode())    # one stanza, one write
                if w.transport.get_write_buffer_size() > 256 * 1024:
                    await w.drain()
            await w.drain()
        except (ConnectionError, OSError) as e:
            return {"sent": i, "t0": t0, "t1": time.monotonic_ns(), "error": str(e)}
        return {"sent": n, "t0": t0, "t1": time.monotonic_ns()}

    async def close(self):
        if self.server:
            self.server.close()
        ws = list(self.writers)
        for w in ws:
            self._close_writer(w)
        for w in ws:
            try:
                await w.wait_closed()
            except (ConnectionError, OSError):
                pass
        print("light: %s" % json.dumps(self.stats), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- Barev peer

class PeerRole:
    def __init__(self, nick, addr, buddy_nick, buddy_addr, rec):
        import barevpeer as bp
        self.bp = bp
        self.rec = rec
        self.buddy = (buddy_nick, buddy_addr)
        self.peer = bp.Peer(nick, addr, profile="purple")
        self.peer.add_buddy(buddy_nick, buddy_addr)
        self.peer.on_stanza = self._stanza

    def _stanza(self, _session, el, _raw):
        if self.bp.local(el.tag) == "message":
            b = el.find("{%s}body" % self.bp.NS_CLIENT)
            if b is not None:
                self.rec.body(b.text or "")

    async def start(self):
        await self.peer.start()

    async def wait_up(self):
        # a live pipe (after a gateway restart the old one is gone)
        return await self.peer.wait_session(self.buddy[0], timeout=60)

    async def send(self, tag, n, _to, _contact):
        s = await self.wait_up()
        t0 = time.monotonic_ns()
        for i in range(n):
            await s.send_message(body_for(tag, i))
        return {"sent": n, "t0": t0, "t1": time.monotonic_ns()}

    async def close(self):
        await self.peer.stop()


async def main(argv):
    rec = Recorder()
    role = argv[0]
    if role == "component":
        port, jid, secret = int(argv[1]), argv[2], argv[3]
        end = Component(port, jid, secret, rec)
        runner = asyncio.ensure_future(end.run())
        wait_up = lambda: end.up
        contact = None
    else:
        cls = LightPeer if role == "light" else PeerRole
        end = cls(argv[1], argv[2], argv[3], argv[4], rec)
        await end.start()
        runner = None
        wait_up = end.wait_up
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "quit":
            break
        cmd = line[0]
        if cmd == "wait_up":
            await asyncio.wait_for(wait_up(), 60)
            answer({"up": True})
        elif cmd == "expect":
            answer(await rec.expect(line[1], int(line[2]), float(line[3])))
        elif cmd == "send":
            # send TAG N TO [CONTACT]
            contact = line[4] if len(line) > 4 else None
            answer(await end.send(line[1], int(line[2]), line[3], contact))
    await end.close()
    if runner:
        runner.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
