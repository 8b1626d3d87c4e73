#!/usr/bin/python3
"""Issue 2 — the gateway is a well-behaved component before it speaks Barev.

A user sees it in service discovery as a Barev gateway, it answers pings and
refuses what it does not understand; it survives a server restart; with a
wrong secret it keeps retrying slowly and cheaply; a bad config is refused
up front with a message that names the bad key.
"""
# ctest: timeout=240
import asyncio
import os
import re
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, Gateway, Prosody, TestFailure, expect  # noqa: E402

GATEWAY_FEATURES = {"http://jabber.org/protocol/disco#info", "urn:xmpp:ping",
                    "jabber:iq:version"}


async def setup():
    p = Prosody(harness.tmpdir("prosody"))
    p.start()
    p.create_user("alice", "alice")
    p.create_user("admin", "admin")
    gw = Gateway(p, harness.tmpdir("gateway")).start()
    await gw.wait_up()
    return p, gw


# ---------------------------------------------------------------- bad configs

def _config_error(gw, text, key, env=None):
    """Write `text` as the config; --test-config must exit 1 naming `key`,
    and the daemon must refuse to start with the same message."""
    gw.write_config(text)
    saved = dict(gw.env)
    gw.env.update(env or {})
    try:
        r = gw.run("--test-config", "--config", gw.config_path)
        out = (r.stdout + r.stderr).strip()
        expect(r.returncode == 1, "--test-config on a config with a bad %s: exit status" % key,
               1, (r.returncode, out))
        lines = [l for l in out.splitlines() if key in l]
        expect(lines, "--test-config names the bad key", key, out)
        # The daemon says the same thing (perhaps behind a timestamp and level).
        essence = re.sub(r"^\S+Z\s+[A-Z]+\s+", "", lines[0]).strip()
        try:
            d = gw.run("--config", gw.config_path, timeout=10)
        except subprocess.TimeoutExpired:
            raise TestFailure("the daemon started with a bad %s instead of refusing" % key)
        dout = d.stdout + d.stderr
        expect(d.returncode == 1, "daemon with a bad %s: exit status" % key, 1,
               (d.returncode, dout.strip()))
        expect(essence in dout, "daemon refuses with the same message as --test-config",
               essence, dout.strip())
    finally:
        gw.env = saved


def _good_config(gw, drop=(), **extra):
    cfg = {k: v for k, v in gw.config.items() if k not in drop}
    cfg.update(extra)
    return "".join("%s = %s\n" % kv for kv in cfg.items())


async def test_version_and_help():
    gw = Gateway(None, harness.tmpdir("cli"))
    for arg in ("--version", "--help"):
        r = gw.run(arg)
        expect(r.returncode == 0 and (r.stdout + r.stderr).strip(),
               "barev-gateway %s exits 0 and prints something" % arg,
               0, (r.returncode, r.stdout + r.stderr))
    expect("barev-gateway" in gw.run("--version").stdout + gw.run("--version").stderr,
           "--version names the program")


async def test_good_config_is_accepted():
    gw = Gateway(None, harness.tmpdir("goodcfg"))
    gw.write_config("# a comment\n\n" + _good_config(gw) + "  # trailing comment line\n")
    r = gw.run("--test-config", "--config", gw.config_path)
    expect(r.returncode == 0 and "config OK" in r.stdout + r.stderr,
           "--test-config accepts the harness's config", "exit 0, 'config OK'",
           (r.returncode, r.stdout + r.stderr))


async def test_bad_configs_are_refused_naming_the_key():
    gw = Gateway(None, harness.tmpdir("badcfg"))
    _config_error(gw, _good_config(gw, frobnicate="1"), "frobnicate")
    _config_error(gw, _good_config(gw, server_port="99999"), "server_port")
    _config_error(gw, _good_config(gw, barev_port="port"), "barev_port")
    _config_error(gw, _good_config(gw, log_level="loud"), "log_level")
    _config_error(gw, _good_config(gw, drop=("component_jid",)), "component_jid")


async def test_env_override_is_checked_too():
    gw = Gateway(None, harness.tmpdir("envcfg"))
    _config_error(gw, _good_config(gw), "log_level",
                  env={"BAREV_GATEWAY_LOG_LEVEL": "loud"})


# ---------------------------------------------------------------- on the wire

