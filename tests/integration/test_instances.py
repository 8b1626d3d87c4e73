#!/usr/bin/python3
"""Two gateways on one machine share nothing by default (issue 12).

An operator runs two instances (barev.example.org and barev2.example.org,
e.g. shards or two test servers) with their databases side by side in one
state directory and neither spool_dir nor status_socket set.  Each
instance gets its own spool and status socket beside its own database, so
both answer --health, and the second one's start (which empties its
spool's tmp/) leaves the first one's file transfer in flight alone: bob's
file still reaches alice intact.
"""
# ctest: timeout=180
import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import harness  # noqa: E402
from harness import Gateway, expect, expect_eq  # noqa: E402
import barevworld  # noqa: E402
from barevworld import BOB  # noqa: E402
from xfer import http  # noqa: E402

MIB = 1024 * 1024
COMPONENT2 = "barev2.example.org"


def spool_tmp(spool):
    try:
        return sorted(os.listdir(os.path.join(spool, "tmp")))
    except FileNotFoundError:
        return []


async def setup():
    state = harness.tmpdir("state")      # one state directory, two databases
    extra = ('Component "%s"\n\tcomponent_secret = "%s"\n'
             % (COMPONENT2, harness.SECRET))
    w = await barevworld.start(
        gw_config={"database": os.path.join(state, "barev1.sqlite"), "spool_dir": None},
        prosody_kwargs={"extra": extra})
    w["state"] = state
    return w


async def test_the_spool_defaults_to_beside_the_database(ctx):
    spool = os.path.join(ctx["state"], "barev1.sqlite.spool")
    expect(os.path.isdir(os.path.join(spool, "tmp")),
           "the first instance's spool is <database>.spool", spool,
           sorted(os.listdir(ctx["state"])))


async def test_a_second_instance_leaves_the_first_ones_transfer_alone(ctx):
    alice, bob, gw1, state = ctx["alice"], ctx["bob"], ctx["gw"], ctx["state"]
    spool1 = os.path.join(state, "barev1.sqlite.spool")
    s = await bob.wait_session("alice")
    data = bytes(range(256)) * (2 * MIB // 256)
    half = len(data) // 2
    rtype, conn = await s.open_file_stream("shared.bin", len(data), "two-1", timeout=10)
    expect_eq(rtype, "result", "gateway 1 accepts bob's offer")
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(conn, data[:half])
    await gw1.wait_log(r"shared\.bin", timeout=10)
    # Wherever gateway 1 spools it: the file it has open for bob's bytes.
    fds = "/proc/%d/fd" % gw1.pid
    in_flight = [os.readlink(os.path.join(fds, f)) for f in os.listdir(fds)]
    in_flight = [f for f in in_flight if "/tmp/in-" in f]
    expect(len(in_flight) == 1, "gateway 1 spools bob's file", 1, in_flight)
    expect(in_flight[0].startswith(spool1 + "/"), "in its own spool", spool1, in_flight)

    # The second instance: same state directory, its own database, no spool_dir.
    gw2 = Gateway(ctx["p"], harness.tmpdir("gw2"),
                  config={"component_jid": COMPONENT2,
                          "database": os.path.join(state, "barev2.sqlite"),
                          "spool_dir": None})
    gw2.start()
    await gw2.wait_up()
    expect(os.path.exists(in_flight[0]),
           "gateway 2's start left gateway 1's file in flight in place", in_flight,
           spool_tmp(os.path.dirname(os.path.dirname(in_flight[0]))))
    spool2 = os.path.join(state, "barev2.sqlite.spool")
    expect(os.path.isdir(os.path.join(spool2, "tmp")),
           "the second instance made its own spool beside its database", spool2,
           sorted(os.listdir(state)))

    # Each answers --health on its own status socket.
    for gw, component in ((gw1, harness.COMPONENT), (gw2, COMPONENT2)):
        r = gw.run("--config", gw.config_path, "--health")
        expect(r.returncode == 0 and r.stdout.startswith(
            "ok: component link up as %s\n" % component),
            "--health of %s" % component, "exit 0, ok: … as %s" % component,
            (r.returncode, r.stdout, r.stderr))
    expect("another process answers" not in gw2.log_text(),
           "gateway 2 found no other gateway on its status socket", "", gw2.log_text())

    alice.mark()
    await loop.sock_sendall(conn, data[half:])
    conn.close()
    m = await alice.wait_message(lambda m: m["from"].bare == BOB and
                                 (m["body"] or "").startswith("http"),
                                 timeout=30, what="the link to bob's file")
    status, got = await http("GET", m["body"])
    expect_eq(status, 200, "download status")
    expect(got == data, "alice downloads bob's bytes unchanged", len(data), len(got))
    expect_eq(gw2.stop(), 0, "gateway 2 stops cleanly")
test_a_second_instance_leaves_the_first_ones_transfer_alone.timeout = 90


if __name__ == "__main__":
    import netns
    netns.enter([barevworld.ALICE_ADDR, barevworld.BOB_ADDR, barevworld.CAROL_ADDR])
    harness.main()
