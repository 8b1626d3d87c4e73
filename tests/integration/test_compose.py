#!/usr/bin/python3
"""Issue 10, optional (BAREV_TEST_COMPOSE=1): deploy/compose.yaml runs.

The compose file is brought up as shipped, with Debian's podman-compose,
from images built on the locally debootstrapped bookworm base (no registry
is reachable): Prosody (deploy/prosody.Containerfile) with Debian's own
stock prosody.cfg.lua from that image and prosody.cfg.example as
barev.cfg.lua (only the secret replaced), the gateway (deploy/Containerfile)
with a gateway.conf beside it, both with host networking inside this test's
network namespace.  Then: the compose health check passes, `--health` in
the container says ok, and alice (STARTTLS against a certificate made here)
sends the gateway a message through Prosody and gets its answer; the health
check fails once Prosody is stopped.  `podman-compose down -v` cleans up.

The images are built with podman-compose.  Debian 12's podman-compose
(1.0.3) cannot start network_mode: host services at all (it adds its
default network; podman: "cannot set multiple networks without bridge
network mode"; fixed in 1.0.6), so with it `up`/`down` go through Debian's
docker-compose (1.29) talking to podman's API socket; the test says so.
BAREV_COMPOSE_TOOL=podman-compose|docker-compose forces one.

Without BAREV_TEST_COMPOSE=1 it prints SKIP and exits 77 (CTest: skipped).
Needs root, podman, podman-compose, debootstrap, runc (+ docker-compose
while podman-compose is older than 1.0.6).
"""
# ctest: timeout=1800
import asyncio
import os
import re
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

ENABLED = os.environ.get("BAREV_TEST_COMPOSE") == "1"
if not ENABLED:
    print("SKIP compose test: set BAREV_TEST_COMPOSE=1 (needs podman, podman-compose, "
          "debootstrap, runc; brings deploy/compose.yaml up from a debootstrapped bookworm)",
          flush=True)
    sys.exit(77)

import harness                                   # noqa: E402
from harness import TestFailure, expect, expect_eq  # noqa: E402
from test_demo import Server, TlsClient            # noqa: E402
from barevworld import chat                      # noqa: E402

SRC = harness.SOURCE_DIR
BASE_IMAGE = "localhost/barev-debian:bookworm"
PROJECT = "barevcompose"
SECRET = "compose-test-secret-%d" % os.getpid()
# one work dir for both processes (outside and inside the namespace)
WORK = os.environ.get("BAREV_COMPOSE_WORK") or "/var/tmp/barev-compose-test-%d" % os.getpid()
os.environ["BAREV_COMPOSE_WORK"] = WORK
PROJECT_DIR = os.path.join(WORK, "src")
COMPOSE = os.path.join(PROJECT_DIR, "deploy", "compose.yaml")
GATEWAY = "%s_barev-gateway_1" % PROJECT
PROSODY = "%s_prosody_1" % PROJECT


def containers_conf():
    """podman's default ulimits (nofile 1048576) are above what a host
    without CAP_SYS_RESOURCE (like the test machine) lets runc set, and the
    compose file should not carry a test machine's limits: a
    containers.conf for this test with our own hard limits instead."""
    path = os.path.join(WORK, "containers.conf")
    if not os.path.exists(path):
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # (runc refused the host's full nproc hard limit here; 4096 is plenty)
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
        os.makedirs(WORK, exist_ok=True)
        with open(path, "w") as f:
            f.write("[containers]\ndefault_ulimits = [\"nofile=%d:%d\", \"nproc=%d:%d\"]\n"
                    % (nofile, nofile, nproc, nproc))
    return path


def env():
    e = dict(os.environ)
    e.update({"CONTAINERS_CONF": containers_conf(),
              "BAREV_BASE_IMAGE": BASE_IMAGE,
              "BAREV_PROSODY_CFG": os.path.join(WORK, "prosody.cfg.lua"),
              "BAREV_PROSODY_CERTS": os.path.join(WORK, "certs")})
    return e


def run(argv, timeout=900, check=True, extra_env=None):
    e = env()
    e.update(extra_env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=e)
    if check and r.returncode != 0:
        raise TestFailure("%s failed (%d):\n%s%s" % (" ".join(argv), r.returncode,
                                                      r.stdout[-3000:], r.stderr[-3000:]))
    return r


