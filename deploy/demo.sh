#!/usr/bin/env bash
# Try barev-gateway on one machine: installs what is missing, builds, starts
# a private Prosody on 127.0.0.1 (from a temp dir; the system's Prosody, if
# any, is left alone) and runs the gateway in the foreground.  Ctrl-C stops
# everything and removes the temp dir.
#
#   bash deploy/demo.sh
#
# Env: DEMO_BAREV_ADDR  the 200::/7 address alice's Barev identity gets
#                       (default 200:d::1; add it to lo to let peers dial in)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)

bash tests/run.sh --deps-only
echo "=== building (release) in build/"
cmake -S "$SRC" -B build -DCMAKE_BUILD_TYPE=Release -DBAREV_SANITIZE=OFF -DBAREV_WERROR=OFF >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target barev-gateway
BIN=$(find build -type f -name barev-gateway -perm -u+x | head -n1)
[ -n "$BIN" ] || { echo "build produced no barev-gateway" >&2; exit 1; }

export BAREV_GATEWAY_BIN=$SRC/$BIN BAREV_SOURCE_DIR=$SRC
export DEMO_BAREV_ADDR=${DEMO_BAREV_ADDR:-200:d::1}
exec /usr/bin/python3 - <<'PY'
import os, signal, subprocess, sys
sys.path.insert(0, os.path.join(os.environ["BAREV_SOURCE_DIR"], "tests", "integration"))
import harness
from harness import Gateway, Prosody

src = os.environ["BAREV_SOURCE_DIR"]
addr = os.environ["DEMO_BAREV_ADDR"]
# Debian's stock prosody.cfg.lua + prosody.cfg.example, as the tests run it
# (tests/integration/servers.py): STARTTLS required, uploads over https.
p = Prosody(harness.tmpdir("prosody"),
            ports={"c2s": 5222, "component": 5347, "http": 5280, "https": 5281},
            log_level="info")
p.start()
p.create_user("alice", "alice")
p.create_user("admin", "admin")
# The demo's gateway: production timers, open registration so alice can
# sign herself up, her identity on DEMO_BAREV_ADDR.
cfg = {k: None for k in harness.TEST_TIMERS}
cfg.update({"log_level": "info", "registration": "open", "barev_address": addr})
gw = Gateway(p, harness.tmpdir("gateway"), config=cfg)

print(f"""
================================================================ barev-gateway demo
XMPP server   127.0.0.1 port {p.c2s_port}  (STARTTLS; domain example.org)
TLS           certificates from a throw-away CA: {p.ca_file}
              (trust it in your client; example.org and {p.upload_service}
              must resolve to 127.0.0.1, e.g. a line in /etc/hosts)
users         alice@example.org / alice      admin@example.org / admin (gateway admin)
gateway       {p.component}  (send it "help" in a chat, or use its ad-hoc commands)
upload        {p.upload_service}  (https://{p.upload_service}:{p.https_port}/)
files         {harness._root}
              gateway config: {gw.config_path}

A Barev test peer on loopback (as root, in another terminal):
  ip -6 addr add {addr}/128 dev lo nodad      # alice's Barev identity
  ip -6 addr add 200:d::2/128 dev lo nodad     # bob, the test peer
  /usr/bin/python3 {src}/tests/barevpeer/barevpeer.py --nick bob --addr 200:d::2 --buddy alice@{addr}
Then, as alice, chat with {p.component}: send "register alice" (your Barev
identity becomes alice@{addr}), then "add bob@200:d::2" — bob appears in your
roster; write to him.
(Remove the addresses afterwards: ip -6 addr del 200:d::2/128 dev lo, same for {addr}.)
Ctrl-C stops everything.
==================================================================================
""", flush=True)

# The gateway in the foreground: its log on this terminal; Ctrl-C reaches it.
proc = subprocess.Popen([gw.binary, "--config", gw.config_path], env=gw.env,
                        stdin=subprocess.DEVNULL)
rc = 0
try:
    rc = proc.wait()
except KeyboardInterrupt:
    print("\nstopping…", flush=True)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
finally:
    p.stop()
    print("Prosody stopped; temp dir removed.", flush=True)
sys.exit(rc if rc > 0 else 0)
PY