async def test_user_discovers_the_gateway(ctx):
    p, gw = ctx
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    info = await alice.disco_info(p.component)
    expect(("gateway", "barev") in info.identities,
           "disco#info of %s shows a Barev gateway" % p.component,
           ("gateway", "barev"), sorted(info.identities))
    missing = GATEWAY_FEATURES - info.features
    expect(not missing, "disco#info features", sorted(GATEWAY_FEATURES),
           sorted(info.features))
    await alice.close()


async def test_gateway_answers_ping_and_version(ctx):
    p, gw = ctx
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    await alice.ping(p.component)
    r = await alice.iq_query(p.component, "get", "<query xmlns='jabber:iq:version'/>")
    expect(r["type"] == "result" and r["software_version"]["name"],
           "jabber:iq:version answered with a name", "result with <name/>", str(r))
    await alice.close()


async def test_unknown_iq_is_refused(ctx):
    p, gw = ctx
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    await alice.ping(p.component)       # the link is up: the error is the gateway's
    gw.mark()
    r = await alice.iq_query(p.component, "get", "<query xmlns='urn:example:nothing'/>")
    expect(r["type"] == "error" and r["error"]["condition"] == "service-unavailable",
           "an unsupported iq gets an error", "error service-unavailable", str(r))
    r = await alice.iq_query(p.component, "set", "<query xmlns='urn:example:nothing'/>")
    expect(r["type"] == "error" and r["error"]["condition"] == "service-unavailable",
           "an unsupported iq set gets an error", "error service-unavailable", str(r))
    await alice.ping(p.component)       # and it is still there
    await alice.close()


async def test_gateway_returns_after_prosody_restart(ctx):
    p, gw = ctx
    gw.mark()
    t0 = time.monotonic()
    p.restart()
    await gw.wait_up(timeout=10 - (time.monotonic() - t0))
    alice = await Client("alice@example.org", "alice", p).connect_and_wait()
    info = await alice.disco_info(p.component)
    expect(("gateway", "barev") in info.identities,
           "after the restart disco#info shows the gateway again",
           ("gateway", "barev"), sorted(info.identities))
    await alice.ping(p.component)
    await alice.close()


async def _failures(gw, pattern, n, timeout):
    """Wait for n log lines matching pattern; return when we saw each."""
    seen = []
    deadline = time.monotonic() + timeout
    for _ in range(n):
        await gw.wait_log(pattern, timeout=max(0.1, deadline - time.monotonic()))
        seen.append(time.monotonic())
    return seen


async def test_wrong_secret_retries_slowly(ctx):
    """Slow retrying, from what the gateway logs: the announced delays
    grow, no attempt comes before its announced delay (a lower bound: a
    slow machine is only later), and there is exactly one connection per
    announced retry, so nothing retries behind the log's back."""
    p, _ = ctx
    fail = r"not-authorized.*retrying in|retrying in.*not-authorized"
    gw = Gateway(p, harness.tmpdir("wrongsecret"),
                 config={"component_secret": "not-the-secret"}).start()
    await gw.wait_log(fail, 10)
    pos = gw.mark()
    t0, cpu0 = time.monotonic(), gw.cpu_seconds()
    times = [t0] + await _failures(gw, fail, 3, 30)
    cpu = gw.cpu_seconds() - cpu0
    log = gw.log_text()
    delays = [float(d) for d in re.findall(r"not-authorized.*retrying in (\d+\.\d) s", log)]
    expect(len(delays) >= 4, "every failure announces its delay", ">= 4", delays)
    expect(all(b > a for a, b in zip(delays, delays[1:4])),
           "the announced delay grows", "growing", delays)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # each gap follows the delay announced at its start (half of it: the
    # test sees each line up to a poll late, never the timer early)
    for gap, announced in zip(gaps, delays):
        expect(gap >= announced / 2, "no attempt long before its announced delay",
               ">= %.1f s" % (announced / 2), "%.2f s" % gap)
    window = gw.log_text(since=pos)
    attempts = len(re.findall(r"connecting to 127\.0\.0\.1:", window))
    failures = len(re.findall(fail, window))
    expect(attempts <= failures + 1, "one connection per announced retry",
           "<= %d" % (failures + 1), attempts)
    print("wrong secret: delays %s s, gaps %s s, %.2f s CPU over %.1f s" % (
        delays[:4], ["%.2f" % g for g in gaps], cpu, times[-1] - t0))
    expect("link up" not in gw.log_text(), "the link never came up with a wrong secret")
    gw.stop()


