#!/usr/bin/python3
"""A graceful stop (bl_shutdown): each up pipe gets unavailable presence and
</stream:stream>, then the gateway keeps reading until the peer closes or
the drain time ends — and writes nothing after its </stream:stream>, not
even the answer to a ping that arrives meanwhile (BAREV.md §2).  A peer
that closes after our goodbye read everything: no pipe_cut; nor is a drain
that ends otherwise (here: a ping we may not answer) a cut."""
import asyncio

from bldrv import Driver, run, raw_connect, read_until_closed, bp

GW, BOB = "201:1::1", "201:2::2"
END = b"</stream:stream>"


async def up_pipe(d):
    """bob's inbound pipe, up; (socket, bytes read so far)"""
    await d.cmd("ident 1 alice %s 0" % GW)
    await d.cmd("contact 1 10 bob %s 0" % BOB)
    s = await raw_connect(BOB, GW)
    s.send(bp.header_bytes("bob@" + BOB, "alice@" + GW))
    loop = asyncio.get_running_loop()
    data = b""
    while b"</presence>" not in data:
        data += await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
    await d.wait("pipe_up 1 10")
    return s, data


async def peer_closes_after_goodbye():
    """bob answers our </stream:stream> with his: he read everything we
    wrote before it, so the pipe is not reported cut (the gateway keeps
    no unconfirmed message for a resend)."""
    d = await Driver().start()
    try:
        s, data = await up_pipe(d)
        loop = asyncio.get_running_loop()
        await d.cmd("shutdown")
        while END not in data:
            data += await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
        s.send(END)
        s.close()
        await d.wait("pipe_down 1 10", 10)
        assert not d.seen("pipe_cut"), d.events[-6:]
    finally:
        await d.stop()


async def main():
    await peer_closes_after_goodbye()
    d = await Driver().start()
    try:
        s, data = await up_pipe(d)
        loop = asyncio.get_running_loop()
        await d.cmd("shutdown")
        while END not in data:
            data += await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
        assert b'<presence type="unavailable">' in data, data
        # bob pings after the goodbye; the pipe is still read (drain)...
        s.send(b"<iq type='get' id='after-bye' to='alice@%s' from='bob@%s'>"
               b"<ping xmlns='urn:xmpp:ping'/></iq>" % (GW.encode(), BOB.encode()))
        data += await read_until_closed(s, timeout=10)
        s.close()
        await d.wait("pipe_down 1 10", 10)
        # a drain that ends without an error is no cut: what we wrote may
        # still reach bob (a normal close, not a reset)
        assert not d.seen("pipe_cut"), d.events[-6:]
        # ...but nothing follows our </stream:stream>
        tail = data[data.index(END) + len(END):]
        assert tail == b"", tail
    finally:
        await d.stop()


if __name__ == "__main__":
    run(main, [GW, BOB])
