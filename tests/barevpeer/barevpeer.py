#!/usr/bin/python3
"""barevpeer — an independent Barev test peer (purple-like or pascal-like).

Written from ../shared/BAREV.md and the recorded transcripts, never from the
gateway's C code: the gateway's integration tests talk to this peer as they
would to a real libpurple plugin ("purple") or FreePascal library ("pascal"),
including each implementation's documented bugs (BAREV.md §2–§6).

API (asyncio; every wait is bounded and raises TimeoutError):

  Peer(nick, addr, port=1337, profile="purple"|"pascal", ping_idle=None,
       accept_files=True, auto_fetch_avatar=True, avatar_fetch_delay=0)
    await start() / await stop()
    add_buddy(nick, addr, port=1337) / remove_buddy(nick, addr)   allowlist
    await dial(nick, addr, port=1337, send_header=True, wait=True) -> Session
        source address bound to self.addr; send_header=False is pascal's
        "silent connect" (BAREV.md §2): the header is sent once the other
        side's header arrives.
    await wait_session(nick=None, timeout=10, exclude=()) -> Session (stream up)
    await set_presence(show=None, status=None, photo=None)  all sessions,
        profile format (pascal sends it twice)
    set_avatar(png) / await publish_avatar(png)   avatar_hash: purple SHA1 of
        the bytes, pascal SHA1 of the base64 text (BAREV.md §5)
    accept_files: True | False | max size in bytes
    hold_pings = True: pings received are not answered but kept in
        held_pings [(session, answer)] until await release_pings()
    await wait_file(timeout=10) -> (name, data)   files: list of dicts
    sessions (live), all_sessions, rejected [(ip, reason)], presence_sent
  Session
    remote_nick, remote_addr, remote_header (attrs), remote_header_raw,
    local_port, remote_port, inbound, up (bool), closed, close_reason
    received [Element], raw_in bytearray, raw_out bytearray, raw_of(el)
    messages [(body, el)], chatstates [(state, el)], dropped_bodies [text]
    (purple drops a body sent beside a chat state), dropped_iqs [el]
    (pascal drops iqs containing type="result"), quirks [str] (things the
    real implementation would mishandle), remote_presence dict, ping_resets
    (purple: a received ping reset the remote to available), pings_received,
    remote_avatar / remote_avatar_token, avatar_fetches [(token, bytes|None)]
    multi_stanza_reads (reads that carried >1 stanza end; pascal mis-frames)
    await send_message(body, chatstate=None) / send_chatstate(state)
    await send_presence(show, status, photo, unavailable=False)
    await send_ping(timeout=10) -> bool / await request_vcard(timeout=10)
    await send_file(name, data, timeout=15) -> dict(ok, reason, sid, ...)
    await send_raw(bytes|str)
    await wait_stanza(pred, timeout) / wait_message() -> (body, el) /
      wait_presence(pred=None) / wait_chatstate(state=None)  (each consumes
      the first matching not-yet-consumed stanza) / wait_until(pred) /
      wait_up() / wait_closed()
    await close(send_stream_end=None)  (None: purple yes, pascal no)

Stanzas are xml.etree.ElementTree Elements with Clark names: the stream's
default namespace applies, so tags read '{jabber:client}message',
'{jabber:client}body', '{vcard-temp}vCard'; use NS_CLIENT etc. or local(tag).

CLI: barevpeer.py --nick bob --addr 201:2::2 --profile pascal
       --buddy alice@201:1::1 [--buddy alice@[201:1::1]:1338] [--dial]
prints every received stanza as one line; stdin commands: msg NICK TEXT,
typing NICK, presence [SHOW [STATUS]], ping NICK, vcard NICK, file NICK PATH,
raw NICK XML, quit.
"""
import asyncio
import base64
import hashlib
import ipaddress
import logging
import random
import re
import socket
import time
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat

log = logging.getLogger("barevpeer")

NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_EVENT = "jabber:x:event"
NS_PING = "urn:xmpp:ping"
NS_YGGB_PING = "urn:yggb:ping"
NS_VCARD = "vcard-temp"
NS_VCARD_UPDATE = "vcard-temp:x:update"
NS_SI = "http://jabber.org/protocol/si"
NS_SI_FT = "http://jabber.org/protocol/si/profile/file-transfer"
NS_FNEG = "http://jabber.org/protocol/feature-neg"
NS_XDATA = "jabber:x:data"
NS_BYTESTREAMS = "http://jabber.org/protocol/bytestreams"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
CHATSTATES = ("active", "composing", "paused", "inactive", "gone")
DATA_PORTS = range(50000, 50050)        # BAREV.md §6.3
PROFILES = ("purple", "pascal")


# ---------------------------------------------------------------- addresses

def addr_norm(a):
    """RFC 5952 form (what purple writes and what the gateway must emit)."""
    return ipaddress.IPv6Address(a.strip("[]")).compressed


def addr_pascal(a):
    """pascal's wire form: RFC 5952 compression, groups zero-padded, upper."""
    head, sep, tail = addr_norm(a).partition("::")
    pad = lambda part: ":".join(g.zfill(4).upper() for g in part.split(":")) if part else ""
    return pad(head) + sep + pad(tail)


def addr_eq(a, b):
    try:
        return ipaddress.IPv6Address(a.strip("[]")) == ipaddress.IPv6Address(b.strip("[]"))
    except ValueError:
        return False


def split_jid(jid):
    """'nick@ADDR' or 'nick@[ADDR]:PORT' -> (nick, addr, port or None)."""
    nick, _, rest = jid.partition("@")
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", rest)
    if m:
        return nick, m.group(1), int(m.group(2)) if m.group(2) else None
    return nick, rest, None


def jid_eq(a, b):
    """nick case-insensitive, address numeric (pascal's comparison)."""
    na, aa, _ = split_jid(a)
    nb, ab, _ = split_jid(b)
    return na.lower() == nb.lower() and addr_eq(aa, ab)


def local(tag):
    return tag.rpartition("}")[2]


def esc(s):
    """The five XML entities, nothing else (BAREV.md §4)."""
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def sha1hex(b):
    return hashlib.sha1(b if isinstance(b, bytes) else b.encode()).hexdigest()


def header_bytes(from_jid, to_jid):
    """BAREV.md §2: one write, double quotes, no version, no features."""
    return ('<?xml version="1.0" encoding="UTF-8" ?>\n<stream:stream xmlns="jabber:client" '
            'xmlns:stream="http://etherx.jabber.org/streams" from="%s" to="%s">'
            % (esc(from_jid), esc(to_jid))).encode()


# ---------------------------------------------------------------- waiting

class _Changes:
    """'something changed' broadcast; waiters re-check a predicate."""

    def __init__(self):
        self._futs = set()

    def notify(self):
        for f in self._futs:
            if not f.done():
                f.set_result(None)
        self._futs.clear()

    async def wait_for(self, pred, timeout, what="condition"):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = pred()
            if isinstance(r, ET.Element) or r:  # a childless Element is falsy
                return r
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("barevpeer: timed out after %.1fs waiting for %s" % (timeout, what))
            f = loop.create_future()
            self._futs.add(f)
            try:
                await asyncio.wait_for(f, left)
            except asyncio.TimeoutError:
                pass
            finally:
                self._futs.discard(f)


