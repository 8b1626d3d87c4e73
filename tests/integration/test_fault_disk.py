"""A full disk (issue 14, fault injection): the gateway's database and its
spool each live on a small tmpfs (mounted in this test's own mount
namespace) that the test fills with a ballast file.

- Messages: alice's messages that cannot be committed are answered to her
  with an error that says the gateway's disk is full (and are never sent);
  the daemon stays up (bob's messages still reach alice); everything
  committed before — messages queued while bob was away, or accepted
  before the disk ran out — reaches bob exactly once and in order; once
  space returns the next message goes through with no help.  The log has
  no spurious "cannot rollback" after the failed COMMIT.
- Files: a file from bob that does not fit in the spool fails and alice is
  told the gateway's disk is full; messages keep flowing meanwhile, and the
  next file (the failed one's spool is gone) goes through.
"""
# ctest: timeout=300
import asyncio
import atexit
import ctypes
import errno
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq             # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, ALICE_ADDR, BOB_ADDR, CAROL_ADDR, wait_count  # noqa: E402

MIB = 1024 * 1024
DB_FS = "4m"          # the database's filesystem
SPOOL_FS = "3m"       # the spool's filesystem
GATEWAY = harness.COMPONENT
_mounts = []


def private_mounts():
    """This process (and everything it starts) gets its own mount
    namespace, so the small filesystems never show on the host."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:            # CLONE_NEWNS
        sys.exit("unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)


def small_fs(name, size):
    d = harness.tmpdir(name)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", d], check=True)
    _mounts.append(d)
    return d


@atexit.register
def _unmount():
    # registered after harness's cleanup, so it runs first: the directories
    # are plain again when harness removes them
    for d in reversed(_mounts):
        subprocess.run(["umount", "-l", d], check=False)


def fill(d):
    """Write a ballast file until the filesystem says ENOSPC."""
    path = os.path.join(d, "ballast")
    with open(path, "ab", buffering=0) as f:
        chunk = b"\xa5" * 65536
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[:len(chunk) // 2]
    st = os.statvfs(d)
    expect_eq(st.f_bavail, 0, "the filesystem is full")
    return path


def bodies_at(peer, prefix):
    out = []
    for s in peer.all_sessions:
        out += [b for b, _el in s.messages if b and b.startswith(prefix)]
    return out


def says(who, *words):
    def pred(m):
        body = m["body"] or ""
        return m["from"].bare == who and all(w in body for w in words)
    return pred


async def setup():
    db_dir = small_fs("dbfs", DB_FS)
    spool_dir = small_fs("spoolfs", SPOOL_FS)
    return await barevworld.start(
        gw_config={"database": os.path.join(db_dir, "gateway.db"),
                   "spool_dir": os.path.join(spool_dir, "spool"),
                   "max_file_size": "16M", "spool_quota": "64M"})


async def send_one(alice, gw, text):
    """alice sends one message to bob; returns (id, refused) once the
    gateway has either committed it or failed to (its log says which)."""
    gw.mark()
    mid = alice.send_message(BOB, text)
    m = await gw.wait_log(r"message \d+ (?:handed to|to \S+ waits in the outbox)"
                          r"|(could not be stored)", timeout=15)
    return mid, m.group(1) is not None


async def until(pred, timeout, what):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        expect(asyncio.get_running_loop().time() < deadline, what, None, None)
        await asyncio.sleep(0.02)


async def test_disk_full_messages_are_refused_with_the_reason_then_flow_again(ctx):
    alice, bob, gw = ctx["alice"], ctx["bob"], ctx["gw"]
    db_dir = os.path.dirname(gw.config["database"])
    s = await bob.wait_session("alice")
    errors = {}
    alice.add_event_handler("message_error", lambda m: errors.setdefault(m["id"], m))
    # committed before: queued in the outbox while bob is away
    gw.mark()
    await bob.stop()
    await s.wait_closed(timeout=10)
    await gw.wait_log(r"pipe down: \S+ <-> bob@", timeout=10)
    queued = ["D queued %d" % i for i in range(3)]
    for t in queued:
        await send_one(alice, gw, t)
    await wait_count(gw, "outbox", lambda n: n >= 3, "3 rows queued for bob")
    expect_eq(errors, {}, "no error while the disk has room")
    ballast = fill(db_dir)
    await bob.start()
    s2 = await bob.wait_session("alice", timeout=20, exclude=(s,))

    # the disk is full: alice writes until the gateway cannot commit (the
    # WAL may still have room for a few), then two more
    ids, refused, accepted = {}, [], []
    for i in range(200):
        text = "D full %d" % i
        mid, failed = await send_one(alice, gw, text)
        ids[mid] = text
        if failed:
            refused.append(text)
            await until(lambda: mid in errors, 10, "alice gets an error for %r" % text)
            if len(refused) == 3:
                break
        else:
            accepted.append(text)
    expect(refused, "some message was refused on the full disk", ">= 1", len(refused))
    first = errors[next(k for k, v in ids.items() if v == refused[0])]
    body = first["error"]["text"] or ""
    expect("disk is full" in body, "the refusal names the cause", "the gateway's disk is full",
           body)
    expect_eq(first["error"]["type"], "wait", "error type")
    expect_eq(first["error"]["condition"], "resource-constraint", "error condition")
    expect("cannot rollback" not in gw.log_text(), "no spurious ROLLBACK after the failed COMMIT",
           None, harness.tail(gw.log_path, 5))

    # the daemon stays up: bob's messages still reach alice
    alice.mark()
    await s2.send_message("D bob while full")
    await alice.wait_message(lambda m: m["body"] == "D bob while full", timeout=10,
                             what="bob's message on the full disk")

    # space returns: the next message goes through, with everything before
    os.unlink(ballast)
    await send_one(alice, gw, "D after")
    want = queued + accepted + ["D after"]
    await s2.wait_until(lambda: "D after" in bodies_at(bob, "D "), timeout=20,
                        what="the message after space returned")
    await s2.wait_until(lambda: all(t in bodies_at(bob, "D ") for t in want), timeout=20,
                        what="every committed message")
    got = [b for b in bodies_at(bob, "D ") if b != "D bob while full"]
    expect_eq(got, want, "bob got every accepted message once, in order, none refused")
    print("disk full: %d accepted on the full disk before the first refusal, %d refused"
          % (len(accepted), len(refused)))
test_disk_full_messages_are_refused_with_the_reason_then_flow_again.timeout = 120


async def test_spool_full_fails_that_file_with_the_reason_and_others_go_on(ctx):
    alice, bob, carol, gw = ctx["alice"], ctx["bob"], ctx["carol"], ctx["gw"]
    s = await bob.wait_session("alice", timeout=20)
    c = await carol.wait_session("alice", timeout=20)
    alice.mark()
    big = os.urandom(4 * MIB)               # more than the spool's filesystem
    res = await s.send_file("too big.bin", big, timeout=30)
    m = await alice.wait_message(says(GATEWAY, "too big.bin"), timeout=30, what="the failure note")
    expect("disk is full" in m["body"], "alice hears why", "the gateway's disk is full", m["body"])
    expect("could not be delivered" in m["body"], "alice hears it failed", None, m["body"])
    print("bob's side of the failed transfer: %r" % ({k: res.get(k) for k in ("ok", "reason")},))
    # messages were never held up
    await c.send_message("F carol meanwhile")
    await alice.wait_message(lambda m: m["body"] == "F carol meanwhile", timeout=10,
                             what="carol's message")
    # and the next file, which fits, goes through
    small = os.urandom(MIB)
    res = await c.send_file("fits.bin", small, timeout=30)
    expect(res["ok"], "carol's transfer went through", True, res)
    await alice.wait_message(lambda m: m["from"].bare == barevworld.CAROL
                             and (m["body"] or "").startswith("http"), timeout=30,
                             what="the link to carol's file")
test_spool_full_fails_that_file_with_the_reason_and_others_go_on.timeout = 120


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    private_mounts()
    harness.main()
