#!/usr/bin/python3
"""Who gets in (BAREV.md §2): a connection from an address no contact has is
closed before a byte is read — the client's bytes go unread (so its kernel
sees a reset: data was still queued at the close), nothing is sent, no pipe
is made (the `accepted` counter stays 0), no pipe event, only the
rejected_unknown counter moves, and a flood of them costs no memory; a known address with the wrong nick is closed without our
header; a silent allowlisted initiator gets our header after
silent_initiator_ms and is closed at the header timeout."""
import asyncio
import re
import signal

from bldrv import (Driver, run, raw_connect, read_until_closed, close_kind,
                   wait_unread, bp)

GW, BOB, EVIL = "201:1::1", "201:2::2", "201:9::9"


async def main():
    d = await Driver(header_timeout=1500, silent_initiator=400,
                     log_level="debug").start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.cmd("contact 1 10 bob %s 0" % BOB)

        # unknown source address, even with bob's own header (the address
        # is what the allowlist is made of): closed before a read.  The
        # driver is stopped while the stranger connects and writes, so its
        # bytes are certainly queued when the accept runs: closing them
        # unread makes the kernel send a reset, where reading them first
        # (a pipe, a parser) would end in an orderly FIN.
        hdr = bp.header_bytes("bob@%s" % BOB, "alice@%s" % GW)
        d.proc.send_signal(signal.SIGSTOP)
        try:
            s = await raw_connect(EVIL, GW)
            s.send(hdr)
            await wait_unread(1337, s.getsockname()[1], len(hdr))
        finally:
            d.proc.send_signal(signal.SIGCONT)
        how, got = await close_kind(s)
        s.close()
        assert got == b"", got
        assert how == "reset", "stranger's bytes were read before the close: %s" % how
        st = await d.stats()
        assert st["rejected_unknown"] == 1, st
        assert st["accepted"] == 0, st
        assert st["pipes_handshake"] == 0 and st["pipes_up"] == 0, st

        # a flood of strangers: no reads, no memory growth
        rss0 = int((await d.cmd("rss")).split()[2])
        n = 2000
        for i in range(0, n, 200):
            socks = []
            for _ in range(200):
                c = await raw_connect(EVIL, GW)
                c.send(b"<stream:stream>" * 10)
                socks.append(c)
            for c in socks:
                await read_until_closed(c)
                c.close()
        st = await d.stats()
        assert st["rejected_unknown"] == 1 + n, st
        assert st["accepted"] == 0, st
        rss1 = int((await d.cmd("rss")).split()[2])
        assert rss1 - rss0 < 512, (rss0, rss1)
        print("flood of %d: rss %d -> %d KiB" % (n, rss0, rss1))

        # known address, wrong nick: read (a pipe), closed, nothing sent
        s = await raw_connect(BOB, GW)
        s.send(bp.header_bytes("mallory@%s" % BOB, "alice@%s" % GW))
        got = await read_until_closed(s)
        s.close()
        assert got == b"", got
        assert (await d.stats())["accepted"] == 1

        # silent initiator: our header after 400 ms, closed at 1.5 s by
        # the header timeout (the driver's log says which timer closed
        # it; only the lower bound is timed: a slow machine is later)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        s = await raw_connect(BOB, GW)
        got = await read_until_closed(s, timeout=15)
        dt = loop.time() - t0
        s.close()
        assert got.startswith(bp.header_bytes("alice@%s" % GW, "bob@%s" % BOB)), got
        assert dt > 1.2, dt
        log = d.log_text()
        assert re.search(r"bob@201:2::2 silent after connecting: header first", log), log
        assert re.search(r"\[201:2::2\] inbound closed: header timeout", log), log
        assert not d.seen("pipe_"), d.events
        st = await d.stats()
        assert st["pipes_handshake"] == 0, st
        assert st["accepted"] == 2 and st["rejected_unknown"] == 1 + n, st
    finally:
        await d.stop()


if __name__ == "__main__":
    run(main, [GW, BOB, EVIL])