# ---------------------------------------------------------------- XML stream

def _element_end(buf, start):
    """Offset just past the element starting at buf[start] (already
    validated by expat); quote-aware so '>' inside attributes is fine."""
    i, depth, n = start, 0, len(buf)
    while i < n:
        if buf.startswith(b"<!--", i):
            i = buf.index(b"-->", i) + 3
            continue
        if buf.startswith(b"<![CDATA[", i):
            i = buf.index(b"]]>", i) + 3
            continue
        if buf.startswith(b"<?", i):
            i = buf.index(b"?>", i) + 2
            continue
        if buf[i] != 0x3C:                       # text
            i += 1
            continue
        closing = buf.startswith(b"</", i)
        j, quote = i + 1, None
        while True:                              # to the tag's '>'
            c = buf[j]
            if quote:
                if c == quote:
                    quote = None
            elif c in (0x22, 0x27):
                quote = c
            elif c == 0x3E:
                break
            j += 1
        empty = buf[j - 1] == 0x2F and not closing
        depth += -1 if closing else (0 if empty else 1)
        i = j + 1
        if depth == 0:
            return i
    raise ValueError("element not complete")


class _XmlStream:
    """expat in namespace mode over a never-ending <stream:stream>: the root
    start is the header, each depth-1 element a stanza (with its raw bytes)."""

    def __init__(self, raw, on_header, on_stanza, on_end):
        self.raw = raw                   # the session's raw_in (shared)
        self.on_header, self.on_stanza, self.on_end = on_header, on_stanza, on_end
        self.depth = 0
        self.stack = []
        self.start = 0
        self.ended = False
        self.stanzas_this_feed = 0
        p = expat.ParserCreate("UTF-8", "}")
        p.buffer_text = True
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._text
        p.StartDoctypeDeclHandler = self._forbid
        p.EntityDeclHandler = self._forbid
        if hasattr(p, "SetReparseDeferralEnabled"):
            p.SetReparseDeferralEnabled(False)
        self.p = p

    @staticmethod
    def _forbid(*_a):
        raise ValueError("DTD/entity declarations are not allowed")

    @staticmethod
    def _clark(name):
        return "{" + name if "}" in name else name

    def feed(self, data):
        """Feed bytes already appended to self.raw; returns stanzas ended."""
        self.stanzas_this_feed = 0
        if not self.ended:
            try:
                self.p.Parse(bytes(data), False)
            except expat.ExpatError:
                if not self.ended:       # junk after </stream:stream> is tolerated
                    raise
        return self.stanzas_this_feed

    def _start(self, name, attrs):
        self.depth += 1
        attrs = {self._clark(k): v for k, v in attrs.items()}
        if self.depth == 1:
            end = _element_end_open(self.raw, self.p.CurrentByteIndex)
            self.on_header(self._clark(name), attrs, bytes(self.raw[:end]))
            return
        el = ET.Element(self._clark(name), attrs)
        if self.depth == 2:
            self.start = self.p.CurrentByteIndex
        else:
            self.stack[-1].append(el)
        self.stack.append(el)

    def _end(self, name):
        self.depth -= 1
        if self.depth == 0:
            self.ended = True
            self.on_end()
            return
        el = self.stack.pop()
        if self.depth == 1:
            end = _element_end(self.raw, self.start)
            self.stanzas_this_feed += 1
            self.on_stanza(el, bytes(self.raw[self.start:end]))

    def _text(self, data):
        if self.depth < 2:
            return                       # whitespace keepalives between stanzas
        top = self.stack[-1]
        if len(top):
            top[-1].tail = (top[-1].tail or "") + data
        else:
            top.text = (top.text or "") + data


def _element_end_open(buf, start):
    """Offset just past the start tag at buf[start] (the stream header)."""
    j, quote = start + 1, None
    while True:
        c = buf[j]
        if quote:
            if c == quote:
                quote = None
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x3E:
            return j + 1
        j += 1


# ---------------------------------------------------------------- sockets

def _nodelay(sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


async def _recv_exact(sock, n, timeout):
    loop = asyncio.get_running_loop()
    buf = bytearray()
    while len(buf) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, min(65536, n - len(buf))), timeout)
        if not chunk:
            raise ConnectionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


async def _connect_from(src_addr, dst, port, timeout, src_ports=(0,)):
    """Non-blocking connect with the source address bound (BAREV.md §2)."""
    loop = asyncio.get_running_loop()
    last = None
    for sp in src_ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((src_addr, sp))
            await asyncio.wait_for(loop.sock_connect(s, (dst, port)), timeout)
            _nodelay(s)
            return s
        except (OSError, asyncio.TimeoutError) as e:
            s.close()
            last = e
            if isinstance(e, asyncio.TimeoutError) or (
                    isinstance(e, OSError) and e.errno not in (98, 99)):  # EADDRINUSE/EADDRNOTAVAIL
                break
    raise ConnectionError("connect [%s]:%s from %s failed: %r" % (dst, port, src_addr, last))


class Buddy:
    def __init__(self, nick, addr, port=1337):
        self.nick, self.addr, self.port = nick, addr_norm(addr), port

    @property
    def jid(self):
        return "%s@%s" % (self.nick, self.addr)

    @property
    def jid_pascal(self):
        return "%s@%s" % (self.nick, addr_pascal(self.addr))

    def __repr__(self):
        return "Buddy(%s:%d)" % (self.jid, self.port)


# ---------------------------------------------------------------- session

