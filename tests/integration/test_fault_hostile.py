"""Hostile Barev peers against the full daemon (issue 14, fault injection;
test_barevlink's hostile tests drive bl-driver, this is barev-gateway with
its store, relay and component link).  alice@example.org has bob
(201:2::2, purple) and carol (201:3::3, pascal) as contacts, pipes up.

- 10,000 connections to alice's listener from 10,000 unknown 200::/7
  addresses (202::/16 is routed to this namespace's lo): each is closed
  before a byte is read — the daemon's "unknown sources refused" counter
  grows by exactly 10,000, its log names none of them, no pipe is in
  handshake afterwards — and its RSS is flat (sampled every 1,000).
- 1,000 slow headers (one byte a second) from bob's and carol's own
  addresses, in 4 waves of 250: per address never more than 8 wait in the
  header phase at once (the limit per address); each of those is cut at the
  header timeout, the rest are refused before a read; bob's and carol's real
  pipes stay up and carry messages meanwhile.
"""
# ctest: timeout=300
import asyncio
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq             # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, CAROL, ALICE_ADDR, BOB_ADDR, CAROL_ADDR  # noqa: E402

STRANGERS = 10000             # connections from unknown addresses
SAMPLE_EVERY = 1000
BATCH = 200                   # connections in flight at once
SLOW_WAVES, SLOW_PER_ADDR = 4, 125   # 4 x 2 addresses x 125 = 1,000 slow headers
PENDING_LIMIT = 8             # BL_MAX_PENDING_PER_ADDR
HEADER_TIMEOUT = float(harness.TEST_TIMERS["barev_header_timeout"].rstrip("s"))
RSS_SLACK = 1024 * 1024       # "flat": less than 1 MiB over 9,000 connections
SOL_IPV6, IPV6_FREEBIND = 41, 78
HEADER = b"<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns='jabber:client'"


def status(gw):
    """The daemon's own counters, as `--health` prints them."""
    r = gw.run("--config", gw.config_path, "--health")
    m = re.search(r"Pipes up: (\d+), in handshake: (\d+), dials in flight: (\d+),"
                  r" unknown sources refused: (\d+)", r.stdout)
    expect(m, "the pipe counters in --health", "Pipes up: …", r.stdout + r.stderr)
    return {"up": int(m.group(1)), "handshake": int(m.group(2)), "refused": int(m.group(4))}


