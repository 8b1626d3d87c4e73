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
# ctest: timeout=420
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
STUCK_MSGS, STUCK_BODY = 2000, 8 * 1024   # ~16 MiB of bodies (purple: twice on the wire)
# Debian's stock prosody.cfg.lua limits each c2s session to 10 kB/s
# (mod_limits): one session would need ~27 minutes for 16 MiB, so alice
# writes from this many sessions (resources) at once
STUCK_SESSIONS = 50
STUCK_RSS_BOUND = 4 * 1024 * 1024   # the second half (8 MiB of bodies) adds less
HEADER = b"<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns='jabber:client'"


def status(gw):
    """The daemon's own counters, as `--health` prints them."""
    r = gw.run("--config", gw.config_path, "--health")
    m = re.search(r"Pipes up: (\d+), in handshake: (\d+), dials in flight: (\d+),"
                  r" unknown sources refused: (\d+)", r.stdout)
    expect(m, "the pipe counters in --health", "Pipes up: …", r.stdout + r.stderr)
    return {"up": int(m.group(1)), "handshake": int(m.group(2)), "refused": int(m.group(4))}


def asan_build(gw):
    r = subprocess.run(["ldd", gw.binary], capture_output=True, text=True)
    return "libasan" in r.stdout


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
    # a keepalive with 75 s of patience: alice's whole burst (~40 s through
    # Prosody's c2s rate limit, see STUCK_SESSIONS) reaches a stuck pipe
    # before it is dropped
    return await barevworld.start(gw_config={"barev_ping_timeout": "25s"})


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


async def test_a_peer_that_never_reads_costs_bounded_memory_and_is_dropped(ctx):
    gw, alice, bob, carol = ctx["gw"], ctx["alice"], ctx["bob"], ctx["carol"]
    sb = await bob.wait_session("alice")
    sc = await carol.wait_session("alice")
    # bob stops reading: his window fills (a small receive buffer, so the
    # kernel takes little of what the gateway writes)
    sock = sb.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sb.writer.transport.pause_reading()
    log_pos = gw.mark()
    body = "x" * (STUCK_BODY - 8)

    def processed():
        return len(re.findall(r"message \d+ (?:handed to bob@|to bob@\S+ waits in the outbox)",
                              gw.log_text(log_pos)))

    async def took(n):
        deadline = time.monotonic() + 90
        while processed() < n:
            expect(time.monotonic() < deadline, "the gateway took alice's messages",
                   n, processed())
            await asyncio.sleep(0.1)

    async def send_half(start, end):
        """Messages start..end-1 from all of alice's sessions at once; the
        last one alone after the others are in, so it is last in the outbox"""
        for i in range(start, end - 1):
            senders[i % len(senders)].send_message(BOB, "%07d %s" % (i, body))
            if i % 10 == 0:
                await asyncio.sleep(0.01)
        await took(end - 1)
        alice.send_message(BOB, "%07d %s" % (end - 1, body))
        await took(end)
        return rss(gw)
    senders = [harness.Client("alice@example.org", "alice", ctx["p"], resource="flood%d" % i)
               for i in range(STUCK_SESSIONS)]
    await asyncio.gather(*(c.connect_and_wait(timeout=60, presence=False) for c in senders))
    base = rss(gw)
    half = await send_half(0, STUCK_MSGS // 2)
    full = await send_half(STUCK_MSGS // 2, STUCK_MSGS)
    await asyncio.gather(*(c.close() for c in senders))
    expect(not sb.closed, "bob's stuck pipe is still there while alice writes", True,
           sb.close_reason)
    # carol's pipe is not held up meanwhile (alice's own stream is: her
    # server passes her messages in order, so carol writes to her)
    await sc.send_message("while bob is stuck")
    await alice.wait_message(lambda m: m["body"] == "while bob is stuck", timeout=15,
                             what="carol's message while bob is stuck")
    down = await gw.wait_log(r"pipe down: bob@\S+: (.*)$", timeout=120)
    m = re.search(r"bob@\S+ reads too slowly: (\d+) bytes wait", gw.log_text(log_pos))
    held = int(m.group(1)) if m else -1
    queued = barevworld.store_rows(gw, "SELECT count(*) FROM outbox")[0][0]
    print("a peer that never reads: %d messages of %d KiB to it; the gateway held back at"
          " %d KiB waiting, %d rows waited in the outbox; RSS (KiB) before %d, after half"
          " %d, after all %d (second half %+d); the pipe went: %s"
          % (STUCK_MSGS, STUCK_BODY // 1024, held // 1024, queued, base // 1024,
             half // 1024, full // 1024, (full - half) // 1024, down.group(1)))
    expect(0 < held <= 1024 * 1024 + 2 * STUCK_BODY + 4096, "what the pipe holds is bounded",
           "<= 1 MiB + a stanza", held)
    if asan_build(gw):
        # ASan's allocator grows RSS with the volume that passed through
        # even with its quarantine off (measured: the same +11 MiB over
        # the second half with or without the limit); the release build
        # shows the difference (+0 MiB with the limit, see the commit)
        print("SKIP the RSS check: an ASan build's RSS does not show live memory")
    else:
        expect(full - half < STUCK_RSS_BOUND, "the gateway's memory is flat over the second"
               " half", "< %d MiB growth" % (STUCK_RSS_BOUND >> 20), (full - half) / 1048576)
    expect(not sc.closed, "carol's pipe stayed up")
    # bob comes back reading: what was held back in the outbox reaches him
    sb2 = await bob.wait_session("alice", timeout=30, exclude=(sb,))
    last = "%07d" % (STUCK_MSGS - 1)
    await sb2.wait_until(lambda: any(b.startswith(last) for b, _ in sb2.messages), timeout=60,
                         what="alice's last message to bob on his next pipe")
    got = [b[:7] for s in bob.all_sessions for b, _ in s.messages if b[:7].isdigit()]
    expect_eq(len(got), len(set(got)), "no message twice at bob")
test_a_peer_that_never_reads_costs_bounded_memory_and_is_dropped.timeout = 240


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
