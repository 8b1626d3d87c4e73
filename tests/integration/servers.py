"""The XMPP servers integration tests run: Prosody and ejabberd, each
configured from the files we ship, the way an operator installs them.

- Prosody: Debian's stock /etc/prosody/prosody.cfg.lua, copied, with only
  paths, ports and run_as_root changed line by line (an option is replaced
  where it stands or added once, never set twice), and prosody.cfg.example
  as the one file in conf.d/ (the stock config's `Include "conf.d/*.cfg.lua"`),
  verbatim but for the domain names and the secret.
- ejabberd: a minimal ejabberd.yml (hosts, certificates, a c2s listener,
  the usual modules) with deploy/ejabberd.yml.example merged into it
  section by section; only ports and the upload directory are changed.
  Started in the foreground as our own child (never the system service),
  Erlang distribution on a fixed loopback port without epmd.

Both use TLS as shipped: a throw-away CA per run signs each server's
certificate, SSL_CERT_FILE points this process and its children at it, and
the server names resolve to 127.0.0.1 through a private /etc/hosts bind-
mounted in the test's own mount namespace (tests/lib/netns.py).

`server_kind()` is BAREV_TEST_SERVER (prosody | ejabberd, default prosody);
`Server(tmpdir, ...)` makes one of that kind.
"""
import os
import re
import secrets
import shutil
import subprocess
import time

import harness
from harness import TestFailure, _spawn, _stop_proc, free_port, _port_open, tail

STOCK_PROSODY_CFG = "/etc/prosody/prosody.cfg.lua"
PROSODY_EXAMPLE = os.path.join(harness.SOURCE_DIR, "prosody.cfg.example")
EJABBERD_EXAMPLE = os.path.join(harness.SOURCE_DIR, "deploy", "ejabberd.yml.example")
EXAMPLE_SECRET = "change-me-barev-component-secret"


def server_kind():
    kind = os.environ.get("BAREV_TEST_SERVER", "prosody")
    if kind not in ("prosody", "ejabberd"):
        raise TestFailure("BAREV_TEST_SERVER=%s: expected prosody or ejabberd" % kind)
    return kind


def Server(tmpdir, **kw):
    """A server of the kind this run tests (see server_kind())."""
    return (Ejabberd if server_kind() == "ejabberd" else Prosody)(tmpdir, **kw)


# ---------------------------------------------------------------- TLS + names

_ca = None
_hosts = set()


def _openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    if r.returncode != 0:
        raise TestFailure("openssl %s failed: %s" % (args[0], r.stderr))


def ca():
    """(cert, key) of this run's throw-away CA; made once.  SSL_CERT_FILE
    makes it the trust store of this process (urllib, slixmpp) and of every
    child (the gateway's OpenSSL), as an operator with a private CA does."""
    global _ca
    if _ca is None:
        d = harness.tmpdir("ca")
        crt, key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", key, "-out", crt, "-days", "365",
                 "-subj", "/CN=barev-gateway test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _ca = (crt, key)
        os.environ["SSL_CERT_FILE"] = crt
    return _ca


def certificate(d, names):
    """A key and a certificate for `names` (each also as *.name) signed by
    the run's CA, in directory d: returns (crt, key)."""
    ca_crt, ca_key = ca()
    os.makedirs(d, exist_ok=True)
    key, csr, crt = (os.path.join(d, "server." + x) for x in ("key", "csr", "crt"))
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                % ",".join("DNS:%s,DNS:*.%s" % (n, n) for n in names))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0])
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
             "-CAcreateserial", "-days", "365", "-out", crt, "-extfile", ext)
    return crt, key


def resolve_to_loopback(names):
    """Make `names` resolve to 127.0.0.1 for everything in this test (the
    gateway's resolver, urllib, ejabberd's) via a private /etc/hosts —
    only inside the mount namespace netns.enter() made.  Outside one (the
    demo) the names must resolve already."""
    import netns
    _hosts.update(names)
    if not netns.private_mounts():
        return
    netns.set_hosts({"127.0.0.1": sorted(_hosts)})


def _check_names(names):
    import socket
    for n in names:
        try:
            addrs = {a[4][0] for a in socket.getaddrinfo(n, None)}
        except OSError:
            addrs = set()
        if not addrs & {"127.0.0.1", "::1"}:
            raise TestFailure("%s does not resolve to loopback (%s): run the test "
                              "through netns.enter(), or add it to /etc/hosts"
                              % (n, sorted(addrs)))


