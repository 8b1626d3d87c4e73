#!/usr/bin/python3
"""One pipe per pair (BAREV.md §2): both sides dial at the same moment, many
times over; each round ends with exactly one up pipe on each side — the
same TCP connection, proven by a message each way — never two and never
none, for both profiles (purple replaces on a new stream, pascal on a new
accept)."""
import asyncio

from bldrv import Driver, run, bp

GW, BOB = "201:1::1", "201:2::2"
ROUNDS = 15


async def settle(d, bob, rnd):
    """wait until both sides agree on one pipe, then prove it carries data"""
    def one():
        up = [s for s in bob.sessions if s.up and not s.closed]
        return up[0] if len(up) == 1 else None
    for attempt in range(4):
        s = await bob.wait_until(one, 10, "one session (round %d)" % rnd)
        mark = len(d.events)
        if (await d.cmd("state 10")) != "ok state up":
            await d.wait("pipe_up 1 10", 10, "pipe_up", since=mark)
            continue
        text = "round %d" % rnd
        await d.msg(10, text)
        try:
            body, _ = await s.wait_message(timeout=3)
        except TimeoutError:
            continue                        # that session lost the race
        assert body == text, body
        await s.send_message("back " + text)
        await d.wait(lambda l: l.startswith("stanza 1 10 <message") and
                     ("back " + text) in l, 3, "message back")
        st = await d.stats()
        assert st["pipes_up"] == 1 and st["dials"] == 0, st
        up = [x for x in bob.sessions if x.up and not x.closed]
        assert up == [s], up
        return s
    raise AssertionError("round %d did not settle: %r" % (rnd, bob.sessions))


async def scenario(profile):
    d = await Driver(pace=0, backoff_min=20, backoff_max=200).start()
    bob = await bp.Peer("bob", BOB, profile=profile).start()
    try:
        await d.cmd("ident 1 alice %s 0" % GW)
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        bob.add_buddy("alice", GW)
        for rnd in range(ROUNDS):
            async def peer_dial():
                try:
                    await bob.dial("alice", GW, timeout=5)
                except (ConnectionError, TimeoutError, OSError):
                    pass                    # our side kept its own dial
            await asyncio.gather(d.cmd("want 10 1"), peer_dial())
            s = await settle(d, bob, rnd)
            # tear down: we stop wanting, bob closes; wait for the down
            await d.cmd("want 10 0")
            await s.close()
            await bob.wait_until(lambda: not any(x.up for x in bob.sessions),
                                 10, "bob idle")
            while (await d.stats())["pipes_up"] != 0:
                await d.wait("pipe_down 1 10", 10)
        ups = len(d.seen("pipe_up 1 10"))
        print("%s: %d rounds, %d pipe_up events" % (profile, ROUNDS, ups))
    finally:
        await bob.stop()
        await d.stop()


async def main():
    for profile in bp.PROFILES:
        await scenario(profile)


if __name__ == "__main__":
    run(main, [GW, BOB])
