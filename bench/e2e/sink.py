"""bench/e2e: the far end of the path, in a process of its own.

Two roles, one small line protocol on stdin/stdout (so the driver's
process, which runs alice's slixmpp client, does not also carry the
receiver's parsing):

  sink.py component PORT JID SECRET     the baseline: a trivial XEP-0114
      component (raw asyncio socket, expat, handshake = hex SHA1(stream id
      + secret)) connected as the gateway's JID.  It records the arrival
      time of every <message> body; nothing else is done with anything.
  sink.py peer NICK ADDR BUDDY_NICK BUDDY_ADDR
      bob: the Barev test peer (tests/barevpeer, purple profile), recording
      the arrival time of every message body on any pipe.

Bodies the driver sends are "e2e TAG SEQ T_SEND_NS pad…" with T_SEND_NS
from CLOCK_MONOTONIC (system-wide, so the same clock in every process).

stdin commands, one per line; answers are one JSON line on stdout:
  wait_up                      -> {"up": true}  (handshake done / pipe up)
  expect TAG N TIMEOUT         -> {"tag":…, "got": n, "rows": [[seq, t_send_ns, t_arr_ns], …]}
  send TAG N TO                -> {"sent": n, "t0": ns, "t1": ns}  N messages
      as fast as the socket takes them (component: from the contact JID
      TO's peer; peer: to its buddy), bodies as above
  quit
"""
import asyncio
import hashlib
import json
import os
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
        end = PeerRole(argv[1], argv[2], argv[3], argv[4], rec)
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