def rss(gw):
    with open("/proc/%d/status" % gw.pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024


async def connect_from(src, dst, port=1337):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(SOL_IPV6, IPV6_FREEBIND, 1)
    s.setblocking(False)
    s.bind((src, 0))
    try:
        await loop.sock_connect(s, (dst, port))
    except OSError:
        s.close()
        raise
    return s


async def stranger(i):
    """Connect from 202::<i>, write a little, see the gateway close."""
    loop = asyncio.get_running_loop()
    src = "202::%x:%x" % (i >> 16, i & 0xffff)
    s = await connect_from(src, ALICE_ADDR)
    try:
        try:
            await loop.sock_sendall(s, HEADER)
        except OSError:
            pass                      # already closed: fine
        try:
            data = await asyncio.wait_for(loop.sock_recv(s, 64), 10)
        except (ConnectionError, OSError):
            data = b""
        expect_eq(data, b"", "a stranger gets nothing but a close")
    finally:
        s.close()


async def setup():
    subprocess.run(["ip", "-6", "route", "add", "local", "202::/16", "dev", "lo"], check=True)
    return await barevworld.start()


async def test_10000_strangers_are_closed_unread_and_rss_stays_flat(ctx):
    gw, alice = ctx["gw"], ctx["alice"]
    sb = await ctx["bob"].wait_session("alice")
    before = status(gw)
    log_pos = gw.mark()
    samples = []
    for start in range(0, STRANGERS, BATCH):
        await asyncio.gather(*(stranger(i) for i in range(start + 1, start + BATCH + 1)))
        if (start + BATCH) % SAMPLE_EVERY == 0:
            samples.append(rss(gw))
    after = status(gw)
    expect_eq(after["refused"] - before["refused"], STRANGERS,
              "connections refused before a read (the daemon's counter)")
    expect_eq(after["handshake"], 0, "pipes in handshake afterwards")
    strangers_logged = re.findall(r"^.*\b202::.*$", gw.log_text(log_pos), re.M)
    expect_eq(strangers_logged[:3], [], "log lines about the strangers")
    growth = samples[-1] - samples[0]
    print("10,000 strangers: RSS every 1,000 (KiB): %s; growth after the first 1,000: %+d KiB"
          % ([s // 1024 for s in samples], growth // 1024))
    expect(growth < RSS_SLACK, "RSS flat over 9,000 strangers", "< 1 MiB growth",
           [s // 1024 for s in samples])
    # and the daemon still does its work
    alice.mark()
    await sb.send_message("after the strangers")
    await alice.wait_message(lambda m: m["body"] == "after the strangers", timeout=10,
                             what="bob's message")
test_10000_strangers_are_closed_unread_and_rss_stays_flat.timeout = 240


async def slow_header(src, out):
    """An allowlisted address sends a header one byte a second; records
    how long the gateway kept the connection."""
    loop = asyncio.get_running_loop()
    s = await connect_from(src, ALICE_ADDR)
    t0 = time.monotonic()
    try:
        for i in range(len(HEADER)):
            try:
                await loop.sock_sendall(s, HEADER[i:i + 1])
                data = await asyncio.wait_for(loop.sock_recv(s, 4096), 1.0)
                if data == b"":
                    break             # closed by the gateway
            except asyncio.TimeoutError:
                continue              # still open: the next byte
            except OSError:
                break
        else:
            raise harness.TestFailure("a slow header from %s was never cut" % src)
    finally:
        s.close()
    out.append((src, time.monotonic() - t0))


async def test_1000_slow_headers_are_cut_at_the_timeout_and_limited_per_address(ctx):
    gw, alice = ctx["gw"], ctx["alice"]
    sb = await ctx["bob"].wait_session("alice")
    sc = await ctx["carol"].wait_session("alice")
    before = status(gw)
    log_pos = gw.mark()
    held, refused, total = {BOB_ADDR: 0, CAROL_ADDR: 0}, 0, 0
    for wave in range(SLOW_WAVES):
        out = []
        tasks = [slow_header(a, out) for a in (BOB_ADDR, CAROL_ADDR)
                 for _ in range(SLOW_PER_ADDR)]
        chat = asyncio.ensure_future(sb.send_message("slow wave %d" % wave))
        await asyncio.gather(chat, *tasks)
        total += len(out)
        for src, lived in out:
            if lived >= HEADER_TIMEOUT - 0.2:
                held[src] += 1
            else:
                refused += 1
        await alice.wait_message(lambda m: m["body"] == "slow wave %d" % wave, timeout=10,
                                 what="bob's message during wave %d" % wave)
    after = status(gw)
    cut = len(re.findall(r"\] inbound closed: header timeout", gw.log_text(log_pos)))
    print("%d slow headers: %d held until the header timeout (%s), %d refused before a read"
          % (total, sum(held.values()), held, refused))
    expect_eq(total, SLOW_WAVES * 2 * SLOW_PER_ADDR, "slow headers tried")
    for a, n in held.items():
        expect_eq(n, SLOW_WAVES * PENDING_LIMIT, "connections from %s held per wave x waves" % a)
    expect_eq(cut, sum(held.values()), "header timeouts in the log")
    expect_eq(after["refused"] - before["refused"], refused, "refused before a read (counter)")
    expect_eq(after["handshake"], 0, "pipes in handshake afterwards")
    expect(not sb.closed and not sc.closed, "bob's and carol's pipes stayed up")
    alice.send_message(CAROL, "after the slow headers")
    await sc.wait_until(lambda: any(b == "after the slow headers" for b, _ in sc.messages),
                        timeout=10, what="alice's message at carol")
    _ = BOB
test_1000_slow_headers_are_cut_at_the_timeout_and_limited_per_address.timeout = 180


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