async def test_server_down_is_retried(ctx):
    p, _ = ctx
    gw = Gateway(p, harness.tmpdir("noserver"),
                 config={"server_port": str(harness.free_port())}).start()
    await _failures(gw, r"Connection refused.*retrying in|retrying in.*Connection refused", 2, 10)
    gw.stop()


# ---------------------------------------------------------------- documented settings

def _health(gw):
    r = gw.run("--config", gw.config_path, "--health")
    return r.returncode, r.stdout, r.stderr


def _alone(ctx):
    """The component can be linked once: stop the shared gateway (these
    tests come last), each of them then starts and stops its own."""
    p, gw = ctx
    gw.stop()
    return p


async def test_secret_file_links_up(ctx):
    """component_secret_file instead of component_secret: the secret is read
    from the file (trailing newline and all, as `echo secret > file` writes
    it), the link comes up, and the secret never reaches the log."""
    p = _alone(ctx)
    d = harness.tmpdir("secretfile")
    path = os.path.join(d, "secret")
    with open(path, "w") as f:
        f.write(p.secret + "\n")
    os.chmod(path, 0o600)
    gw = Gateway(p, d, config={"component_secret": None, "component_secret_file": path})
    expect("component_secret" not in gw.config, "only the file carries the secret")
    gw.start()
    await gw.wait_up()
    expect(p.secret not in gw.log_text(), "the secret is not in the log", None,
           gw.log_text()[-1500:])
    gw.stop()


async def test_secret_file_missing_or_unreadable_is_refused_naming_the_key():
    gw = Gateway(None, harness.tmpdir("badsecret"))
    missing = os.path.join(gw.dir, "no-such-secret")
    _config_error(gw, _good_config(gw, drop=("component_secret",),
                                   component_secret_file=missing), "component_secret_file")
    r = gw.run("--test-config", "--config", gw.config_path)
    expect(missing in r.stderr and "No such file" in r.stderr,
           "the error names the file and why", missing + ": No such file …", r.stderr)
    # a path that opens but cannot be read as a file
    _config_error(gw, _good_config(gw, drop=("component_secret",),
                                   component_secret_file=gw.dir), "component_secret_file")
    r = gw.run("--test-config", "--config", gw.config_path)
    expect("cannot read" in r.stderr, "an unreadable secret file", "cannot read …", r.stderr)


async def test_status_socket_at_a_custom_path(ctx):
    p = _alone(ctx)
    d = harness.tmpdir("statuscustom")
    sock = os.path.join(harness.tmpdir("statusrun"), "gw-status")
    gw = Gateway(p, d, config={"status_socket": sock}).start()
    await gw.wait_log(r"status: status socket %s " % re.escape(sock))
    await gw.wait_up()
    deadline = time.monotonic() + 10
    while True:     # the link is up; --health sees it at the custom path
        rc, out, err = _health(gw)
        if rc == 0:
            break
        expect(time.monotonic() < deadline, "--health via the custom socket", "exit 0",
               (rc, out, err))
        await asyncio.sleep(0.1)
    expect(out.startswith("ok: component link up as "), "--health's verdict",
           "ok: component link up as …", out)
    expect(not os.path.exists(os.path.join(d, "gateway.sqlite.sock")),
           "no socket at the default place when a path is set")
    gw.stop()
    expect(not os.path.exists(sock), "the custom socket is removed on a clean stop")


async def test_status_socket_off(ctx):
    p = _alone(ctx)
    d = harness.tmpdir("statusoff")
    gw = Gateway(p, d, config={"status_socket": "off"}).start()
    await gw.wait_log(r"status: status socket off")
    await gw.wait_up()
    socks = [n for n in os.listdir(d) if stat.S_ISSOCK(os.lstat(os.path.join(d, n)).st_mode)]
    expect(socks == [], "no socket is created with status_socket = off", [], socks)
    rc, out, err = _health(gw)
    expect(rc == 1 and "status_socket = off" in err and "cannot be asked" in err
           and not out, "--health says the socket is off, not that the daemon is down",
           "exit 1, 'the status socket is off (status_socket = off), so the daemon "
           "cannot be asked …'", (rc, out, err))
    gw.stop()


if __name__ == "__main__":
    import netns
    netns.enter()
    harness.main()
