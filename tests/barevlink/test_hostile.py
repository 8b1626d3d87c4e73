#!/usr/bin/python3
"""Hostile input (BAREV.md §7): malformed XML, a 10 MB stanza, a depth bomb,
an entity declaration or reference each close only the pipe they came on
(pipe_down with the reason, redialled later when wanted), while the daemon
and a second peer's pipe carry on; EOF without </stream:stream>, a second
</stream:stream> and junk after it are tolerated.  The driver runs under
ASan/UBSan in CI and must exit clean."""

from bldrv import Driver, run, raw_connect, read_until_closed, bp

GW, BOB, CAROL = "201:1::1", "201:2::2", "201:3::3"

ATTACKS = [
    ("malformed", [b"<message><body>x</message>"], "xml"),
    ("10 MB stanza", [b"<message><body>"] + [b"A" * 65536] * 160, "big"),
    ("depth bomb", [b"<a>" * 100000], "deep"),
    ("entity reference", [b"<message><body>&lol;</body></message>"], ""),
    ("doctype in stream", [b'<!DOCTYPE x [<!ENTITY lol "lol">]><message/>'], ""),
    ("not UTF-8", [b"<message><body>\xff\xfe</body></message>"], ""),
]


async def alive(d, carol_s, n):
    st = await d.stats()
    assert st["pipes_up"] >= 1, st
    await d.msg(20, "still here %d" % n)
    body, _ = await carol_s.wait_message()
    assert body == "still here %d" % n, body


async def main():
    d = await Driver(pace=0, max_stanza=262144, max_depth=16).start()
    bob = await bp.Peer("bob", BOB, profile="purple").start()
    carol = await bp.Peer("carol", CAROL, profile="pascal").start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        await d.cmd("contact 1 20 carol %s 0" % CAROL)
        cs = await carol.dial("alice", GW)
        await d.wait("pipe_up 1 20")

        for n, (name, chunks, why) in enumerate(ATTACKS):
            s = await bob.dial("alice", GW)
            await d.wait("pipe_up 1 10")
            try:
                for c in chunks:
                    await s.send_raw(c)
            except (ConnectionError, OSError):
                pass                        # we closed while it wrote
            l = await d.wait("pipe_down 1 10", 10, name)
            print("%-18s -> %s" % (name, l))
            await s.wait_closed()
            await alive(d, cs, n)

        # an entity declaration before the stream header
        s = await raw_connect(BOB, GW)
        s.send(b'<?xml version="1.0"?><!DOCTYPE stream:stream [<!ENTITY a "aaaa">'
               b'<!ENTITY b "&a;&a;&a;&a;">]>' + bp.header_bytes("bob@" + BOB, "alice@" + GW)[21:])
        got = await read_until_closed(s)
        s.close()
        assert b"<presence" not in got, got
        assert not d.seen("pipe_up 1 10")[len(ATTACKS):], d.events

        # closes we tolerate: EOF without </stream:stream>, a second one, junk
        for tail in (b"", b"</stream:stream></stream:stream>junk<<<&&"):
            s = await bob.dial("alice", GW)
            await d.wait("pipe_up 1 10")
            await s.send_raw(b"<message to='alice@201:1::1' type='chat'><body>hi</body></message>" + tail)
            await s.close(send_stream_end=False)
            await d.wait("pipe_down 1 10")
            await alive(d, cs, 100 + len(tail))

        # wanted contacts are redialled after a hostile close
        await d.cmd("want 10 1")
        s = await bob.wait_session("alice")
        await d.wait("pipe_up 1 10")
        mark = len(d.events)
        await s.send_raw(b"<message><<<" + b" " * 200 + b"</message>")
        await d.wait("pipe_down 1 10", since=mark)
        s2 = await bob.wait_session("alice", exclude=(s,))
        await d.wait("pipe_up 1 10", since=mark)
        assert s2.inbound, s2
        await alive(d, cs, 999)
    finally:
        await bob.stop()
        await carol.stop()
        await d.stop()


if __name__ == "__main__":
    run(main, [GW, BOB, CAROL])
