#!/usr/bin/env bash
# Try barev-gateway on one machine: installs what is missing, builds, makes a
# throw-away CA and a certificate for the demo's domains, starts a private
# Prosody (from a temp dir; the system's Prosody, if any, is left alone) that
# requires STARTTLS and serves uploads over HTTPS, and runs the gateway in the
# foreground.  Ctrl-C stops everything and removes the temp dir.
#
#   bash deploy/demo.sh
#
# Env:
#   DEMO_HOST        the address clients connect to (default 127.0.0.1); for
#                    a phone (Conversations) use this machine's LAN address.
#                    Prosody listens on it; the certificate names it.
#   DEMO_BAREV_ADDR  the 200::/7 address alice's Barev identity gets
#                    (default 200:d::1; add it to lo to let peers dial in)
#   DEMO_TLS_DIR     where the CA and the certificate are kept between runs,
#                    so a client trusts them once (default build/demo-tls)
#   DEMO_DIR         put the run's files here and keep them (default: a temp
#                    dir removed at exit)
#   BAREV_GATEWAY_BIN  a built barev-gateway: skips installing and building
#                    (the integration test tests/integration/test_demo.py
#                    runs the demo this way)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)

export DEMO_HOST=${DEMO_HOST:-127.0.0.1}
export DEMO_BAREV_ADDR=${DEMO_BAREV_ADDR:-200:d::1}
export DEMO_TLS_DIR=${DEMO_TLS_DIR:-$SRC/build/demo-tls}
export DEMO_DOMAIN=example.org		# prosody.cfg.example's domains, unchanged
export BAREV_SOURCE_DIR=$SRC

# ---- the throw-away CA and the server certificate (openssl)
#
# One CA, kept in DEMO_TLS_DIR so that trusting it once (system store, a
# phone) lasts across runs.  Its name constraints let it vouch only for
# example.org and private addresses: installed in a trust store, its key on
# this disk cannot be used to impersonate anyone else.  One server
# certificate covers the XMPP domain, the upload host and DEMO_HOST (the
# upload URLs name it); it is remade when DEMO_HOST changes.
# run a command quietly, but show what it said if it fails
demo_quiet() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		echo "demo: failed: $*" >&2
		return 1
	fi
}

demo_is_ip() {
	[[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $1 == *:* ]]
}

demo_certs() {
	local dir=$1 host=$2 dom=$3 san own nc
	install -d -m 0700 "$dir"
	if demo_is_ip "$host"; then
		san="DNS:$dom,DNS:upload.$dom,IP:$host"
		if [[ $host == *:* ]]; then
			own="IP:$host/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
		else
			own="IP:$host/255.255.255.255"
		fi
	else
		san="DNS:$dom,DNS:upload.$dom,DNS:$host"
		own="DNS:$host"
	fi
	# what the CA may vouch for: the demo's domain, private and loopback
	# addresses, and DEMO_HOST (a new DEMO_HOST outside them: a new CA)
	nc="permitted;DNS:$dom,permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:10.0.0.0/255.0.0.0"
	nc+=",permitted;IP:172.16.0.0/255.240.0.0,permitted;IP:192.168.0.0/255.255.0.0"
	nc+=",permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,permitted;IP:fc00::/fe00::"
	nc+=",permitted;IP:fe80::/ffc0::,permitted;$own"
	if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ] ||
	   [ "$(cat "$dir/ca.constraints" 2>/dev/null)" != "$nc" ]; then
		echo "=== making a throw-away CA in $dir (clients must trust this one anew)"
		demo_quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
			-subj "/O=barev-gateway demo/CN=barev-gateway demo CA (throw-away)" \
			-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-addext "nameConstraints=critical,$nc"
		printf '%s' "$nc" >"$dir/ca.constraints"
		rm -f "$dir/$dom.crt"
	fi
	if [ -s "$dir/$dom.crt" ] && [ "$(cat "$dir/server.san" 2>/dev/null)" = "$san" ] &&
	   openssl x509 -in "$dir/$dom.crt" -noout -checkend $((30 * 86400)) >/dev/null; then
		return 0
	fi
	echo "=== making the server certificate for $san"
	demo_quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$dom.key" -out "$dir/server.csr" -subj "/CN=$dom"
	printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
		"$san" >"$dir/server.ext"
	demo_quiet openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-CAcreateserial -days 365 -extfile "$dir/server.ext" -out "$dir/$dom.crt"
	demo_quiet openssl verify -CAfile "$dir/ca.crt" "$dir/$dom.crt"
	printf '%s' "$san" >"$dir/server.san"
	rm -f "$dir/server.csr" "$dir/server.ext"
}

if [ -z "${BAREV_GATEWAY_BIN:-}" ]; then
	bash tests/run.sh --deps-only
	echo "=== building (release) in build/"
	cmake -S "$SRC" -B build -DCMAKE_BUILD_TYPE=Release -DBAREV_SANITIZE=OFF -DBAREV_WERROR=OFF >/dev/null
	cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target barev-gateway
	BIN=$(find build -type f -name barev-gateway -perm -u+x | head -n1)
	[ -n "$BIN" ] || { echo "build produced no barev-gateway" >&2; exit 1; }
	export BAREV_GATEWAY_BIN=$SRC/$BIN
