#!/usr/bin/python3
"""Self-test of the Barev test peer, independent of the gateway.

Runs inside a private network namespace (tests/lib/netns.py). Every profile
pair talks over loopback 201::/16 addresses: stream up, presence, messages
with XML specials and non-ASCII, typing, status, ping, avatar, a file each
way, close; plus the byte formats of the transcripts, the allowlist, and
each implementation's documented quirks (BAREV.md).
"""
import asyncio
import base64
import os
import re
import socket
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import netns  # noqa: E402
import barevpeer as bp  # noqa: E402

A_ADDR, B_ADDR, C_ADDR = "201:1::1", "201:2::2", "201:3::3"
# ../shared next to the repository (as in CI), or BAREV_TRANSCRIPTS
TRANSCRIPTS = os.environ.get("BAREV_TRANSCRIPTS") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "barev-transcripts"))
T = 5                                   # every wait is bounded by this

failures = []
skipped = []
SKIP_EXIT = 77                          # CTest SKIP_RETURN_CODE (CMakeLists.txt)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def transcript_avatar():
    """The 48x48 PNG alice used in the recordings, and its two hashes."""
    path = os.path.join(TRANSCRIPTS, "purple-purple", "04-avatar.txt")
    if os.path.exists(path):
        b64 = re.search(r"<BINVAL>([^<]*)</BINVAL>", open(path).read()).group(1)
        return base64.b64decode(b64)
    return bytes(range(256)) * 4         # stand-in if the transcripts are absent


async def scenario(name, fn):
    try:
        await asyncio.wait_for(fn(), 15)
        print("PASS %s" % name, flush=True)
    except Exception:
        failures.append(name)
        print("FAIL %s" % name, flush=True)
        traceback.print_exc()


# ------------------------------------------------------------ offline checks

