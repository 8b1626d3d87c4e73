#!/usr/bin/python3
"""The peers' quirks (BAREV.md §2-4, §7):
- pascal's silent connect: it loses its own header, so after
  silent_initiator_ms we send ours first and the pipe comes up;
- pascal's upper-case zero-padded `to`/`from` address and an upper-case nick
  are matched numerically / case-insensitively;
- chat states go out as body-less messages, never beside a body (purple
  would drop the body); "paused" is <paused/> then <active/>;
- a burst of messages to pascal arrives one stanza per read (paced)."""
import asyncio

from bldrv import Driver, run, raw_connect, bp

GW, BOB = "201:1::1", "201:2::2"
CS = "http://jabber.org/protocol/chatstates"


async def silent_connect(d):
    bob = await bp.Peer("bob", BOB, profile="pascal").start()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        s = await bob.dial("alice", GW, send_header=False, wait=False)
        await s.wait_up(5)
        dt = loop.time() - t0
        await d.wait("pipe_up 1 10")
        # we held our header for silent_initiator (400 ms); libevent arms
        # the timer from its cached loop time, so it may fire a few ms
        # before 400 ms of wall time have passed since the dial.  That it
        # was this timer that sent it (no upper bound on a slow machine):
        assert 0.3 <= dt, dt
        log = d.log_text()
        assert "bob@201:2::2 silent after connecting: header first" in log, log[-2000:]
        assert bytes(s.raw_in).startswith(bp.header_bytes("alice@" + GW, "bob@" + BOB))
        # its header, sent after ours, was identified: messages flow
        await s.send_message("silent no more")
        m = await d.stanza("message")
        assert "silent no more" in "".join(m.itertext())
        await s.close()
        await d.wait("pipe_down 1 10")
        print("silent pascal connect: up after %.2fs" % dt)
    finally:
        await bob.stop()


async def padded_addresses(d):
    s = await raw_connect(BOB, GW)
    s.send(bp.header_bytes("BOB@0201:0002:0000:0000:0000:0000:0000:0002",
                           "ALICE@0201:0001::0001"))
    loop = asyncio.get_running_loop()
    data = b""
    while b"</presence>" not in data:
        data += await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
    await d.wait("pipe_up 1 10")
    # we always emit RFC 5952 form
    assert data.startswith(bp.header_bytes("alice@201:1::1", "bob@201:2::2")), data
    s.close()
    await d.wait("pipe_down 1 10")


async def chatstates(d, profile):
    bob = await bp.Peer("bob", BOB, profile=profile).start()
    try:
        s = await bob.dial("alice", GW)
        await d.wait("pipe_up 1 10")
        await d.cmd("chatstate 10 composing")
        await d.msg(10, "hello")
        await d.cmd("chatstate 10 paused")
        await s.wait_until(lambda: len(s.chatstates) >= 3 and s.messages, 5,
                           "states and message")
        assert [c for c, _ in s.chatstates] == ["composing", "paused", "active"], s.chatstates
        body, el = s.messages[0]
        assert body == "hello"
        assert not any(c.tag.startswith("{%s}" % CS) for c in el), s.raw_of(el)
        assert not s.dropped_bodies and not s.quirks, (s.dropped_bodies, s.quirks)
        raw = bytes(s.raw_in)
        assert (b'<message to="bob@201:2::2" from="alice@201:1::1" type="chat">'
                b"<composing xmlns='http://jabber.org/protocol/chatstates'/></message>") in raw
        # a burst: one stanza per read at pascal (it mis-frames otherwise)
        toks = [await d.msg(10, "burst %d" % i) for i in range(8)]
        await s.wait_until(lambda: len(s.messages) >= 9, 5, "burst")
        assert [b for b, _ in s.messages[1:]] == ["burst %d" % i for i in range(8)]
        for t in toks:
            await d.wait("sent 1 10 %d" % t)
        if profile == "pascal":
            assert s.multi_stanza_reads == 0, s.multi_stanza_reads
        await s.close()
        await d.wait("pipe_down 1 10")
    finally:
        await bob.stop()


async def main():
    d = await Driver(silent_initiator=400, pace=20, log_level="debug").start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        await silent_connect(d)
        await padded_addresses(d)
        for profile in bp.PROFILES:
            await chatstates(d, profile)
            print("chat states ok:", profile)
    finally:
        await d.stop()


if __name__ == "__main__":
    run(main, [GW, BOB])
