"""ejabberd.yml for a test ejabberd: a minimal base (what any ejabberd
operator already has: hosts, certificates, a c2s listener, the usual
modules) with deploy/ejabberd.yml.example merged in as its header tells an
operator to: its `listen:` entries appended, its `acl:`, `access_rules:`
and `modules:` entries added.  The example is changed mechanically and
only in names, secret, ports and the upload directory; a name the base
already defines differently fails the merge instead of being overwritten.
"""
import os

import yaml

import servers
from harness import TestFailure


def _base(srv, log_level):
    return {
        "hosts": list(srv.hosts),
        "loglevel": log_level,
        "log_rotate_count": 0,
        "certfiles": [srv.pem],
        "ca_file": srv.ca_file,
        "auth_password_format": "scram",
        "listen": [{
            "port": srv.c2s_port,
            "ip": "127.0.0.1",
            "module": "ejabberd_c2s",
            "max_stanza_size": 262144,
            "access": "c2s",
            "starttls_required": True,
        }],
        "acl": {
            "local": {"user_regexp": ""},
            "loopback": {"ip": ["127.0.0.0/8", "::1/128"]},
        },
        "access_rules": {
            "local": {"allow": "local"},
            "c2s": {"allow": "all"},
            "pubsub_createnode": {"allow": "local"},
        },
        "modules": {
            "mod_adhoc": {},
            "mod_admin_extra": {},
            "mod_avatar": {},
            "mod_blocking": {},
            "mod_caps": {},
            "mod_carboncopy": {},
            "mod_client_state": {},
            "mod_disco": {},
            "mod_last": {},
            "mod_ping": {},
            "mod_privacy": {},
            "mod_private": {},
            "mod_pubsub": {"access_createnode": "pubsub_createnode",
                           "plugins": ["flat", "pep"]},
            "mod_roster": {"versioning": True},
            "mod_stream_mgmt": {},
            "mod_vcard": {"search": False},
            "mod_vcard_xupdate": {},
            "mod_version": {},
        },
    }


def example_text(srv):
    """deploy/ejabberd.yml.example with our names, secret, ports, paths."""
    with open(servers.EJABBERD_EXAMPLE) as f:
        text = f.read()
    for old, new in (("barev.example.org", srv.component),
                     ("upload.example.org", srv.upload_service),
                     ("example.org", srv.domain),
                     (servers.EXAMPLE_SECRET, srv.secret),
                     ("5347", str(srv.component_port)),
                     ("5443", str(srv.https_port)),
                     ("/var/lib/ejabberd/upload", os.path.join(srv.dir, "upload"))):
        if old not in text:
            raise TestFailure("deploy/ejabberd.yml.example no longer contains %r" % old)
        text = text.replace(old, new)
    return text


def config(srv, log_level):
    base = _base(srv, log_level)
    example = yaml.safe_load(example_text(srv))
    for key, value in example.items():
        if key == "listen":
            base["listen"] += value
        elif key in ("acl", "access_rules", "modules"):
            for name, v in value.items():
                if name in base[key] and base[key][name] != v:
                    raise TestFailure("ejabberd.yml.example's %s %s clashes with the "
                                      "base config's" % (key, name))
                base[key][name] = v
        else:
            raise TestFailure("ejabberd.yml.example has a top-level %r the merge "
                              "does not know" % key)
    return ("# test ejabberd: minimal base + deploy/ejabberd.yml.example "
            "(tests/integration/ejabberdconf.py)\n"
            + yaml.safe_dump(base, default_flow_style=False, sort_keys=False))