async def t_formats():
    # BAREV.md §2 and transcript purple-purple/00: the header's exact bytes
    check(bp.header_bytes("bob@200:2::2", "alice@200:1::1") ==
          b'<?xml version="1.0" encoding="UTF-8" ?>\n<stream:stream xmlns="jabber:client" '
          b'xmlns:stream="http://etherx.jabber.org/streams" from="bob@200:2::2" to="alice@200:1::1">',
          "header bytes")
    check(bp.addr_pascal("200:1::1") == "0200:0001::0001", "pascal address form")
    check(bp.addr_pascal("201:abcd::a1") == "0201:ABCD::00A1", "pascal address form (BAREV §1)")
    check(bp.addr_norm("0201:ABCD::00A1") == "201:abcd::a1", "RFC 5952 form")
    check(bp.jid_eq("Bob@0200:0002::0002", "bob@200:2::2"), "jid compare")
    check(bp.split_jid("bob@[201:2::2]:1338") == ("bob", "201:2::2", 1338), "bracketed buddy")
    check(bp.esc("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;", "five entities")
    png = transcript_avatar()
    purple, pascal = bp.Peer("a", A_ADDR), bp.Peer("a", A_ADDR, profile="pascal")
    purple.set_avatar(png)
    pascal.set_avatar(png)
    if len(png) != 1024:
        check(purple.avatar_hash == "ecd0ebc79d8765e7a67a707547e25c5725894170", "purple avatar hash")
        check(pascal.avatar_hash == "2c27528e68635d12c1957cd4d1c7c7d8d692c93d", "pascal avatar hash")
    # SOCKS5 hashes of the recordings: purple RFC 5952, pascal upper initiator
    check(bp.sha1hex("0alice@200:1::1bob@200:2::2").startswith("757f009c"), "purple socks hash")
    check(bp.sha1hex("0alice@0200:0001::0001bob@200:2::2").startswith("aa5fec79"), "pascal socks hash")


async def t_parser():
    """A whole recorded stream fed one byte at a time: same stanzas, exact raw
    bytes, '>' inside attributes, self-closing children, junk after the end."""
    header = bp.header_bytes("bob@200:2::2", "alice@200:1::1")
    stanzas = [b"<presence from='bob@200:2::2'><x xmlns='vcard-temp:x:update'><photo/></x></presence>",
               b'<message to="a" type="chat"><body>x &lt;&gt; \xc3\xa9</body></message>',
               b"<iq type='result' id='a>b' to='x'/>",
               b"<iq id='0' type=\"set\"><q xmlns='urn:x'><a/>t<b c='/>'>u</b>v</q></iq>"]
    stream = header + b"\n" + b" \n".join(stanzas) + b"</stream:stream> junk"
    for step in (1, 7, len(stream)):
        raw, got, ends, hdr = bytearray(), [], [], []
        xs = bp._XmlStream(raw, lambda n, a, r: hdr.append((n, a, r)),
                           lambda el, r: got.append((el, r)), lambda: ends.append(1))
        for i in range(0, len(stream), step):
            raw += stream[i:i + step]
            xs.feed(stream[i:i + step])
        check(hdr and hdr[0][2] == header, "header raw (step %d)" % step)
        check(hdr[0][1].get("from") == "bob@200:2::2", "header attrs")
        check([r for _, r in got] == stanzas, "stanza raw bytes (step %d): %r" % (step, [r for _, r in got]))
        check(got[1][0].findtext("{jabber:client}body") == "x <> \u00e9", "body text")
        check(got[0][0].find("{vcard-temp:x:update}x/{vcard-temp:x:update}photo") is not None, "ns")
        check(ends == [1], "stream end")


# ------------------------------------------------------------ pairs

async def pair(pa, pb):
    """bob (pb) dials alice (pa), as in the recordings."""
    a = bp.Peer("alice", A_ADDR, profile=pa)
    b = bp.Peer("bob", B_ADDR, profile=pb)
    a.add_buddy("bob", B_ADDR)
    b.add_buddy("alice", A_ADDR)
    await a.start()
    await b.start()
    try:
        bs = await b.dial("alice", A_ADDR)
        as_ = await a.wait_session("bob", T)
        await bs.wait_up(T)

        # header bytes exactly as the profile writes them
        to = "alice@0201:0001::0001" if pb == "pascal" else "alice@201:1::1"
        check(bytes(as_.raw_in).startswith(bp.header_bytes("bob@201:2::2", to)),
              "bob's header: %r" % bytes(as_.raw_in[:200]))
        check(bs.remote_header["from"] == "alice@201:1::1", "alice's header from")

        # initial presence: purple once with <photo/>, pascal twice, bare
        p = await as_.wait_presence(timeout=T)
        if pb == "pascal":
            check(as_.raw_of(p) == b"<presence></presence>", "pascal presence")
            p2 = await as_.wait_presence(timeout=T)
            check(as_.raw_of(p2) == b"<presence></presence>", "pascal presence twice")
        else:
            check(as_.raw_of(p) == b"<presence from='bob@201:2::2'><x xmlns='vcard-temp:x:update'>"
                  b"<photo/></x></presence>", "purple presence: %r" % as_.raw_of(p))
        await bs.wait_presence(timeout=T)
        check(as_.remote_presence["available"] and bs.remote_presence["available"], "available")

        # messages both ways with XML specials and non-ASCII
        text = "hi <b>&amp; \"q\" 'a' \u2014 \u00e9\u00fc \U0001F600"
        await as_.send_message(text)
        body, el = await bs.wait_message(T)
        check(body == text, "a->b body %r" % body)
        raw = bs.raw_of(el)
        check(b"&lt;b&gt;&amp;amp; &quot;q&quot; &apos;a&apos; \xe2\x80\x94" in raw, "escaping %r" % raw)
        if pa == "purple":
            check(b"<html xmlns='http://www.w3.org/1999/xhtml'><body><font>" in raw
                  and raw.endswith(b"<x xmlns='jabber:x:event'><composing/></x></message>"), "purple msg")
        else:
            check(raw.startswith(b'<message to="bob@201:2::2" from="alice@201:1::1" type="chat"><body>')
                  and raw.endswith(b"</body></message>"), "pascal msg %r" % raw)
        await bs.send_message(text[::-1])
        body, _ = await as_.wait_message(T)
        check(body == text[::-1], "b->a body")

        # typing: chat states as separate body-less messages
        await as_.send_chatstate("composing")
        el = await bs.wait_chatstate("composing", T)
        check(el.find("{jabber:client}body") is None, "no body beside chat state")
        if pa == "pascal":
            check(re.fullmatch(rb"<message type='chat' to='bob@201:2::2' id='chat-\d+-\d+'><composing "
                               rb"xmlns='http://jabber.org/protocol/chatstates'/></message>", bs.raw_of(el)),
                  "pascal chat state %r" % bs.raw_of(el))
        await as_.send_chatstate("active")
        await bs.wait_chatstate("active", T)
        await bs.send_chatstate("composing")
        await as_.wait_chatstate("composing", T)

        # status: pascal sends every change twice
        await b.set_presence("dnd", "do not disturb")
        p = await as_.wait_presence(lambda e: e.findtext("{jabber:client}show") == "dnd", T)
        if pb == "pascal":
            check(as_.raw_of(p) == b"<presence><show>dnd</show><status>do not disturb</status></presence>",
                  "pascal status %r" % as_.raw_of(p))
            await as_.wait_presence(lambda e: e.findtext("{jabber:client}show") == "dnd", T)
        check(as_.remote_presence["show"] == "dnd" and as_.remote_presence["status"] == "do not disturb",
              "remote status")

        # ping both ways; purple resets the pinger to available
        check(await as_.send_ping(T), "a pings b")
        check(await bs.send_ping(T), "b pings a")
        if pa == "purple":
            check(as_.ping_resets == 1 and as_.remote_presence["show"] is None, "purple ping reset")
        if pb == "purple" and pa == "purple":
            check(bs.pings_received == 1, "pings received")

        # avatar: published, fetched over the pipe, hash per profile
        png = transcript_avatar()
        await a.publish_avatar(png)
        await bs.wait_until(lambda: bs.remote_avatar is not None, T, "avatar fetch")
        check(bs.remote_avatar == png, "avatar bytes")
        check(bs.remote_avatar_token == a.avatar_hash, "avatar token")
        want = bp.sha1hex(base64.b64encode(png)) if pa == "pascal" else bp.sha1hex(png)
        check(a.avatar_hash == want, "hash style")
        check(await bs.request_vcard(T) == png, "explicit vCard fetch")

        # a file each way
        small = b"# Network services, Internet style\n" * 85
        res = await as_.send_file("a2b.txt", small, T)
        check(res["ok"] and res["from_buddy"], "a2b send %r" % res)
        check(await b.wait_file(T) == ("a2b.txt", small), "a2b received")
        if pb == "purple":
            check(res["hash_ok"], "purple receiver hash")
        big = os.urandom(20000)
        res = await bs.send_file("b2a.bin", big, T)
        check(res["ok"], "b2a send %r" % res)
        check(await a.wait_file(T) == ("b2a.bin", big), "b2a received")

        # purple drops a body sent beside a chat state (BAREV.md §4)
        await as_.send_message("lost?", chatstate="active")
        await bs.send_message("sync")
        await as_.wait_message(T)             # order: alice's message arrived before this
        if pb == "purple":
            await bs.wait_until(lambda: bs.dropped_bodies, T, "dropped body")
            check(bs.dropped_bodies == ["lost?"], "purple dropped the body")
        else:
            body, _ = await bs.wait_message(T)
            check(body == "lost?", "pascal keeps the body")

        # close: purple sends </stream:stream>, pascal just closes
        await as_.close()
        reason = await bs.wait_closed(T)
        check(reason == ("stream-end" if pa == "purple" else "eof"), "close reason %r" % reason)
        check(bytes(bs.raw_in).endswith(b"</stream:stream>") == (pa == "purple"), "stream end bytes")
    finally:
        await a.stop()
        await b.stop()


# ------------------------------------------------------------ allowlist, quirks

async def raw_connect(src, dst, port=1337):
    sock = await bp._connect_from(src, dst, port, T)
    return await asyncio.open_connection(sock=sock)


async def t_unknown_ip():
    a = bp.Peer("alice", A_ADDR)
    a.add_buddy("bob", B_ADDR)
    await a.start()
    try:
        r, w = await raw_connect(C_ADDR, A_ADDR)
        check(await asyncio.wait_for(r.read(), T) == b"", "zero bytes from an unknown ip")
        w.close()
        check(a.rejected == [("201:3::3", "unknown ip")], "rejected %r" % a.rejected)
        check(a.sessions == [], "no session")
    finally:
        await a.stop()


async def t_pascal_silent_dial():
    """pascal dials without a header; once we (the 'gateway') send ours it
    answers with its header and two presences (BAREV.md §2)."""
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((A_ADDR, 1337))
    srv.listen(1)
    srv.setblocking(False)
    b = bp.Peer("bob", B_ADDR, profile="pascal")
    b.add_buddy("alice", A_ADDR)
    await b.start()
    try:
        loop = asyncio.get_running_loop()
        dial = loop.create_task(b.dial("alice", A_ADDR, send_header=False))
        conn, src = await asyncio.wait_for(loop.sock_accept(srv), T)
        check(src[0] == B_ADDR, "source address bound: %r" % (src,))
        bs = await dial
        check(not bs.up and not bs.header_sent, "silent")
        r, w = await asyncio.open_connection(sock=conn)
        w.write(bp.header_bytes("alice@201:1::1", "bob@201:2::2"))
        want = bp.header_bytes("bob@201:2::2", "alice@0201:0001::0001") + b"<presence></presence>" * 2
        got = await asyncio.wait_for(r.readexactly(len(want)), T)
        check(got == want, "pascal answer %r" % got)
        await bs.wait_up(T)
        w.close()
    finally:
        srv.close()
        await b.stop()


async def t_pascal_single_quoted_from():
    b = bp.Peer("bob", B_ADDR, profile="pascal")
    b.add_buddy("alice", A_ADDR)
    await b.start()
    try:
        r, w = await raw_connect(A_ADDR, B_ADDR)
        w.write(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' from='alice@201:1::1' to='bob@201:2::2'>")
        check(await asyncio.wait_for(r.read(), T) == b"", "pascal closes, sends nothing")
        w.close()
        s = b.all_sessions[0]
        check(s.close_reason == "pascal: empty from", "reason %r" % s.close_reason)
    finally:
        await b.stop()


async def t_pascal_drops_double_quoted_result():
    a = bp.Peer("alice", A_ADDR)
    b = bp.Peer("bob", B_ADDR, profile="pascal")
    a.add_buddy("bob", B_ADDR)
    b.add_buddy("alice", A_ADDR)
    await a.start()
    await b.start()
    try:
        as_ = await a.dial("bob", B_ADDR)
        bs = await b.wait_session("alice", T)
        await as_.send_raw('<iq type="result" id="v1" to="bob@201:2::2"><vCard xmlns="vcard-temp"/></iq>')
        await as_.send_raw("<presence type='unavailable'/>")
        await bs.wait_presence(timeout=T)
        check(len(bs.dropped_iqs) == 1, "dropped as pong")
        check(bs.remote_presence["available"], "single-quoted unavailable not seen by pascal")
        check(any("self-closing" in q for q in bs.quirks), "quirk recorded %r" % bs.quirks)
        await as_.send_raw('<presence type="unavailable"></presence>')
        await bs.wait_until(lambda: not bs.remote_presence["available"], T, "offline")
        # pascal's own offline is <show>offline</show>; purple reads it as offline
        await bs.send_presence(unavailable=True)
        p = await as_.wait_presence(lambda e: e.findtext("{jabber:client}show") == "offline", T)
        check(as_.raw_of(p) == b"<presence><show>offline</show></presence>", "pascal offline")
        check(not as_.remote_presence["available"], "purple sees offline")
    finally:
        await a.stop()
        await b.stop()


async def t_replacement_and_decline():
    """purple replaces a buddy's pipe on a new stream; pascal on a new
    accept; a declined offer is an iq error."""
    for prof in ("purple", "pascal"):
        a = bp.Peer("alice", A_ADDR, profile=prof, accept_files=False)
        b = bp.Peer("bob", B_ADDR)
        a.add_buddy("bob", B_ADDR)
        b.add_buddy("alice", A_ADDR)
        await a.start()
        await b.start()
        try:
            await b.dial("alice", A_ADDR)
            first = await a.wait_session("bob", T)
            bs2 = await b.dial("alice", A_ADDR)
            second = await a.wait_session("bob", T, exclude=(first,))
            reason = await first.wait_closed(T)
            check(reason.startswith("replaced"), "%s replaced: %r" % (prof, reason))
            res = await bs2.send_file("x.bin", b"12345", T)
            check(not res["ok"] and res["reason"] == "declined", "declined %r" % res)
            check(a.file_events and a.file_events[0][0] == "declined", "decline recorded")
            check(second.up, "second pipe up")
        finally:
            await a.stop()
            await b.stop()


async def t_purple_idle_ping():
    a = bp.Peer("alice", A_ADDR, ping_idle=0.2)
    b = bp.Peer("bob", B_ADDR, profile="pascal")
    a.add_buddy("bob", B_ADDR)
    b.add_buddy("alice", A_ADDR)
    await a.start()
    await b.start()
    try:
        await b.dial("alice", A_ADDR)
        bs = await b.wait_session("alice", T)
        el = await bs.wait_stanza(lambda e: bp.local(e.tag) == "iq" and e.get("type") == "get", T)
        check(re.fullmatch(rb"<iq type='get' id='ping-\d+-0' from='alice@201:1::1' to='bob@201:2::2'>"
                           rb"<ping xmlns='urn:xmpp:ping'/></iq>", bs.raw_of(el)), "purple ping %r" % bs.raw_of(el))
        # pascal's answer: single quotes, type to id, upper-case address
        await bs.wait_until(lambda: b"<iq type='result' to='alice@0201:0001::0001' id='%s'/>"
                            % el.get("id").encode() in bs.raw_out, T, "pong")
    finally:
        await a.stop()
        await b.stop()


# ------------------------------------------------------------ transcript replay

ADDR_MAP = [("0200:0001::0001", "0201:0001::0001"), ("0200:0002::0002", "0201:0002::0002"),
            ("200:1::1", "201:1::1"), ("200:2::2", "201:2::2")]
ID_RX = re.compile(r"((?:ping|vcard|chat|si|bs)-\d+-\d+|(?<=port=.)500\d\d)")


def transcript_stanzas(folder):
    """[(sender 'alice'|'bob', regex)] for every XMPP payload line but the
    headers; ids made of time+counter and data ports become wildcards."""
    out = []
    for name in sorted(os.listdir(folder)):
        sender = None
        for line in open(os.path.join(folder, name)):
            m = re.search(r"conn#\d+ xmpp \S+ (alice|bob)\(\w+\) -->", line)
            if m:
                sender = m.group(1)
            if not line.startswith("      | ") or line[8:].startswith(("<?xml", "<stream:stream")):
                continue
            s = line[8:].rstrip("\n")
            for old, new in ADDR_MAP:
                s = s.replace(old, new)
            parts = ID_RX.split(s)
            rx = "".join(re.escape(p) if i % 2 == 0 else
                         (r"500\d\d" if p[0].isdigit() else p.split("-")[0] + r"-\d+-\d+")
                         for i, p in enumerate(parts))
            out.append((sender, rx))
    return out


def transcript_socks(folder, phase):
    """(request, reply) bytes of the SOCKS5 exchange in a file phase."""
    path = [f for f in os.listdir(folder) if f.startswith(phase)][0]
    blobs, cur = [], None
    for line in open(os.path.join(folder, path)):
        if re.search(r"conn#\d+ data .* (47|15|27) bytes$", line.rstrip()):
            cur = bytearray()
            blobs.append(cur)
        elif cur is not None and re.match(r"      [0-9a-f]{4}  ", line):
            cur += bytes.fromhex(line[12:60].strip())
        else:
            cur = None
    req, rep = blobs
    return bytes(req), bytes(rep).replace(b"200:", b"201:")


async def replay(pa, pb):
    """Act out the recorded session (same texts, images, sizes) and demand
    that every recorded stanza comes out of the same side byte-for-byte
    (ids and data ports aside), as often as recorded."""
    folder = os.path.join(TRANSCRIPTS, "%s-%s" % (pa, pb))
    if pa == pb == "pascal":
        folder += "-pinned"
    path = os.path.join(TRANSCRIPTS, "purple-purple", "04-avatar.txt")
    img_a, img_b = [base64.b64decode(x) for x in re.findall(r"<BINVAL>([^<]*)</BINVAL>", open(path).read())]
    a = bp.Peer("alice", A_ADDR, profile=pa)
    b = bp.Peer("bob", B_ADDR, profile=pb)
    a.add_buddy("bob", B_ADDR)
    b.add_buddy("alice", A_ADDR)
    await a.start()
    await b.start()
    try:
        bs = await b.dial("alice", A_ADDR)
        as_ = await a.wait_session("bob", T)
        await as_.wait_until(lambda: len(as_.presences) == (2 if pb == "pascal" else 1), T, "presence")
        await bs.wait_until(lambda: len(bs.presences) == (2 if pa == "pascal" else 1), T, "presence")
        await as_.send_message("hello bob, this is alice")
        await bs.wait_message(T)
        await bs.send_message("hi alice <b>&amp; \"quotes\"</b> 'apos'")
        await as_.wait_message(T)
        await as_.send_chatstate("composing")
        await as_.send_chatstate("active")
        await bs.wait_chatstate("active", T)
        await bs.send_chatstate("composing")
        await as_.wait_chatstate("composing", T)
        await a.set_presence("away", "gone fishing")
        await bs.wait_until(lambda: bs.remote_presence["show"] == "away", T, "away")
        await b.set_presence("dnd", "do not disturb")
        await as_.wait_until(lambda: as_.remote_presence["show"] == "dnd", T, "dnd")
        await a.set_presence()
        await bs.wait_until(lambda: bs.remote_presence["show"] is None, T, "back")
        await a.publish_avatar(img_a)
        await bs.wait_until(lambda: bs.remote_avatar == img_a, T, "alice's avatar")
        await b.publish_avatar(img_b)
        await as_.wait_until(lambda: as_.remote_avatar == img_b, T, "bob's avatar")
        text = (b"# Network services, Internet style\n" * 100)[:3000]
        res_a = await as_.send_file("a2b.txt", text, T)
        await b.wait_file(T)
        f_b = b.files[0]
        res_b = await bs.send_file("b2a.bin", os.urandom(20000), T)
        await a.wait_file(T)
        check(await as_.send_ping(T) and await bs.send_ping(T), "pings")
        await as_.close()
        await bs.wait_closed(T)
        await as_.wait_until(lambda: bs.closed, T)

        for who, sess in (("alice", as_), ("bob", bs)):
            want = [rx for s, rx in transcript_stanzas(folder) if s == who]
            sent = bytes(sess.raw_out).decode()
            for rx in sorted(set(want)):
                n = len(re.findall(rx, sent))
                check(n == want.count(rx), "%s sent %d× (recorded %d×): %s\n  in: %s"
                      % (who, n, want.count(rx), rx, sent))
        # SOCKS5 bytes: requests carry the profile's hash, replies are verbatim
        req, rep = transcript_socks(folder, "05")
        check(res_a["socks_request"][:5] == req[:5] and res_a["socks_request"][-2:] == req[-2:], "socks req")
        initiator = "alice@0201:0001::0001" if pb == "pascal" else "alice@201:1::1"
        check(res_a["hash"] == bp.sha1hex(res_a["sid"] + initiator + "bob@201:2::2"), "receiver hash")
        check(f_b["socks_reply"] == rep, "socks reply %r vs %r" % (f_b["socks_reply"], rep))
        req, rep = transcript_socks(folder, "06")
        check(a.files[0]["socks_reply"] == rep, "socks reply b2a")
        check(res_b["ok"] and len(res_b["socks_request"]) == 47, "b2a request")
    finally:
        await a.stop()
        await b.stop()


async def t_cli_avatar():
    """The CLI's `avatar PATH|none`, as a person types it: alice (in
    process) sees bob's presence hash and fetches the PNG; `none` withdraws
    it; a bad path or a non-PNG is refused with a reason."""
    import hashlib
    import tempfile
    png = transcript_avatar()
    if not png.startswith(bp.PNG_MAGIC):
        png = bp.PNG_MAGIC + png                # the stand-in gets a PNG signature
    tmp = tempfile.mkdtemp(prefix="barevpeer-avatar-")
    path = os.path.join(tmp, "my avatar.png")
    with open(path, "wb") as f:
        f.write(png)
    with open(os.path.join(tmp, "not.png"), "wb") as f:
        f.write(b"GIF89a")
    a = bp.Peer("alice", A_ADDR)
    a.add_buddy("bob", B_ADDR)
    await a.start()
    cli = await asyncio.create_subprocess_exec(
        sys.executable, os.path.join(HERE, "barevpeer.py"), "--nick", "bob", "--addr", B_ADDR,
        "--buddy", "alice@" + A_ADDR, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)

    async def line_with(prefix):
        while True:
            ln = (await asyncio.wait_for(cli.stdout.readline(), T)).decode()
            check(ln, "the CLI ended before printing %r" % prefix)
            if ln.startswith(prefix):
                return ln.strip()

    async def say(cmd):
        cli.stdin.write(cmd.encode() + b"\n")
        await cli.stdin.drain()
    try:
        await line_with("listening on")
        s = await a.dial("bob", B_ADDR, timeout=T)
        await say("avatar " + path)
        out = await line_with("avatar:")
        want = hashlib.sha1(png).hexdigest()
        check(want in out and str(len(png)) in out, "the CLI reports the hash: %r" % out)
        await a.wait_until(lambda: s.remote_presence.get("photo") == want and s.remote_avatar == png,
                           T, "alice sees bob's avatar hash and fetches the PNG")
        await say("avatar none")
        check("none" in await line_with("avatar:"), "the CLI confirms the withdrawal")
        await a.wait_until(lambda: s.remote_presence.get("photo") == "", T,
                           "an empty <photo/> withdraws it")
        check(await s.request_vcard() is None, "the vCard has no photo any more")
        await say("avatar " + os.path.join(tmp, "missing.png"))
        check("cannot read" in await line_with("avatar:"), "a missing file is named")
        await say("avatar " + os.path.join(tmp, "not.png"))
        check("not a PNG" in await line_with("avatar:"), "a non-PNG is refused")
        await say("quit")
        check(await asyncio.wait_for(cli.wait(), T) == 0, "the CLI exits 0 on quit")
    finally:
        if cli.returncode is None:
            cli.kill()
            await cli.wait()
        await a.stop()


async def main():
    await scenario("formats", t_formats)
    await scenario("streaming parser", t_parser)
    for pa, pb in (("purple", "purple"), ("purple", "pascal"), ("pascal", "purple"), ("pascal", "pascal")):
        await scenario("pair alice=%s bob=%s" % (pa, pb), lambda: pair(pa, pb))
    if os.path.isdir(TRANSCRIPTS):
        for pa, pb in (("purple", "purple"), ("purple", "pascal"), ("pascal", "purple"), ("pascal", "pascal")):
            await scenario("transcript replay %s-%s" % (pa, pb), lambda: replay(pa, pb))
    elif os.environ.get("CI") == "true":
        # CI checks the shared folder out beside the repository: its
        # absence there is a broken set-up, not a reason to test less
        failures.append("transcripts")
        print("FAIL transcript replays: %s not found (CI=true)" % TRANSCRIPTS, flush=True)
    else:
        skipped.append("transcripts")
        print("SKIP transcript replays and the recorded avatar: %s not found"
              " (set BAREV_TRANSCRIPTS)" % TRANSCRIPTS, flush=True)
    await scenario("unknown ip closed with zero bytes", t_unknown_ip)
    await scenario("pascal silent dial", t_pascal_silent_dial)
    await scenario("pascal: single-quoted header from", t_pascal_single_quoted_from)
    await scenario("pascal: double-quoted result dropped, presence quirks", t_pascal_drops_double_quoted_result)
    await scenario("replacement and declined file", t_replacement_and_decline)
    await scenario("purple idle ping", t_purple_idle_ping)
    await scenario("CLI: avatar PATH|none", t_cli_avatar)
    print("%d failure(s)%s" % (len(failures),
          ", %d skipped" % len(skipped) if skipped else ""))
    if failures:
        return 1
    return SKIP_EXIT if skipped else 0


if __name__ == "__main__":
    netns.enter([A_ADDR, B_ADDR, C_ADDR])    # re-execs under unshare -n first
    sys.exit(asyncio.run(main()))