class Session:
    def __init__(self, peer, reader, writer, inbound, buddy, remote, local_port):
        self.peer = peer
        self.reader, self.writer = reader, writer
        self.inbound = inbound
        self.buddy = buddy
        self.remote_addr, self.remote_port = addr_norm(remote[0]), remote[1]
        self.local_port = local_port
        self.remote_nick = buddy.nick if (buddy and not inbound) else None
        self.remote_header = None
        self.remote_header_raw = None
        self.header_sent = False
        self.up = False
        self.closed = False
        self.close_reason = None
        self.received = []
        self.raw_in = bytearray()
        self.raw_out = bytearray()
        self.messages = []
        self.chatstates = []
        self.dropped_bodies = []
        self.dropped_iqs = []
        self.quirks = []
        # bodies written after reading the other side's </stream:stream>,
        # before closing: a user who hit Enter as the goodbye arrived
        self.parting = []
        self.presences = []
        self.remote_presence = {"available": False, "show": None, "status": None, "photo": None}
        self.ping_resets = 0
        self.pings_received = 0
        self.remote_avatar = None
        self.remote_avatar_token = None
        self.avatar_fetches = []
        self.multi_stanza_reads = 0
        self.rejected = False            # purple "header then silence" mode
        self._raw = {}                   # id(el) -> raw bytes
        self._pending = []
        self._dropped = set()
        self._changes = _Changes()
        self._tasks = set()
        self._last_rx = time.monotonic()
        self._xml = _XmlStream(self.raw_in, self._on_header, self._on_stanza, self._on_end)

    def __repr__(self):
        return "<Session %s %s %s:%s%s>" % (
            self.peer.nick, "<-" if self.inbound else "->",
            self.remote_nick or "?", self.remote_addr, " closed" if self.closed else "")

    @property
    def profile(self):
        return self.peer.profile

    @property
    def remote_jid(self):
        return self.buddy.jid if self.buddy else "%s@%s" % (self.remote_nick or "", self.remote_addr)

    @property
    def remote_jid_pascal(self):
        return self.buddy.jid_pascal if self.buddy else self.remote_jid

    def raw_of(self, el):
        return self._raw.get(id(el))

    def _spawn(self, coro):
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)
        return t

    def _task_done(self, t):
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.warning("%r: task failed: %r", self, t.exception())

    def _notify(self):
        self._changes.notify()
        self.peer._changes.notify()

    # -- I/O

    def _start(self):
        self._spawn(self._read_loop())
        if self.profile == "purple" and self.peer.ping_idle:
            self._spawn(self._idle_pinger())

    async def _read_loop(self):
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    if self.profile == "purple":
                        try:
                            self.writer.write(b"</stream:stream>")
                            self.raw_out += b"</stream:stream>"
                        except (ConnectionError, OSError):
                            pass
                    self._mark_closed("eof")
                    break
                self._last_rx = time.monotonic()
                self.raw_in += data
                try:
                    n = self._xml.feed(data)
                except (expat.ExpatError, ValueError) as e:
                    log.info("%r: xml error %s", self, e)
                    await self._shutdown("xml-error: %s" % e)
                    break
                if n > 1:
                    self.multi_stanza_reads += 1
                if self._xml.ended or self.closed:
                    break
        except (ConnectionError, OSError) as e:
            self._mark_closed("error: %r" % e)
        finally:
            self._notify()

    async def send_raw(self, data):
        """One write per call (one stanza per send(), BAREV.md §7)."""
        if isinstance(data, str):
            data = data.encode()
        if self.closed:
            raise ConnectionError("%r: session closed" % self)
        self.raw_out += data
        self.writer.write(data)
        await self.writer.drain()

    def _mark_closed(self, reason):
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.up = False
            if self in self.peer.sessions:
                self.peer.sessions.remove(self)
            self.remote_presence["available"] = False
            try:
                self.writer.close()
            except Exception:
                pass
            log.info("%r: closed (%s)", self, reason)
        self._notify()

    async def _shutdown(self, reason, stream_end=False):
        if self.closed:
            return
        if stream_end:
            try:
                await self.send_raw(b"</stream:stream>")
            except (ConnectionError, OSError):
                pass
        self._mark_closed(reason)
        for t in list(self._tasks):
            if t is not asyncio.current_task():
                t.cancel()

    async def close(self, send_stream_end=None):
        """purple sends </stream:stream> then closes; pascal just closes."""
        if send_stream_end is None:
            send_stream_end = self.profile == "purple"
        await self._shutdown("local close", stream_end=send_stream_end)

    # -- stream open (BAREV.md §2)

    async def _send_header(self):
        if self.buddy is None:                   # purple "silent" rejection
            to = (self.remote_header or {}).get("from", "")
        else:
            to = self.remote_jid_pascal if self.profile == "pascal" else self.remote_jid
        self.header_sent = True
        await self.send_raw(header_bytes(self.peer.jid, to))

    def _on_header(self, name, attrs, raw):
        self.remote_header = {local(k): v for k, v in attrs.items()}
        self.remote_header_raw = raw
        self._spawn(self._header_received())

    async def _header_received(self):
        if self.inbound and not self._identify():
            return
        if not self.header_sent:
            await self._send_header()
        self.up = True
        if self.inbound:
            self.peer._replace_for(self)
        self._notify()
        await self._send_initial_presence()

    def _identify(self):
        """Inbound: who is this? Reject as the real implementation would."""
        p = self.peer
        if self.profile == "pascal":
            m = re.search(rb'\sfrom="([^"]*)"', self.remote_header_raw)
            frm = m.group(1).decode() if m else ""
            if not frm:
                self.quirks.append("pascal: header from not double-quoted, read as empty")
                self._spawn(self._shutdown("pascal: empty from"))
                return False
            b = self.buddy                   # first buddy with the source IP
            if not b or not jid_eq(frm, b.jid):
                self._spawn(self._shutdown("pascal: from %r is not the buddy" % frm))
                return False
            self.remote_nick = b.nick
            return True
        frm = self.remote_header.get("from", "")
        b = next((x for x in p.buddies if x.jid == frm), None)
        if not b:
            nick = frm.partition("@")[0]
            same = [x for x in p.buddies if x.nick == nick]
            b = same[0] if len(same) == 1 else None
        if not b:
            b = next((x for x in p.buddies if x.addr == self.remote_addr), None)
        if not b or b.addr != self.remote_addr:
            self._spawn(self._purple_reject("purple: from %r not matched" % frm))
            return False
        self.buddy, self.remote_nick = b, b.nick
        return True

    async def _purple_reject(self, reason):
        p = self.peer
        p.rejected.append((self.remote_addr, reason))
        if p.purple_reject == "silent":
            self.rejected = True
            await self._send_header()
            return
        await self.send_raw("<stream:error><not-authorized xmlns='%s'/></stream:error>"
                            "</stream:stream>" % NS_STREAMS_ERR)
        await self._shutdown(reason)

    def _on_end(self):
        self._spawn(self._part_then_shut())

    async def _part_then_shut(self):
        for body in self.parting:
            try:
                await self.send_message(body)
            except (ConnectionError, OSError):
                break
        await self._shutdown("stream-end", stream_end=self.profile == "purple")

    async def wait_up(self, timeout=10):
        await self._changes.wait_for(lambda: self.up or self.closed, timeout, "stream up")
        if not self.up:
            raise ConnectionError("%r closed before the stream came up: %s" % (self, self.close_reason))
        return self

    # -- presence (BAREV.md §3)

    def _presence_xml(self, show=None, status=None, photo=None, unavailable=False):
        inner = ""
        if show:
            inner += "<show>%s</show>" % esc(show)
        if status:
            inner += "<status>%s</status>" % esc(status)
        if self.profile == "pascal":
            if unavailable:
                return "<presence><show>offline</show></presence>"
            if photo:
                inner += "<x xmlns='%s'><photo>%s</photo></x>" % (NS_VCARD_UPDATE, esc(photo))
            return "<presence>%s</presence>" % inner
        inner += "<x xmlns='%s'>%s</x>" % (
            NS_VCARD_UPDATE, "<photo>%s</photo>" % esc(photo) if photo else "<photo/>")
        return "<presence from='%s'>%s</presence>" % (esc(self.peer.jid), inner)

    def _current_presence(self):
        ps = self.peer.presence_sent
        return self._presence_xml(ps["show"], ps["status"], ps["photo"])

    async def _send_initial_presence(self):
        if self.rejected:
            return
        if self.profile == "pascal":         # always "available", twice
            await self.send_raw("<presence></presence>")
            await self.send_raw("<presence></presence>")
        else:
            await self.send_raw(self._current_presence())

    async def send_presence(self, show=None, status=None, photo=None, unavailable=False):
        """One presence in the profile's format. purple never sends
        unavailable: it closes the stream instead (BAREV.md §3)."""
        if unavailable and self.profile == "purple":
            await self.close()
            return
        await self.send_raw(self._presence_xml(show, status, photo, unavailable))

    def _handle_presence(self, el, raw):
        rp = self.remote_presence
        if self.profile == "pascal":
            if raw.rstrip().endswith(b"/>") and raw.count(b">") == 1:
                self.quirks.append("pascal: self-closing <presence/>")
            unavailable = b'type="unavailable"' in raw
            if el.get("type") == "unavailable" and not unavailable:
                self.quirks.append("pascal: type='unavailable' in single quotes is not seen")
        else:
            unavailable = el.get("type") == "unavailable"
        show = el.findtext("{%s}show" % NS_CLIENT)
        if show == "offline":
            unavailable = True
        rp["available"] = not unavailable
        rp["show"] = None if unavailable else (show or None)
        rp["status"] = el.findtext("{%s}status" % NS_CLIENT)
        ph = el.find("{%s}x/{%s}photo" % (NS_VCARD_UPDATE, NS_VCARD_UPDATE))
        if ph is not None:
            rp["photo"] = (ph.text or "").strip()
            tok = rp["photo"]
            if tok and tok != self.remote_avatar_token and self.peer.auto_fetch_avatar:
                self.remote_avatar_token = tok
                self._spawn(self._fetch_avatar(tok))
        self.presences.append(el)

    # -- messages and chat states (BAREV.md §4)

    async def send_message(self, body, chatstate=None):
        cs = "<%s xmlns='%s'/>" % (chatstate, NS_CHATSTATES) if chatstate else ""
        if self.profile == "pascal":
            cs = cs.replace("'", '"')
            x = ('<message to="%s" from="%s" type="chat"><body>%s</body>%s</message>'
                 % (esc(self.remote_jid), esc(self.peer.jid), esc(body), cs))
        else:
            t = esc(body)
            x = ("<message to='%s' from='%s' type='chat'><body>%s</body>%s"
                 "<html xmlns='http://www.w3.org/1999/xhtml'><body><font>%s</font></body></html>"
                 "<x xmlns='%s'><composing/></x></message>"
                 % (esc(self.remote_jid), esc(self.peer.jid), t, cs, t, NS_EVENT))
        await self.send_raw(x)

    async def send_chatstate(self, state):
        if self.profile == "pascal":
            x = ("<message type='chat' to='%s' id='chat-%d-%d'><%s xmlns='%s'/></message>"
                 % (esc(self.remote_jid), int(time.time()), random.randrange(10000), state, NS_CHATSTATES))
        else:
            x = ("<message to='%s' from='%s' type='chat'><%s xmlns='%s'/></message>"
                 % (esc(self.remote_jid), esc(self.peer.jid), state, NS_CHATSTATES))
        await self.send_raw(x)

    def _handle_message(self, el, raw):
        body = el.find("{%s}body" % NS_CLIENT)
        states = [local(c.tag) for c in el
                  if c.tag.startswith("{%s}" % NS_CHATSTATES) and local(c.tag) in CHATSTATES]
        ev_id = el.find("{%s}x/{%s}id" % (NS_EVENT, NS_EVENT)) is not None
        for s in states:
            self.chatstates.append((s, el))
        if body is None:
            return
        text = body.text or ""
        if self.profile == "purple" and (states or ev_id):
            self.dropped_bodies.append(text)
            self._dropped.add(id(el))
            self.quirks.append("purple: body dropped (chat state or x:event id beside a body)")
            return
        if self.profile == "pascal" and re.search(rb"&#", raw):
            self.quirks.append("pascal: numeric character reference shown literally")
        self.messages.append((text, el))

    # -- iq: pings, vCards, files (BAREV.md §5, §6)

    def _iq_attrs(self, typ, iq_id):
        """purple: type id from to; pascal: type to id, single quotes, and
        its results address the upper-case form (transcripts 04, 07)."""
        if self.profile == "pascal":
            to = self.remote_jid_pascal if typ == "result" else self.remote_jid
            return "type='%s' to='%s' id='%s'" % (typ, esc(to), esc(iq_id))
        return "type='%s' id='%s' from='%s' to='%s'" % (
            typ, esc(iq_id), esc(self.peer.jid), esc(self.remote_jid))

    def _handle_iq(self, el, raw):
        typ = el.get("type")
        iq_id = el.get("id", "")
        if self.profile == "pascal" and b'type="result"' in raw and el.find("{%s}si" % NS_SI) is None:
            self.dropped_iqs.append(el)          # taken for a pong, BAREV.md §5
            self._dropped.add(id(el))
            return
        if typ == "get":
            if el.find("{%s}ping" % NS_PING) is not None or el.find("{%s}ping" % NS_YGGB_PING) is not None:
                self.pings_received += 1
                self._spawn(self._answer_ping(iq_id, raw))
            elif el.find("{%s}vCard" % NS_VCARD) is not None:
                self._spawn(self.send_raw("<iq %s>%s</iq>" % (
                    self._iq_attrs("result", iq_id), self.peer._vcard_xml())))
        elif typ == "set":
            si = el.find("{%s}si" % NS_SI)
            q = el.find("{%s}query" % NS_BYTESTREAMS)
            if si is not None:
                self._spawn(self._on_si_offer(el, si))
            elif q is not None:
                self._spawn(self._on_streamhosts(el, q))

    async def _answer_ping(self, iq_id, raw):
        if self.profile == "pascal":
            if b'type="get"' in raw:
                x = '<iq type="result" id="%s" to="%s"/>' % (esc(iq_id), esc(self.remote_jid_pascal))
            else:
                x = "<iq type='result' to='%s' id='%s'/>" % (esc(self.remote_jid_pascal), esc(iq_id))
        else:
            x = "<iq type='result' id='%s' to='%s' from='%s'/>" % (
                esc(iq_id), esc(self.remote_jid), esc(self.peer.jid))
            # purple shows the pinger as available again (BAREV.md §5)
            self.ping_resets += 1
            self.remote_presence.update(available=True, show=None)
        if self.peer.hold_pings:
            self.peer.held_pings.append((self, x))
            self.peer._changes.notify()
            return
        await self.send_raw(x)

    def _new_id(self, kind):
        p = self.peer
        if self.profile == "pascal":
            return "%s-%d-%d" % (kind, int(time.time()), random.randrange(10000))
        n = p._counters.get(kind, 0)
        p._counters[kind] = n + 1
        return "%s-%d-%d" % (kind, int(time.time()), n)

    def _response(self, iq_id, allow_dropped=True):
        def pred():
            for el in self.received:
                if (local(el.tag) == "iq" and el.get("id") == iq_id
                        and el.get("type") in ("result", "error")
                        and (allow_dropped or id(el) not in self._dropped)):
                    return el
            return None
        return pred

    async def _wait_response(self, iq_id, timeout, allow_dropped=True):
        pred = self._response(iq_id, allow_dropped)
        await self._changes.wait_for(lambda: pred() is not None or self.closed, timeout,
                                     "iq response id=%s" % iq_id)
        el = pred()
        if el is None:
            raise ConnectionError("%r closed waiting for iq %s" % (self, iq_id))
        return el

    async def send_ping(self, timeout=10):
        """True when a result (or error) with the ping's id came back."""
        iq_id = self._new_id("ping")
        if self.profile == "pascal":
            x = ('<iq type="get" id="%s" from="%s" to="%s"><ping xmlns="%s"/></iq>'
                 % (iq_id, esc(self.peer.jid), esc(self.remote_jid), NS_PING))
        else:
            x = "<iq %s><ping xmlns='%s'/></iq>" % (self._iq_attrs("get", iq_id), NS_PING)
        await self.send_raw(x)
        try:
            await self._wait_response(iq_id, timeout)
            return True
        except (TimeoutError, ConnectionError):
            return False

    async def _idle_pinger(self):
        """purple: ping after ping_idle s of silence, close after 3 misses."""
        p, misses = self.peer, 0
        while not self.closed:
            wait = self._last_rx + p.ping_idle - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)        # a timer, not synchronisation
                continue
            if await self.send_ping(p.ping_timeout):
                misses = 0
            else:
                misses += 1
                if misses >= 3:
                    await self._shutdown("ping timeout", stream_end=True)
                    return
            self._last_rx = max(self._last_rx, time.monotonic())

    async def request_vcard(self, timeout=10):
        """vCard photo bytes, or None (no answer, no photo, or dropped)."""
        iq_id = self._new_id("vcard")
        await self.send_raw("<iq %s><vCard xmlns='%s'/></iq>" % (
            self._iq_attrs("get", iq_id), NS_VCARD))
        try:
            el = await self._wait_response(iq_id, timeout, allow_dropped=False)
        except (TimeoutError, ConnectionError):
            return None
        b64 = el.findtext("{%s}vCard/{%s}PHOTO/{%s}BINVAL" % (NS_VCARD, NS_VCARD, NS_VCARD))
        if not b64:
            return None
        try:
            return base64.b64decode("".join(b64.split()), validate=True)
        except ValueError:
            self.quirks.append("vCard BINVAL is not valid base64")
            return None

    async def _fetch_avatar(self, token):
        if self.peer.avatar_fetch_delay:
            await asyncio.sleep(self.peer.avatar_fetch_delay)   # pascal waits ~5 s
        data = await self.request_vcard()
        if data is not None:
            self.remote_avatar = data
        self.avatar_fetches.append((token, data))
        self._notify()

    # file transfer: sender side

    async def _send_offer(self, name, size, sid):
        """A purple-style SI offer whose iq id is its sid."""
        p = self.peer
        await self.send_raw(
            "<iq to='%s' from='%s' id='%s' type='set'><si xmlns='%s' profile='%s' id='%s'>"
            "<file xmlns='%s' name='%s' size='%d'/><feature xmlns='%s'><x xmlns='%s' type='form'>"
            "<field var='stream-method' type='list-single'><option><value>%s</value></option>"
            "</field></x></feature></si></iq>"
            % (esc(self.remote_jid), esc(p.jid), esc(sid), NS_SI, NS_SI_FT, esc(sid), NS_SI_FT,
               esc(name), size, NS_FNEG, NS_XDATA, NS_BYTESTREAMS))

    async def offer_file(self, name, size, sid, timeout=30):
        """Only the SI offer: no streamhost, no data follow.  The answer's
        type: "result" (accepted) or "error" (declined)."""
        await self._send_offer(name, size, sid)
        return (await self._wait_response(sid, timeout)).get("type")

    async def offer_files(self, n, size, prefix, timeout=30):
        """n offers of `size` bytes sent back to back, none ever followed by
        data (a peer reserving the receiver's disk with promises alone).
        Their answers' types in offer order; sids are PREFIX-0 … PREFIX-n-1."""
        sids = ["%s-%d" % (prefix, i) for i in range(n)]
        for i, sid in enumerate(sids):
            await self._send_offer("%s-%d.bin" % (prefix, i), size, sid)
        return [(await self._wait_response(sid, timeout)).get("type") for sid in sids]

    async def send_streamhosts(self, sid, hosts, timeout=10):
        """For an accepted offer: the bytestreams query naming `hosts`, a
        list of (jid, host, port) wherever the test wants the receiver to
        connect.  Returns the receiver's answer element (result or error)."""
        p = self.peer
        bs_id = "bs-" + sid
        sh = "".join("<streamhost jid='%s' host='%s' port='%s'/>" % (esc(j), esc(h), esc(str(pt)))
                     for j, h, pt in hosts)
        await self.send_raw(
            "<iq to='%s' from='%s' id='%s' type='set'><query xmlns='%s' sid='%s' mode='tcp'>"
            "%s</query></iq>" % (esc(self.remote_jid), esc(p.jid), esc(bs_id), NS_BYTESTREAMS,
                                 esc(sid), sh))
        return await self._wait_response(bs_id, timeout)

    async def open_file_stream(self, name, size, sid, timeout=30):
        """A hand-driven sender for tests and benchmarks that control the
        bytes themselves: purple-style SI offer, streamhost, SOCKS5 server
        handshake.  Returns (offer result type, data socket or None); the
        caller writes the file and closes the socket."""
        p, loop = self.peer, asyncio.get_running_loop()
        rtype = await self.offer_file(name, size, sid, timeout)
        if rtype != "result":
            return rtype, None
        lsock, port = p._bind_data_port()
        await self.send_raw(
            "<iq to='%s' from='%s' id='%s' type='set'><query xmlns='%s' sid='%s' mode='tcp'>"
            "<streamhost jid='%s' host='%s' port='%d'/></query></iq>"
            % (self.remote_jid, p.jid, sid, NS_BYTESTREAMS, sid, p.jid, p.addr, port))
        conn, _ = await asyncio.wait_for(loop.sock_accept(lsock), timeout)
        lsock.close()
        conn.setblocking(False)
        await _recv_exact(conn, 3, 10)
        await loop.sock_sendall(conn, b"\x05\x00")
        await _recv_exact(conn, 47, 10)
        await loop.sock_sendall(conn, b"\x05\x00\x00\x03\x08200:2::2\x00\x00")
        return "result", conn

    async def send_file(self, name, data, timeout=15):
        """SI offer, SOCKS5 streamhost on 50000–50049, stream the bytes.
        purple then waits for the receiver to close; pascal never closes
        (peer.sender_shutdown_wr=True adds shutdown(SHUT_WR))."""
        p, loop = self.peer, asyncio.get_running_loop()
        pascal = self.profile == "pascal"
        if pascal:
            sid = self._new_id("si")
        else:
            sid = str(p._counters.get("si", 0))
            p._counters["si"] = int(sid) + 1
        res = {"ok": False, "sid": sid, "reason": None}
        si_attrs = ("id='%s' profile='%s'" if pascal else "profile='%s' id='%s'")
        si_attrs %= ((esc(sid), NS_SI_FT) if pascal else (NS_SI_FT, esc(sid)))
        ft = ("<si xmlns='%s' %s><file xmlns='%s' name='%s' size='%d'/>"
              "<feature xmlns='%s'><x xmlns='%s' type='form'><field var='stream-method' type='list-single'>"
              "<option><value>%s</value></option></field></x></feature></si>"
              % (NS_SI, si_attrs, NS_SI_FT, esc(name), len(data), NS_FNEG, NS_XDATA, NS_BYTESTREAMS))
        if pascal:
            x = ('<iq type="set" id="%s" from="%s" to="%s">%s</iq>'
                 % (esc(sid), esc(p.jid), esc(self.remote_jid_pascal), ft.replace("'", '"')))
        else:
            x = ("<iq to='%s' from='%s' id='%s' type='set'>%s</iq>"
                 % (esc(self.remote_jid), esc(p.jid), esc(sid), ft))
        await self.send_raw(x)
        try:
            resp = await self._wait_response(sid, timeout)
        except (TimeoutError, ConnectionError) as e:
            res["reason"] = "no answer to offer: %s" % e
            return res
        if resp.get("type") != "result":
            res["reason"] = "declined"
            return res
        lsock, port = p._bind_data_port()
        try:
            bs_id = self._new_id("bs") if pascal else sid
            sh = ("<query xmlns='%s' sid='%s' mode='tcp'><streamhost jid='%s' host='%s' port='%d'/></query>"
                  % (NS_BYTESTREAMS, esc(sid), esc(p.jid), p.addr, port))
            if pascal:
                x = ('<iq type="set" id="%s" from="%s" to="%s">%s</iq>'
                     % (bs_id, esc(p.jid), esc(self.remote_jid_pascal), sh.replace("'", '"')))
            else:
                x = "<iq to='%s' from='%s' id='%s' type='set'>%s</iq>" % (
                    esc(self.remote_jid), esc(p.jid), esc(sid), sh)
            await self.send_raw(x)
            conn, src = await asyncio.wait_for(loop.sock_accept(lsock), timeout)
        except (asyncio.TimeoutError, OSError) as e:
            res["reason"] = "no data connection: %r" % e
            return res
        finally:
            lsock.close()
        conn.setblocking(False)
        _nodelay(conn)
        res["data_from"] = addr_norm(src[0])
        res["from_buddy"] = addr_eq(src[0], self.remote_addr)
        try:
            greet = await _recv_exact(conn, 2, timeout)
            await _recv_exact(conn, greet[1], timeout)
            await loop.sock_sendall(conn, b"\x05\x00")
            hdr = await _recv_exact(conn, 5, timeout)
            rest = {1: 3, 3: hdr[4], 4: 15}.get(hdr[3], 0)
            dst = await _recv_exact(conn, rest + 2, timeout)
            res["socks_request"] = hdr + dst
            res["hash"] = dst[:-2].decode("latin-1") if hdr[3] == 3 else None
            res["hash_ok"] = res["hash"] == sha1hex(sid + p.jid + self.remote_jid)
            if pascal:
                reply = b"\x05\x00\x00\x03\x14" + b"\x00" * 20 + b"\x00\x00"
            else:
                h = res["data_from"].encode()
                reply = b"\x05\x00\x00\x03" + bytes([len(h)]) + h + b"\x00\x00"
            await loop.sock_sendall(conn, reply)
            await loop.sock_sendall(conn, data)
            res["ok"] = True
            if p.sender_shutdown_wr:
                conn.shutdown(socket.SHUT_WR)
            if pascal:
                p._data_socks.append(conn)       # pascal never closes its side
                conn = None
            else:                                # purple: close once the receiver has
                res["receiver_closed"] = None    # (None until known; in the background)
                self._spawn(self._await_receiver_close(conn, res, timeout))
                conn = None
        except (asyncio.TimeoutError, OSError, ConnectionError) as e:
            res["reason"] = "socks5/data: %r" % e
        finally:
            if conn is not None:
                conn.close()
        res["streamhost_used"] = self._response(bs_id)() is not None
        return res

    async def _await_receiver_close(self, conn, res, timeout):
        try:
            res["receiver_closed"] = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(conn, 1), timeout) == b""
        except (asyncio.TimeoutError, OSError):
            res["receiver_closed"] = False
        finally:
            conn.close()
            self._notify()

    # file transfer: receiver side

    async def _on_si_offer(self, iq, si):
        p = self.peer
        f = si.find("{%s}file" % NS_SI_FT)
        iq_id = iq.get("id", "")
        sid = si.get("id") or iq_id
        name = f.get("name", "") if f is not None else ""
        try:
            size = int(f.get("size", "-1")) if f is not None else -1
        except ValueError:
            size = -1
        ok = p.accept_files
        accept = size >= 0 and (ok is True or (type(ok) is int and size <= ok))
        pascal = self.profile == "pascal"
        if not accept:
            p.file_events.append(("declined", name, size, sid))
            err = ("<error type='cancel' code='403'><forbidden xmlns='%s'/></error>" % NS_STANZAS)
            if pascal:
                x = '<iq type="error" id="%s" from="%s" to="%s">%s</iq>' % (
                    esc(iq_id), esc(p.jid), esc(self.remote_jid_pascal), err.replace("'", '"'))
            else:
                x = "<iq to='%s' from='%s' id='%s' type='error'>%s</iq>" % (
                    esc(self.remote_jid), esc(p.jid), esc(iq_id), err)
            await self.send_raw(x)
            return
        p._incoming[sid] = {"name": name, "size": size, "session": self}
        sub = ("<si xmlns='%s'><feature xmlns='%s'><x xmlns='%s' type='submit'><field var='stream-method'>"
               "<value>%s</value></field></x></feature></si>" % (NS_SI, NS_FNEG, NS_XDATA, NS_BYTESTREAMS))
        if pascal:
            x = '<iq type="result" id="%s" from="%s" to="%s">%s</iq>' % (
                esc(iq_id), esc(p.jid), esc(self.remote_jid_pascal), sub.replace("'", '"'))
        else:
            x = "<iq to='%s' from='%s' id='%s' type='result'>%s</iq>" % (
                esc(self.remote_jid), esc(p.jid), esc(iq_id), sub)
        await self.send_raw(x)

    async def _on_streamhosts(self, iq, q):
        p, loop = self.peer, asyncio.get_running_loop()
        sid = q.get("sid", "")
        info = p._incoming.pop(sid, None)
        if info is None:
            p.file_events.append(("unknown-sid", sid))
            return
        pascal = self.profile == "pascal"
        initiator = self.remote_jid_pascal if pascal else self.remote_jid
        digest = sha1hex(sid + initiator + p.jid).encode()
        tried = []
        for sh in q.findall("{%s}streamhost" % NS_BYTESTREAMS):
            host, jid = sh.get("host", ""), sh.get("jid", "")
            try:
                port = int(sh.get("port", "0"))
                sock = await _connect_from(p.addr, host, port, p.file_timeout,
                                           DATA_PORTS if pascal else (0,))
            except (ValueError, ConnectionError) as e:
                tried.append((host, repr(e)))
                continue
            try:
                await loop.sock_sendall(sock, b"\x05\x01\x00")
                if (await _recv_exact(sock, 2, p.file_timeout)) != b"\x05\x00":
                    raise ConnectionError("bad SOCKS5 method reply")
                await loop.sock_sendall(sock, b"\x05\x01\x00\x03\x28" + digest + b"\x00\x00")
                rep = await _recv_exact(sock, 5, p.file_timeout)
                rest = {1: 3, 3: rep[4], 4: 15}.get(rep[3], 0)
                rep += await _recv_exact(sock, rest + 2, p.file_timeout)
                if rep[:2] != b"\x05\x00":
                    raise ConnectionError("SOCKS5 connect refused")
                await self._send_streamhost_used(iq.get("id", ""), sid, jid)
                data = await _recv_exact(sock, info["size"], p.file_timeout)
            except (asyncio.TimeoutError, OSError, ConnectionError) as e:
                sock.close()
                tried.append((host, repr(e)))
                continue
            if pascal:
                p._data_socks.append(sock)           # pascal never closes its side
            else:
                sock.close()
            p.files.append({"name": info["name"], "size": info["size"], "data": data,
                            "sid": sid, "session": self, "streamhost": (host, port),
                            "socks_reply": rep})
            p._files_pending.append((info["name"], data))
            p._changes.notify()
            return
        p.file_events.append(("failed", info["name"], sid, tried))
        p._changes.notify()

    async def _send_streamhost_used(self, bs_id, sid, jid):
        p = self.peer
        if self.profile == "pascal":
            n, a, _ = split_jid(jid)
            try:
                jid = "%s@%s" % (n, addr_pascal(a))
            except ValueError:
                pass
            x = ('<iq type="result" id="%s" from="%s" to="%s"><query xmlns="%s" sid="%s">'
                 '<streamhost-used jid="%s"/></query></iq>'
                 % (esc(bs_id), esc(p.jid), esc(self.remote_jid_pascal), NS_BYTESTREAMS, esc(sid), esc(jid)))
        else:
            x = ("<iq to='%s' from='%s' id='%s' type='result'><query xmlns='%s'>"
                 "<streamhost-used jid='%s'/></query></iq>"
                 % (esc(self.remote_jid), esc(p.jid), esc(bs_id), NS_BYTESTREAMS, esc(jid)))
        await self.send_raw(x)

    # -- incoming stanzas

    def _on_stanza(self, el, raw):
        self._raw[id(el)] = raw
        self.received.append(el)
        if self.rejected:
            self._dropped.add(id(el))            # purple: not matched, dropped
        else:
            kind = local(el.tag)
            if kind == "message":
                self._handle_message(el, raw)
            elif kind == "presence":
                self._handle_presence(el, raw)
            elif kind == "iq":
                self._handle_iq(el, raw)
        self._pending.append(el)
        if self.peer.on_stanza:
            self.peer.on_stanza(self, el, raw)
        self._notify()

    async def wait_stanza(self, pred=lambda el: True, timeout=10):
        """First not-yet-consumed stanza matching pred (consumes it)."""
        def find():
            for i, el in enumerate(self._pending):
                if pred(el):
                    return self._pending.pop(i)
            return None
        return await self._changes.wait_for(find, timeout, "stanza on %r" % self)

    async def wait_message(self, timeout=10):
        """(body, element) of the next message whose body was delivered."""
        el = await self.wait_stanza(
            lambda e: local(e.tag) == "message" and id(e) not in self._dropped
            and e.find("{%s}body" % NS_CLIENT) is not None, timeout)
        return el.findtext("{%s}body" % NS_CLIENT) or "", el

    async def wait_presence(self, pred=None, timeout=10):
        return await self.wait_stanza(
            lambda e: local(e.tag) == "presence" and (pred is None or pred(e)), timeout)

    async def wait_chatstate(self, state=None, timeout=10):
        def has(e):
            return local(e.tag) == "message" and any(
                c.tag.startswith("{%s}" % NS_CHATSTATES) and (state is None or local(c.tag) == state)
                for c in e)
        return await self.wait_stanza(has, timeout)

    async def wait_until(self, pred, timeout=10, what="condition"):
        return await self._changes.wait_for(pred, timeout, what)

    async def wait_closed(self, timeout=10):
        await self._changes.wait_for(lambda: self.closed, timeout, "close of %r" % self)
        return self.close_reason