def _wait_ports(proc, ports, what, log_path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise TestFailure("%s exited with %s during start:\n%s"
                              % (what, proc.returncode, tail(log_path, 40)))
        if all(_port_open(p) for p in ports):
            return
        if time.monotonic() > deadline:
            raise TestFailure("%s not listening on %s after %ss:\n%s"
                              % (what, ports, timeout, tail(log_path, 40)))
        time.sleep(0.05)


class _Base:
    kind = None

    def __init__(self, tmpdir, domain, component, secret, ports):
        ports = ports or {}
        self.dir = tmpdir
        self.domain = domain
        self.component = component
        self.secret = secret
        self.upload_service = "upload." + domain
        self.c2s_port = free_port(ports.get("c2s"))
        self.component_port = free_port(ports.get("component"))
        self.http_port = free_port(ports.get("http"))
        self.https_port = free_port(ports.get("https"))
        self.proc = None
        self.ca_file = ca()[0]

    def restart(self):
        self.stop()
        self.start()

    def stop(self, timeout=10):
        if self.proc:
            _stop_proc(self.proc, timeout)
            self.proc = None


# ---------------------------------------------------------------- Prosody

_stock_ok = set()


def _check_stock(path, text):
    """The copy must start from the file as the package shipped it: a
    locally edited prosody.cfg.lua would test a world nobody installs."""
    if path in _stock_ok:
        return
    import hashlib
    r = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}\n", "prosody"],
                       capture_output=True, text=True, timeout=30)
    shipped = {ln.split()[0]: ln.split()[1] for ln in r.stdout.splitlines()
               if len(ln.split()) >= 2}
    have = hashlib.md5(text.encode()).hexdigest()
    if shipped.get(path) != have:
        raise TestFailure("%s is not the prosody package's own (md5 %s, the package "
                          "says %s): the tests start from the stock file; restore it "
                          "(apt-get install --reinstall -o Dpkg::Options::=--force-confask "
                          "prosody)" % (path, have, shipped.get(path)))
    _stock_ok.add(path)

# Options the stock config leaves at their defaults that a private test
# server must set: where state lives, which ports, running as root.  Each
# goes in once, right after the stock pidfile line; the harness fails if
# the stock file ever sets one of them itself (then it must be replaced
# where it stands instead: Prosody 0.12 dies on an option set twice).
_PROSODY_ADDED = ("run_as_root", "data_path", "c2s_ports", "c2s_direct_tls_ports",
                  "s2s_ports", "s2s_direct_tls_ports", "component_ports",
                  "http_ports", "https_ports")


