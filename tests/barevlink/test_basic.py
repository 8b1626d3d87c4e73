#!/usr/bin/python3
"""bob dials alice's gateway identity, and alice's identity dials bob: the
stream comes up, presence goes both ways, and a message each way keeps
& < > " ' and non-ASCII text intact — against both Barev profiles."""
from bldrv import Driver, TEXT, body_of, run, bp

GW, BOB = "201:1::1", "201:2::2"

HEADER = ('<?xml version="1.0" encoding="UTF-8" ?>\n<stream:stream '
          'xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" '
          'from="alice@201:1::1" to="bob@201:2::2">').encode()
PRESENCE = (b'<presence><x xmlns="vcard-temp:x:update"><photo></photo></x>'
            b'</presence>')


async def exchange(d, s, profile):
    """presence both ways, then a message each way, on an up session"""
    el = await s.wait_presence()
    assert s.raw_of(el) == PRESENCE, s.raw_of(el)
    assert bytes(s.raw_in).startswith(HEADER), bytes(s.raw_in[:300])
    await d.stanza("presence")

    await s.send_message(TEXT)
    m = await d.stanza("message")
    assert body_of(m) == TEXT, (body_of(m), d.events)

    tok = await d.msg(10, TEXT)
    body, el = await s.wait_message()
    assert body == TEXT, body
    raw = s.raw_of(el)
    assert raw.startswith(b'<message to="bob@201:2::2" from="alice@201:1::1" '
                          b'type="chat"><body>'), raw
    assert raw.endswith(b"</body></message>"), raw
    assert "ñ 日本 ✓ բարև".encode() in raw          # raw UTF-8, no char refs
    await d.wait("sent 1 10 %d" % tok)
    assert not s.dropped_bodies and not s.quirks, (s.dropped_bodies, s.quirks)


async def scenario(profile):
    d = await Driver(pace=5, backoff_min=50).start()
    bob = await bp.Peer("bob", BOB, profile=profile).start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.wait("listener 201:1::1 1337 ok")
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        bob.add_buddy("alice", GW)

        # bob dials alice
        s = await bob.dial("alice", GW)
        await d.wait("pipe_up 1 10")
        await exchange(d, s, profile)
        await s.close()
        await d.wait("pipe_down 1 10")
        assert (await d.cmd("state 10")) == "ok state none"

        # alice dials bob, from her own address
        await d.cmd("want 10 1")
        s = await bob.wait_session("alice")
        assert s.inbound and s.remote_addr == GW, s
        await d.wait("pipe_up 1 10")
        await exchange(d, s, profile)
        assert (await d.cmd("state 10")) == "ok state up"

        # going offline: unavailable, then </stream:stream>, then close
        await d.cmd("presence 1 unavailable")
        await s.wait_closed()
        assert bytes(s.raw_in).endswith(
            b'<presence type="unavailable"></presence></stream:stream>'), bytes(s.raw_in[-200:])
        assert not s.remote_presence["available"]
        await d.wait("pipe_down 1 10")
    finally:
        await bob.stop()
        await d.stop()


async def main():
    for profile in bp.PROFILES:
        await scenario(profile)
        print("ok", profile)


if __name__ == "__main__":
    run(main, [GW, BOB])