fi
demo_certs "$DEMO_TLS_DIR" "$DEMO_HOST" "$DEMO_DOMAIN"

exec /usr/bin/python3 - <<'PY'
import ctypes, ipaddress, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time

src = os.environ["BAREV_SOURCE_DIR"]
host = os.environ["DEMO_HOST"]
addr = os.environ["DEMO_BAREV_ADDR"]
tls = os.environ["DEMO_TLS_DIR"]
dom = os.environ["DEMO_DOMAIN"]
binary = os.environ["BAREV_GATEWAY_BIN"]
component, upload = "barev." + dom, "upload." + dom
ca = os.path.join(tls, "ca.crt")
keep = bool(os.environ.get("DEMO_DIR"))
root = os.environ.get("DEMO_DIR") or tempfile.mkdtemp(prefix="barev-demo-")
os.makedirs(root, exist_ok=True)
try:
    is_ip = ipaddress.ip_address(host)
except ValueError:
    is_ip = None
url_host = "[%s]" % host if is_ip and is_ip.version == 6 else host

libc = ctypes.CDLL(None)
def die_with_us():
    libc.prctl(1, signal.SIGKILL)        # PR_SET_PDEATHSIG

def free_port(preferred, on=None):
    """`preferred` if nobody listens there (on DEMO_HOST, or `on`), else
    any free port."""
    v6 = on is None and is_ip and is_ip.version == 6
    for p in (preferred, 0):
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
        try:
            s.bind((on or (host if is_ip else ""), p))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise SystemExit("no free port on %s" % host)

def listening(h, port):
    try:
        socket.create_connection((h, port), timeout=0.5).close()
        return True
    except OSError:
        return False

c2s, comp, https = free_port(5222), free_port(5347, on="127.0.0.1"), free_port(5281)
secret = secrets.token_hex(24)
pdir, gdir = os.path.join(root, "prosody"), os.path.join(root, "gateway")
for d in (pdir, os.path.join(pdir, "data"), gdir, os.path.join(gdir, "spool")):
    os.makedirs(d, exist_ok=True)

# Prosody: the demo's own global section, then prosody.cfg.example included
# as an operator installs it (copied, the secret replaced).
with open(os.path.join(src, "prosody.cfg.example")) as f:
    example = f.read()
if "change-me-barev-component-secret" not in example:
    raise SystemExit("prosody.cfg.example has no placeholder secret to replace")
barev_cfg = os.path.join(pdir, "barev.cfg.lua")
with open(barev_cfg, "w") as f:
    f.write(example.replace("change-me-barev-component-secret", secret))
listen = '"%s"' % host if is_ip else '"*", "::"'
cfg = os.path.join(pdir, "prosody.cfg.lua")
with open(cfg, "w") as f:
    f.write(f"""-- written by deploy/demo.sh: a private Prosody for the demo
run_as_root = true
pidfile = "{pdir}/prosody.pid"
data_path = "{pdir}/data"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{pdir}/prosody.log" }} }}
admin_socket = "{pdir}/prosody.sock"
admins = {{ "admin@{dom}" }}

-- TLS: the demo CA's certificate for {dom}, upload.{dom} and {host}
certificates = "{tls}"
c2s_require_encryption = true
allow_unencrypted_plain_auth = false

interfaces = {{ {listen} }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {comp} }}
component_interfaces = {{ "127.0.0.1" }}
-- uploads over HTTPS only, at URLs naming the address clients use
http_ports = {{ }}
https_ports = {{ {https} }}
https_interfaces = {{ {listen} }}
http_host = "{host}"
http_external_url = "https://{url_host}:{https}/"

authentication = "internal_hashed"
storage = "internal"
modules_enabled = {{
\t"roster"; "saslauth"; "tls"; "disco"; "ping"; "version"; "time";
\t"pep"; "vcard4"; "vcard_legacy"; "private"; "blocklist"; "bookmarks";
\t"offline"; "mam"; "carbons"; "csi_simple"; "smacks";
\t-- (mod_privilege: prosody.cfg.example loads it on the user host itself)
}}
modules_disabled = {{ "s2s" }}

Include "{barev_cfg}"
""")

procs = []
def spawn(argv, log, **kw):
    f = open(log, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         preexec_fn=die_with_us, **kw)
    f.close()
    procs.append(p)
    return p

def stop(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

def cleanup():
    for p in reversed(procs):
        stop(p)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)

def fail(why):
    print("demo: " + why, file=sys.stderr, flush=True)
    try:
        with open(os.path.join(pdir, "prosody.log")) as f:
            print("".join(f.readlines()[-20:]), file=sys.stderr)
    except OSError:
        pass
    cleanup()
    sys.exit(1)

# Ctrl-C reaches the whole process group; SIGTERM (a wrapper, a test) ends
# the demo the same way.
signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