class Prosody(_Base):
    """A private Prosody from Debian's stock config + prosody.cfg.example.

    Users on `domain`; the component `component` (secret `secret`) gets
    what the example grants; the upload service is `upload_service`
    (https://upload.DOMAIN:https_port/...).  `ports` may ask for preferred
    ports: {"c2s": 5222, "component": 5347, "http": 5280, "https": 5281}.
    `domains` are more user domains (a test fixture: a VirtualHost each, in
    a conf.d file of their own, nothing else); `extra` is Lua for that file,
    for a test fixture only, never a setting the example lacks.
    `bench_upload` ({option: Lua value}) is for benches only, never tests:
    it changes the example's upload component (a line replaced where the
    example sets the option, else added once).
    """
    kind = "prosody"

    def __init__(self, tmpdir, domain=harness.DOMAIN, component=harness.COMPONENT,
                 secret=harness.SECRET, ports=None, log_level="debug", domains=(),
                 extra="", bench_upload=None):
        super().__init__(tmpdir, domain, component, secret, ports)
        self.bench_upload = bench_upload or {}
        extra = "".join('VirtualHost "%s"\n' % d for d in domains) + extra
        self.config_path = os.path.join(tmpdir, "prosody.cfg.lua")
        self.log_path = os.path.join(tmpdir, "prosody.log")
        os.makedirs(os.path.join(tmpdir, "data"), exist_ok=True)
        os.makedirs(os.path.join(tmpdir, "conf.d"), exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(self._global(log_level))
        with open(os.path.join(tmpdir, "conf.d", "barev.cfg.lua"), "w") as f:
            f.write(self.example_text())
        names = [domain] + re.findall(r'^VirtualHost "([^"]+)"', extra, re.M)
        if extra:
            with open(os.path.join(tmpdir, "conf.d", "zz-test-fixture.cfg.lua"), "w") as f:
                f.write("-- test fixture (see the test that asked for it)\n" + extra)
        # certificates = "certs" (relative to the config): one file per
        # host; subdomains (upload.*, barev.*) use their parent's.
        crt, key = certificate(os.path.join(tmpdir, "certs"), names)
        for n in names:
            shutil.copy(crt, os.path.join(tmpdir, "certs", n + ".crt"))
            shutil.copy(key, os.path.join(tmpdir, "certs", n + ".key"))
        resolve_to_loopback(names + [component, self.upload_service])
        # download_hosts pins scheme, host and port (issue 15)
        self.download_host = "https://%s:%d/" % (self.upload_service, self.https_port)
        harness._logs.append(("prosody", self.log_path))

    def _global(self, log_level):
        with open(STOCK_PROSODY_CFG) as f:
            text = f.read()
        _check_stock(STOCK_PROSODY_CFG, text)
        for opt in _PROSODY_ADDED:
            if re.search(r"^\s*%s\s*=" % opt, text, re.M):
                raise TestFailure("%s now sets %s: replace it where it stands"
                                  % (STOCK_PROSODY_CFG, opt))
        d = self.dir
        added = ('run_as_root = true -- test: Prosody runs as our child, as root\n'
                 'data_path = "%s/data"\n'
                 'c2s_ports = { %d }\nc2s_direct_tls_ports = { }\n'
                 's2s_ports = { }\ns2s_direct_tls_ports = { }\n'
                 'component_ports = { %d }\nhttp_ports = { %d }\nhttps_ports = { %d }\n'
                 % (d, self.c2s_port, self.component_port, self.http_port,
                    self.https_port))
        edits = [
            (r'^pidfile = .*$', 'pidfile = "%s/prosody.pid";\n%s' % (d, added)),
            (r'^log = \{\n(?:.*\n)*?\}$',
             'log = {\n\t{ levels = { min = "%s" }, to = "file", filename = "%s/prosody.log" };\n}'
             % (log_level, d)),
        ]
        for rx, new in edits:
            text, n = re.subn(rx, lambda _m: new, text, count=1, flags=re.M)
            if n != 1:
                raise TestFailure("%s no longer has a line /%s/ to replace"
                                  % (STOCK_PROSODY_CFG, rx))
        if 'Include "conf.d/*.cfg.lua"' not in text:
            raise TestFailure("%s no longer includes conf.d/*.cfg.lua" % STOCK_PROSODY_CFG)
        return text

    def example_text(self):
        """prosody.cfg.example with our names and secret, nothing else."""
        with open(PROSODY_EXAMPLE) as f:
            text = f.read()
        names = {"example.org": self.domain, "barev.example.org": self.component,
                 "upload.example.org": self.upload_service}
        text = re.sub(r'"((?:barev\.|upload\.)?example\.org)"',
                      lambda m: '"%s"' % names[m.group(1)], text)
        if EXAMPLE_SECRET not in text:
            raise TestFailure("prosody.cfg.example no longer has the secret %s"
                              % EXAMPLE_SECRET)
        text = text.replace(EXAMPLE_SECRET, self.secret)
        for opt, value in self.bench_upload.items():
            line = "\t%s = %s -- bench only\n" % (opt, value)
            text, n = re.subn(r"^\s*%s\s*=.*\n" % opt, lambda _m: line, text, flags=re.M)
            if n == 0:      # the upload component is the example's last section
                text = text.rstrip("\n") + "\n" + line
        return text

    def start(self, timeout=15):
        """Start and wait until c2s and component ports accept connections."""
        self.proc = _spawn(["prosody", "-F", "--config", self.config_path],
                           os.path.join(self.dir, "prosody.stdout"))
        _wait_ports(self.proc, [self.c2s_port, self.component_port], "prosody",
                    self.log_path, timeout)

    def create_user(self, name, password, domain=None):
        """Register name@domain (works whether or not Prosody runs);
        `domain` another VirtualHost of this Prosody (see `extra`)."""
        domain = domain or self.domain
        r = subprocess.run(["prosodyctl", "--config", self.config_path,
                            "register", name, domain, password],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise TestFailure("prosodyctl register %s@%s failed: %s%s"
                              % (name, domain, r.stdout, r.stderr))
        return "%s@%s" % (name, domain)


# ---------------------------------------------------------------- ejabberd

EJABBERD_LIBS = "/usr/lib/x86_64-linux-gnu"


class Ejabberd(_Base):
    """A private ejabberd (Debian's 23.01) from a minimal config with
    deploy/ejabberd.yml.example merged in; see module docstring.

    The upload service is upload.DOMAIN; files are served from DOMAIN
    (put_url "https://@HOST@:PORT/upload"), so download_host is
    https://DOMAIN:PORT/upload/.
    `domains` (a test fixture) are more hosts.
    """
    kind = "ejabberd"

    def __init__(self, tmpdir, domain=harness.DOMAIN, component=harness.COMPONENT,
                 secret=harness.SECRET, ports=None, log_level=None, domains=()):
        super().__init__(tmpdir, domain, component, secret, ports)
        # BAREV_EJABBERD_LOGLEVEL=debug logs every stanza (for a hunt)
        log_level = log_level or os.environ.get("BAREV_EJABBERD_LOGLEVEL", "info")
        self.hosts = [domain] + list(domains)
        self.config_path = os.path.join(tmpdir, "ejabberd.yml")
        self.log_path = os.path.join(tmpdir, "ejabberd.log")
        self.spool = os.path.join(tmpdir, "spool")
        self.node = "ejabberd@localhost"
        self.dist_port = free_port()
        self.cookie = secrets.token_hex(16)
        os.makedirs(self.spool, exist_ok=True)
        crt, key = certificate(os.path.join(tmpdir, "certs"), self.hosts)
        self.pem = os.path.join(tmpdir, "certs", "server.pem")
        with open(self.pem, "w") as out:
            for p in (crt, key):
                with open(p) as f:
                    out.write(f.read())
        import ejabberdconf
        with open(self.config_path, "w") as f:
            f.write(ejabberdconf.config(self, log_level))
        resolve_to_loopback(self.hosts + [component, self.upload_service])
        # download_hosts pins scheme, host and port (issue 15)
        self.download_host = "https://%s:%d/upload/" % (domain, self.https_port)
        self._ctl_n = 0
        harness._logs.append(("ejabberd", self.log_path))

    def _erl_env(self):
        env = dict(os.environ)
        env.update(ERL_LIBS=EJABBERD_LIBS, EJABBERD_CONFIG_PATH=self.config_path,
                   EJABBERD_LOG_PATH=self.log_path,
                   ERL_CRASH_DUMP=os.path.join(self.dir, "erl_crash.dump"),
                   ERL_CRASH_DUMP_BYTES="0", ERL_INETRC="/etc/ejabberd/inetrc",
                   HOME=self.dir)
        return env

    def _erl(self, name, *args):
        # Distribution on a fixed port, no epmd: nothing outlives the test.
        return ["erl", "-sname", name, "-setcookie", self.cookie,
                "-erl_epmd_port", str(self.dist_port), "-start_epmd", "false",
                "-kernel", "inet_dist_use_interface", "{127,0,0,1}"] + list(args)

    def start(self, timeout=60):
        """Start `erl -s ejabberd` in the foreground; wait for c2s + component."""
        argv = self._erl(self.node, "-noinput", "+K", "true", "+P", "250000",
                         "-mnesia", "dir", '"%s"' % self.spool, "-s", "ejabberd")
        self.proc = _spawn(argv, os.path.join(self.dir, "ejabberd.stdout"),
                           env=self._erl_env(), cwd=self.spool)
        _wait_ports(self.proc, [self.c2s_port, self.component_port], "ejabberd",
                    self.log_path, timeout)

    def stop(self, timeout=20):
        # SIGTERM makes the BEAM stop ejabberd cleanly (init:stop).
        super().stop(timeout)

    def ctl(self, *args, timeout=60):
        """ejabberdctl ARGS against this node (its ejabberd_ctl, run the
        way ejabberdctl runs it); returns stdout, fails on exit != 0."""
        self._ctl_n += 1
        argv = self._erl("ctl%d@localhost" % self._ctl_n, "-hidden", "-noinput",
                         "-dist_listen", "false", "-s", "ejabberd_ctl",
                         "-extra", self.node) + [str(a) for a in args]
        r = subprocess.run(argv, env=self._erl_env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if r.returncode != 0:
            raise TestFailure("ejabberdctl %s: exit %d %s%s"
                              % (" ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def create_user(self, name, password, domain=None):
        """Register name@domain; ejabberd must be running."""
        domain = domain or self.domain
        self.ctl("register", name, domain, password)
        return "%s@%s" % (name, domain)
