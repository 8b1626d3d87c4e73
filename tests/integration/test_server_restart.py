"""A crashed XMPP server is not all its users going offline (issue 13,
reconnect storm).

When Prosody dies without a word (kill -9) and comes back, alice@example.org
is logging back in: her Barev peers keep seeing her online, their pipes
stay up, and when she is back her new presence reaches bob on the pipe he
already had (no goodbye, no re-dial; with 1,000 users that was 10,000 pipes
closed and dialled again).  She is held that way for at most
`server_restart_hold` (shipped default: 120 s); a user who does not come
back within it goes offline at her peers, as before.
"""
# ctest: timeout=300
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import Client, expect, expect_eq     # noqa: E402
import barevworld                                # noqa: E402
from barevworld import BOB, ALICE_ADDR, BOB_ADDR, CAROL_ADDR  # noqa: E402


def kill9(p):
    harness._killpg(p.proc, 9)
    p.proc.wait(5)
    p.proc = None


def unavailable(el):
    return el.get("type") == "unavailable"


HTTP_PORT = harness.free_port()


async def setup():
    # /metrics on, as an operator graphing the gateway has it
    return await barevworld.start(
        gw_config={"http_listen": "127.0.0.1:%d" % HTTP_PORT,
                   "http_public_url": "http://127.0.0.1:%d" % HTTP_PORT,
                   "metrics_path": "/metrics"})


def users_held():
    return harness.read_metrics(HTTP_PORT).get("barev_users_held")


async def crash_and_restart(p, gw):
    gw.mark()
    kill9(p)
    await gw.wait_log(r"component: .*; retrying in", timeout=15)
    p.start()
    await gw.wait_up(timeout=45)


async def test_users_of_a_crashed_server_stay_online_at_their_peers(ctx):
    p, gw, bob, alice = ctx["p"], ctx["gw"], ctx["bob"], ctx["alice"]
    s = await bob.wait_session("alice", timeout=20)
    await s.wait_until(lambda: s.remote_presence.get("available"), 10,
                       "alice online at bob")
    seen = len(s.presences)
    # her client dies with the server's socket: no unavailable presence
    await crash_and_restart(p, gw)
    # the re-learning after the link's return ends, alice is not back:
    # she is held, not dropped (the shipped default, no override here)
    await gw.wait_log(r"1 user\(s\) online before the server link dropped are"
                      r" not back yet: held", timeout=20)
    expect(not s.closed, "bob's pipe to alice is still up while she logs back in")
    r = gw.run("--config", gw.config_path, "--health")
    expect("Held online through a server crash: 1 user(s)" in r.stdout,
           "status tells the operator who is held", None, r.stdout)
    expect_eq(users_held(), 1.0, "barev_users_held in /metrics while she is away")
    expect_eq([el for el in s.presences[seen:] if unavailable(el)], [],
              "unavailable presences bob got while alice's server was down")
    alice = Client("alice@example.org", "alice", p)
    ctx["alice"] = alice
    await alice.connect_and_wait()
    alice.send_presence(pstatus="back after the crash")
    await s.wait_until(lambda: s.remote_presence.get("status") == "back after the crash",
                       20, "alice's new status at bob, on the pipe he had")
    expect(not s.closed, "the same pipe carried it")
    r = gw.run("--config", gw.config_path, "--health")
    expect("Held online" not in r.stdout, "nobody held once she is back", None, r.stdout)
    expect_eq(users_held(), 0.0, "barev_users_held in /metrics once she is back")
    expect_eq(len([x for x in bob.all_sessions
                   if (x.remote_nick or "").lower() == "alice"]), 1,
              "pipes bob had with alice over the crash")
    alice.send_message(BOB, "still here")
    await s.wait_until(lambda: any(b == "still here" for b, _ in s.messages), 20,
                       what="a message on that pipe")


async def test_a_user_who_does_not_come_back_goes_offline_when_the_hold_ends(ctx):
    p, gw, bob, alice = ctx["p"], ctx["gw"], ctx["bob"], ctx["alice"]
    # a short hold, by a reload, so the test does not wait two minutes
    gw.config["server_restart_hold"] = "3s"
    gw.write_config()
    gw.mark()
    os.kill(gw.pid, 1)                           # SIGHUP
    await gw.wait_log(r'server_restart_hold: "120s" -> "3s"', timeout=10)
    s = await bob.wait_session("alice", timeout=20)
    await s.wait_until(lambda: s.remote_presence.get("available"), 10,
                       "alice online at bob")
    await crash_and_restart(p, gw)
    await gw.wait_log(r"held online at their peers for up to 3 s", timeout=20)
    await gw.wait_log(r"1 user\(s\) did not log back in within 3 s", timeout=15)
    # her peers hear it as from any user going offline: the goodbye
    await s.wait_until(lambda: s.closed or not s.remote_presence.get("available"),
                       15, "alice offline at bob after the hold")
    expect(not s.remote_presence.get("available"), "bob sees alice offline")


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