prosody = spawn(["prosody", "-F", "--config", cfg], os.path.join(pdir, "prosody.stdout"))
deadline = time.monotonic() + 20
while not (listening(host, c2s) and listening("127.0.0.1", comp) and listening(host, https)):
    if prosody.poll() is not None:
        fail("prosody exited (%s) during start" % prosody.returncode)
    if time.monotonic() > deadline:
        fail("prosody is not listening on %d/%d/%d after 20s" % (c2s, comp, https))
    time.sleep(0.1)
for user in ("alice", "admin"):
    r = subprocess.run(["prosodyctl", "--config", cfg, "register", user, dom, user],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        fail("prosodyctl register %s: %s%s" % (user, r.stdout, r.stderr))

# The gateway: production timers, open registration so alice can sign
# herself up, her identity on DEMO_BAREV_ADDR, and the demo CA trusted for
# its HTTPS to the upload service.
gwconf = os.path.join(gdir, "gateway.conf")
with open(gwconf, "w") as f:
    f.write(f"""# written by deploy/demo.sh
component_jid = {component}
component_secret = {secret}
server_host = 127.0.0.1
server_port = {comp}
database = {gdir}/gateway.sqlite
spool_dir = {gdir}/spool
admins = admin@{dom}
log_level = info
registration = open
barev_address = {addr}
upload_service = {upload}
download_hosts = https://{url_host}:{https}/
ca_file = {ca}
""")
os.chmod(gwconf, 0o600)

fp = subprocess.run(["openssl", "x509", "-in", os.path.join(tls, dom + ".crt"), "-noout",
                     "-fingerprint", "-sha256"], capture_output=True, text=True).stdout.strip()
fp = fp.split("=", 1)[-1]
hosts_line = "%s %s upload.%s" % (host, dom, dom)
print(f"""
================================================================ barev-gateway demo
XMPP server   {host} port {c2s}, STARTTLS required (domain {dom})
users         alice@{dom} / alice      admin@{dom} / admin (gateway admin)
gateway       {component}  (send it "help" in a chat, or use its ad-hoc commands)
upload        {upload}  (https://{url_host}:{https}/)
CA            {ca}
              server certificate SHA-256 {fp}
files         {root}
              gateway config: {gwconf}

Clients trust the demo's throw-away CA (it can vouch only for {dom} and
private addresses):
  Gajim, Dino, Profanity (this machine): add it to the system's CAs, as root
      cp {ca} /usr/local/share/ca-certificates/barev-demo-ca.crt && update-ca-certificates
    (undo: rm /usr/local/share/ca-certificates/barev-demo-ca.crt && update-ca-certificates --fresh)
    and let {dom} resolve to the server: add "{hosts_line}" to /etc/hosts
    (Dino has no host setting; Gajim: or Advanced > custom host {host} port {c2s};
    Profanity: or /connect alice@{dom} server {host} port {c2s}).
    Without the system CA, Profanity asks: compare the fingerprint above, /tls always.
  Conversations (a phone: run the demo with DEMO_HOST=<this machine's LAN address>):
    log in as alice@{dom} with hostname {host} and port {c2s} (Settings > Expert >
    extended connection settings); when it asks whether to trust the certificate,
    compare the SHA-256 fingerprint above and accept: uploads use the same certificate.
  Any tool with a CA-file option: {ca} (the gateway itself: ca_file = ...).

A Barev test peer on loopback (as root, in another terminal):
  ip -6 addr add {addr}/128 dev lo nodad      # alice's Barev identity
  ip -6 addr add 200:d::2/128 dev lo nodad     # bob, the test peer
  /usr/bin/python3 {src}/tests/barevpeer/barevpeer.py --nick bob --addr 200:d::2 --buddy alice@{addr}
Then, as alice, chat with {component}: send "register alice" (your Barev
identity becomes alice@{addr}), then "add bob@200:d::2" — bob appears in your
roster; write to him, send him a file.
(Remove the addresses afterwards: ip -6 addr del 200:d::2/128 dev lo, same for {addr}.)
Ctrl-C stops everything.
==================================================================================
""", flush=True)
# what a script needs to drive the demo (tests/integration/test_demo.py)
with open(os.path.join(root, "demo.env.tmp"), "w") as f:
    f.write("".join("%s=%s\n" % kv for kv in (
        ("host", host), ("c2s_port", c2s), ("component_port", comp), ("https_port", https),
        ("domain", dom), ("component", component), ("upload_service", upload),
        ("ca_file", ca), ("gateway_config", gwconf), ("prosody_config", cfg),
        ("prosody_log", os.path.join(pdir, "prosody.log")))))
os.rename(os.path.join(root, "demo.env.tmp"), os.path.join(root, "demo.env"))

# The gateway in the foreground: its log on this terminal; Ctrl-C reaches it.
gw = subprocess.Popen([binary, "--config", gwconf], stdin=subprocess.DEVNULL,
                      preexec_fn=die_with_us)
procs.append(gw)
rc = 0
try:
    rc = gw.wait()
except KeyboardInterrupt:
    print("\nstopping…", flush=True)
finally:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cleanup()
    print("Prosody and the gateway stopped%s." % ("" if keep else "; temp dir removed"),
          flush=True)
sys.exit(rc if rc > 0 else 0)
PY