# ---------------------------------------------------------------- peer

class Peer:
    def __init__(self, nick, addr, port=1337, profile="purple", ping_idle=None,
                 accept_files=True, auto_fetch_avatar=True, avatar_fetch_delay=0):
        if profile not in PROFILES:
            raise ValueError("profile must be one of %s" % (PROFILES,))
        self.nick, self.addr, self.port, self.profile = nick, addr_norm(addr), port, profile
        self.ping_idle = ping_idle           # purple only; None = never ping
        self.ping_timeout = 10
        self.accept_files = accept_files
        self.auto_fetch_avatar = auto_fetch_avatar
        self.avatar_fetch_delay = avatar_fetch_delay
        self.purple_reject = "error"         # or "silent": header, then drop all
        self.sender_shutdown_wr = False
        self.file_timeout = 15
        self.hold_pings = False              # True: pings wait for release_pings()
        self.held_pings = []                 # [(session, answer)] not yet sent
        self.on_stanza = None                # callback(session, el, raw)
        self.buddies = []
        self.sessions = []
        self.all_sessions = []
        self.rejected = []
        self.presence_sent = {"show": None, "status": None, "photo": None}
        self.avatar = None
        self.avatar_hash = None
        self.files = []
        self.file_events = []
        self._files_pending = []
        self._incoming = {}
        self._data_socks = []
        self._counters = {}
        self._changes = _Changes()
        self._lsock = None
        self._accept_task = None

    def __repr__(self):
        return "<Peer %s %s>" % (self.profile, self.jid)

    @property
    def jid(self):
        return "%s@%s" % (self.nick, self.addr)

    async def release_pings(self):
        """Stop holding ping answers; send the held ones, in order, on the
        sessions still open."""
        self.hold_pings = False
        held, self.held_pings = self.held_pings, []
        for s, x in held:
            if not s.closed:
                await s.send_raw(x)

    async def start(self):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        s.listen(64)
        s.setblocking(False)
        self._lsock = s
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop())
        return self

    async def stop(self):
        if self._accept_task:
            self._accept_task.cancel()
            self._accept_task = None
        if self._lsock:
            self._lsock.close()
            self._lsock = None
        for s in list(self.sessions):
            await s.close()
        for s in self.all_sessions:
            for t in list(s._tasks):
                t.cancel()
        for d in self._data_socks:
            d.close()
        self._data_socks.clear()

    def add_buddy(self, nick, addr, port=1337):
        b = self._buddy(nick, addr)
        if b:
            b.port = port
            return b
        b = Buddy(nick, addr, port)
        self.buddies.append(b)
        return b

    def remove_buddy(self, nick, addr):
        b = self._buddy(nick, addr)
        if b:
            self.buddies.remove(b)

    def _buddy(self, nick, addr):
        return next((b for b in self.buddies if b.nick.lower() == nick.lower() and addr_eq(b.addr, addr)), None)

    async def _accept_loop(self):
        loop = asyncio.get_running_loop()
        while True:
            conn, src = await loop.sock_accept(self._lsock)
            ip = addr_norm(src[0])
            buddy = next((b for b in self.buddies if b.addr == ip), None)
            if buddy is None:                     # close before reading a byte
                conn.close()
                self.rejected.append((ip, "unknown ip"))
                self._changes.notify()
                continue
            conn.setblocking(False)
            _nodelay(conn)
            if self.profile == "pascal":          # a new accept replaces that IP's pipe
                for old in [s for s in self.sessions if s.remote_addr == ip]:
                    await old._shutdown("replaced by new accept")
            reader, writer = await asyncio.open_connection(sock=conn)
            sess = Session(self, reader, writer, True, buddy if self.profile == "pascal" else None,
                           src, self.port)
            self.sessions.append(sess)
            self.all_sessions.append(sess)
            sess._start()
            self._changes.notify()

    def _replace_for(self, new):
        """purple: a new stream from a buddy replaces that buddy's pipe."""
        if self.profile != "purple":
            return
        for old in [s for s in self.sessions if s is not new and s.buddy is new.buddy]:
            asyncio.get_running_loop().create_task(old._shutdown("replaced by new stream"))

    async def dial(self, nick, addr, port=1337, send_header=True, wait=True, timeout=10):
        buddy = self.add_buddy(nick, addr, port)
        sock = await _connect_from(self.addr, buddy.addr, port, timeout)
        local_port = sock.getsockname()[1]
        reader, writer = await asyncio.open_connection(sock=sock)
        sess = Session(self, reader, writer, False, buddy, (buddy.addr, port), local_port)
        self.sessions.append(sess)
        self.all_sessions.append(sess)
        sess._start()
        if send_header:
            await sess._send_header()
            if wait:
                await sess.wait_up(timeout)
        return sess

    async def wait_session(self, nick=None, timeout=10, exclude=()):
        def find():
            return next((s for s in self.sessions if s.up and s not in exclude and not s.rejected
                         and (nick is None or (s.remote_nick or "").lower() == nick.lower())), None)
        return await self._changes.wait_for(find, timeout, "session with %s on %r" % (nick, self))

    async def wait_until(self, pred, timeout=10, what="condition"):
        return await self._changes.wait_for(pred, timeout, what)

    # -- presence and avatar

    async def set_presence(self, show=None, status=None, photo=None):
        self.presence_sent.update(show=show, status=status, photo=photo or self.avatar_hash)
        for s in [s for s in self.sessions if s.up and not s.rejected]:
            x = s._current_presence()
            await s.send_raw(x)
            if self.profile == "pascal":          # every change goes out twice
                await s.send_raw(x)

    def set_avatar(self, png):
        self.avatar = png
        if png is None:
            self.avatar_hash = None
        elif self.profile == "pascal":
            self.avatar_hash = sha1hex(base64.b64encode(png))
        else:
            self.avatar_hash = sha1hex(png)
        self.presence_sent["photo"] = self.avatar_hash

    async def publish_avatar(self, png):
        """Set the avatar and announce it as the real one does: purple one
        presence with the hash; pascal the old presence, then the new one."""
        old = dict(self.presence_sent)
        self.set_avatar(png)
        for s in [s for s in self.sessions if s.up and not s.rejected]:
            if self.profile == "pascal":
                await s.send_raw(s._presence_xml(old["show"], old["status"], old["photo"]))
            await s.send_raw(s._current_presence())

    def _vcard_xml(self):
        if not self.avatar:
            return "<vCard xmlns='%s'/>" % NS_VCARD
        return ("<vCard xmlns='%s'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard>"
                % (NS_VCARD, base64.b64encode(self.avatar).decode()))

    # -- files

    def _bind_data_port(self):
        for port in DATA_PORTS:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s.bind((self.addr, port))
            except OSError:
                s.close()
                continue
            s.listen(4)
            s.setblocking(False)
            return s, port
        raise OSError("no free data port in 50000-50049")

    async def wait_file(self, timeout=10):
        """(name, data) of the next completely received file."""
        await self._changes.wait_for(lambda: self._files_pending, timeout, "a file on %r" % self)
        return self._files_pending.pop(0)