def podman_compose_works():
    """podman-compose before 1.0.6 (Debian 12 has 1.0.3) adds its default
    network to every container, also to network_mode: host ones, and podman
    refuses: "cannot set multiple networks without bridge network mode"
    (containers/podman-compose#397, #961; fixed in 1.0.6)."""
    r = subprocess.run(["podman-compose", "version"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    m = re.search(r"podman-compose(?:r)? version:?\s+(\d+)\.(\d+)\.(\d+)", r.stdout + r.stderr)
    return bool(m) and tuple(int(x) for x in m.groups()) >= (1, 0, 6), \
        (m.group(0) if m else (r.stdout + r.stderr)[-200:])


def tool():
    """How `up`/`down` run: BAREV_COMPOSE_TOOL (podman-compose or
    docker-compose), else podman-compose if it can, else Debian's
    docker-compose against podman's API socket (see podman_compose_works)."""
    t = os.environ.get("BAREV_COMPOSE_TOOL")
    if t:
        return t
    return "podman-compose" if podman_compose_works()[0] else "docker-compose"


SOCKET = os.path.join(WORK, "podman.sock")


def compose(*args, timeout=900, check=True, using=None):
    t = using or tool()
    e = {"DOCKER_HOST": "unix://" + SOCKET} if t == "docker-compose" else {}
    return run([t, "-p", PROJECT, "-f", COMPOSE] + list(args),
               timeout=timeout, check=check, extra_env=e)


def podman(*args, timeout=300, check=True):
    return run(["podman", "--runtime", "runc"] + list(args), timeout=timeout, check=check)


def prepare():
    """Outside the network namespace (builds install Debian packages): the
    base image, a copy of the source tree as the compose project with what
    its header says to put beside it, and both images."""
    for t in ("podman", "podman-compose", "debootstrap", "runc", "openssl", tool()):
        if not shutil.which(t):
            sys.exit("BAREV_TEST_COMPOSE=1 needs %s: apt-get install podman podman-compose "
                     "debootstrap runc openssl (and docker-compose while podman-compose "
                     "is older than 1.0.6)" % t)
    ok, version = podman_compose_works()
    if tool() == "docker-compose":
        print("%s cannot start network_mode: host services (it adds its default network: "
              "\"cannot set multiple networks without bridge network mode\"; fixed in "
              "podman-compose 1.0.6): builds with podman-compose, up/down with Debian's "
              "docker-compose through podman's API socket" % version, flush=True)
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        subprocess.run(["bash", os.path.join(SRC, "deploy", "container-base.sh"), BASE_IMAGE],
                       check=True, timeout=1200, stdin=subprocess.DEVNULL)
    shutil.rmtree(WORK, ignore_errors=True)
    containers_conf()
    shutil.copytree(SRC, PROJECT_DIR, symlinks=True,
                    ignore=lambda d, names: [n for n in names
                                             if n.startswith("build") or n == ".git"])
    deploy = os.path.join(PROJECT_DIR, "deploy")
    # "cp ../prosody.cfg.example barev.cfg.lua  # edit: domain, secret"
    with open(os.path.join(SRC, "prosody.cfg.example")) as f:
        example = f.read()
    expect("change-me-barev-component-secret" in example, "the example's placeholder secret")
    with open(os.path.join(deploy, "barev.cfg.lua"), "w") as f:
        f.write(example.replace("change-me-barev-component-secret", SECRET))
    # the gateway's file: the image's paths, the same secret, open
    # registration so alice can run "register" (uid 10001 must read it)
    conf = os.path.join(deploy, "gateway.conf")
    with open(conf, "w") as f:
        f.write("component_jid = barev.example.org\n"
                "component_secret = %s\n"
                "database = /var/lib/barev-gateway/gateway.sqlite\n"
                "spool_dir = /var/lib/barev-gateway/spool\n"
                "admins = admin@example.org\n"
                "registration = open\n"
                "barev_address = 201:1::1\n"
                "upload_service = upload.example.org\n"
                "download_hosts = upload.example.org\n" % SECRET)
    os.chmod(conf, 0o644)
    # a certificate for example.org (Prosody's stock config requires
    # STARTTLS); readable by the container's prosody user
    certs = os.path.join(WORK, "certs")
    os.makedirs(certs)
    for host in ("example.org", "upload.example.org"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                        "-keyout", os.path.join(certs, host + ".key"),
                        "-out", os.path.join(certs, host + ".crt"), "-subj", "/CN=" + host,
                        "-addext", "subjectAltName=DNS:" + host],
                       check=True, capture_output=True, timeout=60)
    for n in os.listdir(certs):
        os.chmod(os.path.join(certs, n), 0o644)
    os.chmod(certs, 0o755)
    os.chmod(WORK, 0o755)
    t0 = time.monotonic()
    # the build part of compose.yaml works with podman-compose 1.0.3 too
    compose("build", timeout=1800, using="podman-compose")
    print("compose images built in %.0fs" % (time.monotonic() - t0), flush=True)
    # Debian's stock main config, exactly as the prosody package installs it
    r = podman("run", "--rm", "--entrypoint", "cat", "localhost/barev-prosody",
               "/etc/prosody/prosody.cfg.lua")
    with open(os.path.join(WORK, "prosody.cfg.lua"), "w") as f:
        f.write(r.stdout)
    os.chmod(os.path.join(WORK, "prosody.cfg.lua"), 0o644)


async def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r:
            return r
        if time.monotonic() > deadline:
            raise TestFailure("%s: not within %ss" % (what, timeout))
        await asyncio.sleep(0.5)


def logs():
    out = []
    for c in (PROSODY, GATEWAY):
        r = podman("logs", c, check=False)
        out.append("---- %s\n%s%s" % (c, r.stdout[-3000:], r.stderr[-3000:]))
    r = podman("exec", PROSODY, "tail", "-n", "30", "/var/log/prosody/prosody.log", check=False)
    out.append("---- prosody.log\n" + r.stdout + r.stderr)
    return "\n".join(out)


async def setup():
    if tool() == "docker-compose":
        # in this namespace: host networking is the namespace's
        harness._spawn(["podman", "system", "service", "--time=0", "unix://" + SOCKET],
                       os.path.join(WORK, "podman-service.log"), env=env())
        await wait_for("podman's API socket", lambda: os.path.exists(SOCKET), 30)
    compose("up", "-d", "--no-build", timeout=300)
    try:
        await wait_for("prosody's c2s and component ports",
                       lambda: harness._port_open(5222) and harness._port_open(5347), 60)
        podman("exec", PROSODY, "prosodyctl", "register", "alice", "example.org", "alice")
    except TestFailure as e:
        raise TestFailure("%s\n%s" % (e, logs()))
    return {}


async def test_the_compose_health_check_passes():
    try:
        await wait_for("the gateway's compose health check",
                       lambda: podman("healthcheck", "run", GATEWAY, check=False).returncode == 0,
                       90)
    except TestFailure as e:
        raise TestFailure("%s\n%s" % (e, logs()))
    r = podman("exec", GATEWAY, "barev-gateway", "--config", "/etc/barev-gateway/gateway.conf",
               "--health")
    expect(r.stdout.startswith("ok: component link up as barev.example.org"),
           "--health inside the gateway's container", "ok: …", r.stdout)
    r = podman("inspect", "--format", "{{.Config.User}}", GATEWAY)
    expect(r.stdout.strip() not in ("", "root", "0", "0:0"), "the gateway runs as a non-root "
           "user", "barev-gateway", r.stdout.strip())


async def test_a_message_goes_through_prosody_and_the_gateway(ctx):
    alice = TlsClient("alice@example.org", "alice", Server({"c2s_port": "5222",
                                                            "host": "127.0.0.1"}),
                      os.path.join(WORK, "certs", "example.org.crt"))
    await alice.connect_and_wait()
    body = await chat(alice, "register alice", timeout=15)
    expect("alice@201:1::1" in body, "the gateway in its container answers alice",
           "… alice@201:1::1 …", body)
    body = await chat(alice, "whoami", timeout=15)
    expect("alice@201:1::1" in body, "her identity is in the container's database",
           "alice@201:1::1", body)
    await alice.close()


async def test_the_health_check_fails_without_prosody(ctx):
    compose("stop", "prosody", timeout=120)
    await wait_for("the health check failing without Prosody",
                   lambda: podman("healthcheck", "run", GATEWAY, check=False).returncode != 0, 60)
    compose("start", "prosody", timeout=120)
    await wait_for("healthy again once Prosody is back",
                   lambda: podman("healthcheck", "run", GATEWAY, check=False).returncode == 0, 90)


async def teardown(ctx):
    compose("down", "-v", timeout=300)
    r = podman("ps", "-a", "--format", "{{.Names}}")
    expect(PROJECT not in r.stdout, "down removed the containers", "none", r.stdout)


if __name__ == "__main__":
    if os.environ.get("BAREV_TEST_NETNS") in (None, ""):
        try:
            prepare()
            import netns
            netns.enter(["201:1::1"])      # re-execs under unshare -n and exits
        finally:
            # the inner run cannot clean up after a failure: do it here
            podman("rm", "-f", GATEWAY, PROSODY, check=False)
            for v in ("prosody-data", "barev-state"):
                podman("volume", "rm", "-f", "%s_%s" % (PROJECT, v), check=False)
            shutil.rmtree(WORK, ignore_errors=True)
    import netns
    netns.enter(["201:1::1"])
    harness.main(test_timeout=300)
