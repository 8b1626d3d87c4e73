#!/usr/bin/python3
"""Identities and listeners (BAREV.md §1-2, DESIGN.md "Addresses"):
two identities on one address share a listener and the header's `to` picks
the one that answers; identities on different addresses dial from their own
address (the peer sees it as the source); a listener that cannot bind is an
error visible in events and stats, retried until the port is free, never a
silent fallback; an address the host does not have yet still binds
(IPV6_FREEBIND)."""
import asyncio
import socket

from bldrv import Driver, run, raw_connect, read_until_closed, bp

GW, GW2, BOB, MISSING = "201:1::1", "201:3::3", "201:2::2", "201:7::7"


async def main():
    d = await Driver(pace=5).start()
    bob = await bp.Peer("bob", BOB, profile="purple").start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.cmd("ident 2 carol %s 0" % GW)
        await d.cmd("ident 3 dave %s 0" % GW2)
        await d.wait("listener 201:1::1 1337 ok")
        await d.wait("listener 201:3::3 1337 ok")
        for i, c in ((1, 10), (2, 20), (3, 30)):
            await d.cmd("contact %d %d bob %s 0" % (i, c, BOB))
        st = await d.stats()
        assert st["listeners"] == 2 and st["listeners_failed"] == 0, st

        # one address, two identities: `to` decides
        s = await bob.dial("carol", GW)
        await d.wait("pipe_up 2 20")
        assert s.remote_header["from"] == "carol@201:1::1", s.remote_header
        s2 = await bob.dial("alice", GW)
        await d.wait("pipe_up 1 10")
        assert s2.remote_header["from"] == "alice@201:1::1", s2.remote_header
        await d.msg(20, "to bob from carol")
        body, _ = await s.wait_message()
        assert body == "to bob from carol"
        await s.close()
        await s2.close()
        await d.wait("pipe_down 2 20")
        await d.wait("pipe_down 1 10")

        # dials leave from the identity's own address
        bob.add_buddy("alice", GW)
        bob.add_buddy("dave", GW2)
        await d.cmd("want 30 1")
        s = await bob.wait_session("dave")
        assert s.inbound and s.remote_addr == GW2, s
        await d.wait("pipe_up 3 30")
        await d.cmd("want 10 1")
        s = await bob.wait_session("alice")
        assert s.inbound and s.remote_addr == GW, s
        await d.wait("pipe_up 1 10")

        # a port already taken: an error, visible, no fallback
        await d.cmd("ident 4 eve %s 1337" % BOB)
        l = await d.wait("listener 201:2::2 1337")
        assert l.startswith("listener 201:2::2 1337 fail Address already in use"), l
        st = await d.stats()
        assert st["listeners"] == 2 and st["listeners_failed"] == 1, st
        await d.cmd("listeners")
        assert any(x.startswith("listener 201:2::2 1337 fail") for x in d.events[-3:]), d.events

        # a port held by another program: retried until it is free
        blocker = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        blocker.bind((BOB, 1338))
        blocker.listen(1)
        await d.cmd("ident 6 gina %s 1338" % BOB)
        l = await d.wait("listener 201:2::2 1338")
        assert l.startswith("listener 201:2::2 1338 fail Address already in use"), l
        blocker.close()
        await d.wait("listener 201:2::2 1338 ok", 10)
        st = await d.stats()
        assert st["listeners"] == 3 and st["listeners_failed"] == 1, st
        await d.cmd("remove-ident 6")

        # an address the host lacks: FREEBIND binds it anyway
        await d.cmd("ident 5 frank %s 0" % MISSING)
        await d.wait("listener 201:7::7 1337 ok")

        # removing an identity closes its pipes and its listener
        await d.cmd("remove-ident 3")
        await d.wait("pipe_down 3 30")
        await d.cmd("remove-ident 4")
        st = await d.stats()
        assert st["listeners"] == 2 and st["listeners_failed"] == 0, st
    finally:
        await bob.stop()
        await d.stop()


async def identity_removed_during_a_handshake():
    """A silent initiator got alice's header (three identities share the
    listener); alice's identity is removed before bob's header comes: his
    connection is closed with her, and his late header finds nothing."""
    d = await Driver(silent_initiator=200).start()
    try:
        for i, nick in ((1, "alice"), (2, "carol"), (4, "erin")):
            await d.cmd("ident %d %s %s 0" % (i, nick, GW))
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        s = await raw_connect(BOB, GW)
        loop = asyncio.get_running_loop()
        data = b""
        while b"alice@" not in data:
            data += await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
        await d.cmd("remove-ident 1")
        try:
            s.send(bp.header_bytes("bob@" + BOB, "nobody@" + GW))
        except OSError:
            pass                        # already closed: fine
        data += await read_until_closed(s, timeout=5)
        s.close()
        assert not d.seen("pipe_up"), d.events
        st = await d.stats()
        assert st["pipes_up"] == 0 and st["pipes_handshake"] == 0, st
    finally:
        await d.stop()


async def all_cases():
    await main()
    await identity_removed_during_a_handshake()

if __name__ == "__main__":
    run(all_cases, [GW, GW2, BOB])
