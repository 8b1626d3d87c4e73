#!/usr/bin/python3
"""Dials and presence as a peer sees them (issue 13):
- our presence goes to a pipe only when it changed: the gateway republishes
  on every resource change, and a peer must not get the same presence again;
- going offline closes the pipes by our choice: the redial that the close
  scheduled (and the gateway cancels) must not raise the backoff, so the
  first failed dial after coming back waits backoff_min, not twice that;
- outgoing dials in flight never exceed max_dials, and the free slots go
  round robin across identities, so one identity with many contacts does
  not starve the others."""
import asyncio
import socket

from bldrv import Driver, run, bp

GW = ["201:1::1", "201:1::2", "201:1::3", "201:1::4"]
BOB, DAVE = "201:2::2", "201:4::4"
MIN = 20000


def kv(reply):
    return {k: int(v) for k, v in (w.split("=") for w in reply.split()[2:])}


def show_of(el):
    for c in el:
        if bp.local(c.tag) == "show":
            return c.text
    return None


async def until(what, fn, timeout=10):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = await fn()
        if v:
            return v
        if loop.time() > end:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.02)


async def presence_and_backoff():
    d = await Driver(backoff_min=MIN, backoff_max=300000).start()
    bob = await bp.Peer("bob", BOB, profile="purple").start()
    bob.add_buddy("alice", GW[0])
    try:
        await d.cmd("ident 1 alice %s 0" % GW[0])
        await d.cmd("contact 1 10 bob %s 0" % BOB)
        await d.cmd("want 10 1")
        s = await bob.wait_session("alice")
        await d.wait("pipe_up 1 10")
        first = await s.wait_presence()
        assert first.get("type") != "unavailable", first.attrib
        # the same presence twice, then a change: the change comes next
        await d.cmd("presence 1 available")
        await d.cmd("presence 1 available")
        await d.cmd("presence 1 available away")
        nxt = await s.wait_presence()
        assert show_of(nxt) == "away", ("unchanged presence re-sent",
                                        nxt.attrib, show_of(nxt))

        # offline: the pipe closes; the gateway then stops wanting it
        await d.cmd("presence 1 unavailable")
        await d.wait("pipe_down 1 10")
        await d.cmd("want 10 0")
        info = kv(await d.cmd("info 10"))
        assert info["backoff"] == 0, ("going offline raised the backoff", info)
        # back online, bob unreachable: the first failure waits backoff_min
        await bob.stop()
        await d.cmd("presence 1 available")
        await d.cmd("want 10 1")

        async def failed():
            i = kv(await d.cmd("info 10"))
            return i if i["redial"] and i["backoff"] else None
        info = await until("the failed dial", failed)
        assert info["backoff"] == MIN, ("first failure after offline", info)
    finally:
        await bob.stop()
        await d.stop()


async def dial_cap():
    cap = 4
    d = await Driver(max_dials=cap, dial_jitter=1, dial_timeout=60000,
                     backoff_min=60000, backoff_max=60000).start()
    lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsock.bind((DAVE, 1337))
    lsock.listen(256)               # connects complete; nobody speaks
    lsock.setblocking(False)
    loop = asyncio.get_running_loop()
    held = []
    try:
        for i, addr in enumerate(GW, 1):
            await d.cmd("ident %d a%d %s 0" % (i, i, addr))
            for k in range(6):
                await d.cmd("contact %d %d d%d%d %s 0" % (i, i * 100 + k, i, k, DAVE))
        # identity 1 fills every slot first...
        for k in range(cap):
            await d.cmd("want %d 1" % (100 + k))
        await until("the first dials", lambda: _stat(d, lambda st: st["dials"] == cap))
        # ...then everybody else wants a pipe too: they wait for a slot
        for i in range(1, 5):
            for k in range(6):
                if i * 100 + k >= 100 + cap or i > 1:
                    await d.cmd("want %d 1" % (i * 100 + k))
        waiting = 24 - cap
        st = await until("the queue", lambda: _stat(
            d, lambda st: st["dials_waiting"] == waiting))
        assert st["dials"] == cap and st["dials_started"] == cap, st

        for rnd in range(3):
            conns = []
            for _ in range(cap):
                c, peer = await asyncio.wait_for(loop.sock_accept(lsock), 10)
                conns.append((c, peer[0]))
            st = kv(await d.cmd("stats"))
            assert st["dials"] <= cap, ("dials over the cap", st)
            srcs = sorted(p for _, p in conns)
            if rnd == 0:
                assert srcs == [GW[0]] * cap, srcs
            else:
                # a free slot goes to the next identity in the ring
                assert srcs == sorted(GW), ("unfair dial order", rnd, srcs)
            for c, _ in conns:
                c.close()           # the dial fails; its slot is freed
            started = cap * (rnd + 2)
            st = await until("the next dials", lambda: _stat(
                d, lambda st: st["dials_started"] == started and st["dials"] == cap))
            assert st["dials_waiting"] == waiting - cap * (rnd + 1), st
        held = conns
    finally:
        for c, _ in held:
            c.close()
        lsock.close()
        await d.stop()


async def _stat(d, pred):
    st = kv(await d.cmd("stats"))
    assert st["dials"] <= st["dials_max"], ("dials over the cap", st)
    return st if pred(st) else None


async def main():
    await presence_and_backoff()
    await dial_cap()


if __name__ == "__main__":
    run(main, GW + [BOB, DAVE])
