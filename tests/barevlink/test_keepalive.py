#!/usr/bin/python3
"""Keepalive (BAREV.md §5): pings from the peer are answered single-quoted
with the same id (urn:xmpp:ping and urn:yggb:ping); after ping_idle of
silence we ping, and when we are away we re-send our presence after the
ping (purple resets us to available); bl_ping's cookie comes back as
ping_done; ping results never reach the gateway; a peer that goes silent is
offline after ping_idle + misses x ping_timeout, reported as a cut
(pipe_cut before pipe_down): the driver's log shows each
miss with the timeout it waited, the pipe_down says how many, and the time
measured here is only bounded below (a slow machine is later, not wrong)."""
import asyncio

from bldrv import Driver, run, bp

GW, BOB = "201:1::1", "201:2::2"


async def scenario(profile):
    d = await Driver(ping_idle=400, ping_timeout=300, ping_misses=2,
                     pace=5, log_level="debug").start()
    bob = await bp.Peer("bob", BOB, profile=profile).start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        s = await bob.dial("alice", GW)
        await d.wait("pipe_up 1 10")

        # answering: same id, single quotes, from/to
        for ns in ("urn:xmpp:ping", "urn:yggb:ping"):
            await s.send_raw("<iq type='get' id='p-%s' from='bob@%s' to='alice@%s'>"
                             "<ping xmlns='%s'/></iq>" % (ns[4:8], BOB, GW, ns))
            want = ("<iq type='result' id='p-%s' from='alice@201:1::1' "
                    "to='bob@201:2::2'/>" % ns[4:8]).encode()
            await s.wait_until(lambda: want in bytes(s.raw_in), 3, "pong")
        assert await s.send_ping(timeout=3)

        # our keepalive pings, answered by the peer: the pipe stays up
        n0 = s.pings_received
        await s.wait_until(lambda: s.pings_received >= n0 + 2, 5, "our pings")
        assert (await d.cmd("state 10")) == "ok state up"

        # away: presence again after each ping
        await d.cmd("presence 1 available away gone fishing")
        await s.wait_presence(lambda el: el.findtext("{jabber:client}show") == "away")
        n0, p0 = s.pings_received, len(s.presences)
        await s.wait_until(lambda: s.pings_received > n0 and
                           len(s.presences) > p0, 5, "presence after ping")
        raw = bytes(s.raw_in)
        i = raw.rindex(b"urn:xmpp:ping")
        assert raw.find(b"<show>away</show><status>gone fishing</status>", i) > i, raw[i:]

        # bl_ping -> ping_done with the cookie
        await d.cmd("ping 10 4242")
        await d.wait("ping_done 1 10 4242 1")

        # no ping result ever reached the gateway
        assert not [l for l in d.seen("stanza") if "<iq" in l], d.seen("stanza")

        # bob goes silent (stops reading and answering): offline in time
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for t in list(s._tasks):
            t.cancel()
        l = await d.wait("pipe_down 1 10", 15)
        dt = loop.time() - t0
        assert "no answer to 2 pings" in l, l
        # a cut, not a close: the gateway is told before pipe_down that
        # nothing proves bob read what was written (it requeues that)
        ev = d.events
        assert "pipe_cut 1 10" in ev and \
            ev.index("pipe_cut 1 10") < ev.index(l), ev[-6:]
        log = d.log_text()
        for n in (1, 2):
            want = ("bob@201:2::2: ping %d of 2 unanswered after 300 ms"
                    " (pinged after 400 ms idle)" % n)
            assert want in log, (want, log[-2000:])
        # idle 400 ms, then two misses of 300 ms; libevent's cached loop
        # time may fire a timer a few ms early
        assert dt >= 0.9, dt
        print("%s: silent peer offline after %.2fs" % (profile, dt))
    finally:
        await bob.stop()
        await d.stop()


async def main():
    for profile in bp.PROFILES:
        await scenario(profile)


if __name__ == "__main__":
    run(main, [GW, BOB])