# ---------------------------------------------------------------- CLI

def _parse_buddy(s):
    nick, addr, port = split_jid(s)
    return nick, addr, port or 1337


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def _cli_avatar(peer, arg):
    """`avatar PATH|none`: publish a PNG as this peer's avatar (every open
    pipe gets the presence with its hash, then fetches the vCard as the
    profile does), or withdraw it.  Returns the line to print."""
    if not arg:
        return "usage: avatar PATH|none"
    if arg.lower() == "none":
        await peer.publish_avatar(None)
        return "none (withdrawn)"
    try:
        with open(arg, "rb") as f:
            png = f.read()
    except OSError as e:
        return "cannot read %s: %s" % (arg, e.strerror)
    if not png.startswith(PNG_MAGIC):
        return "%s is not a PNG (the vCard says image/png)" % arg
    await peer.publish_avatar(png)
    return "%s, %d bytes, hash %s" % (arg, len(png), peer.avatar_hash)


async def _cli(args):
    import sys
    peer = Peer(args.nick, args.addr, args.port, args.profile, ping_idle=args.ping_idle)
    peer.on_stanza = lambda s, el, raw: print("%s %s" % (s.remote_nick or s.remote_addr,
                                                         raw.decode("utf-8", "replace")), flush=True)
    for b in args.buddy:
        peer.add_buddy(*_parse_buddy(b))
    await peer.start()
    print("listening on [%s]:%d as %s (%s)" % (peer.addr, peer.port, peer.jid, peer.profile), flush=True)
    if args.dial:
        for b in list(peer.buddies):
            try:
                await peer.dial(b.nick, b.addr, b.port, send_header=not args.silent, wait=False)
            except ConnectionError as e:
                print("dial %s: %s" % (b.jid, e), flush=True)
    loop = asyncio.get_running_loop()

    def sess(nick):
        return next((s for s in peer.sessions if (s.remote_nick or "").lower() == nick.lower()), None)

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
        cmd, _, rest = line.rstrip("\n").partition(" ")
        nick, _, arg = rest.partition(" ")
        try:
            if cmd == "presence":
                show, _, status = rest.partition(" ")
                await peer.set_presence(show or None, status or None)
                continue
            if cmd == "avatar":
                # the whole rest is the path (it may contain spaces)
                print("avatar: %s" % await _cli_avatar(peer, rest.strip()), flush=True)
                continue
            s = sess(nick)
            if s is None:
                print("no session with %r" % nick, flush=True)
            elif cmd == "msg":
                await s.send_message(arg)
            elif cmd == "typing":
                await s.send_chatstate("composing")
            elif cmd == "ping":
                print("ping: %s" % await s.send_ping(), flush=True)
            elif cmd == "vcard":
                print("vcard: %r" % await s.request_vcard(), flush=True)
            elif cmd == "file":
                with open(arg, "rb") as f:
                    print("file: %r" % await s.send_file(arg.rsplit("/", 1)[-1], f.read()), flush=True)
            elif cmd == "raw":
                await s.send_raw(arg)
            else:
                print("commands: msg|typing|ping|vcard|file|raw NICK ..., presence [SHOW [STATUS]], "
                      "avatar PATH|none, quit", flush=True)
        except (ConnectionError, OSError) as e:
            print("error: %s" % e, flush=True)
    await peer.stop()


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Barev test peer (purple- or pascal-like)")
    ap.add_argument("--nick", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=1337)
    ap.add_argument("--profile", choices=PROFILES, default="purple")
    ap.add_argument("--buddy", action="append", default=[], help="nick@ADDR or nick@[ADDR]:PORT")
    ap.add_argument("--dial", action="store_true", help="dial every buddy at start")
    ap.add_argument("--silent", action="store_true", help="pascal: dial without sending a header")
    ap.add_argument("--ping-idle", type=float, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        asyncio.run(_cli(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
