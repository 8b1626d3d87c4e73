#!/usr/bin/env python3
"""Calls point one way too (issue 11): the built libraries, read with nm.

layering.py checks what each layer includes.  A function can still be
called against the order without its header (a declaration written by
hand, or a header of a lower layer declaring a function a higher one
defines).  This check reads the symbols each layer's static library needs
(`nm -u`) and the ones each defines, and fails when a layer's library
needs a function or object that only a layer it may not use defines.

    calls.py --build DIR [--root DIR]   exit 0 = clean, 1 = violations
    calls.py --build DIR --self-test    plants a call from gwcore into the
                                        bridge and from gwtransfer into
                                        gwadmin in the tables read, and
                                        checks both are caught
"""
import argparse
import glob
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layering  # noqa: E402  (LAYERS, the one declaration of the order)


def nm(args, lib):
    out = subprocess.run(["nm"] + args + [lib], capture_output=True,
                         text=True, check=True).stdout
    return [line.split() for line in out.splitlines()
            if line.strip() and not line.endswith(":")]


def read(build):
    """(defined: symbol -> layer, needed: layer -> set of symbols)"""
    libs = {}
    for path in glob.glob(os.path.join(build, "**", "lib*.a"),
                          recursive=True):
        libs[os.path.basename(path)[3:-2]] = path
    defined, needed, missing = {}, {}, []
    for folder, (lib, _) in layering.LAYERS.items():
        if lib not in libs:
            missing.append(lib)
            continue
        for f in nm(["-g", "--defined-only"], libs[lib]):
            if len(f) == 3 and f[1] in "TDBRV":
                defined.setdefault(f[2], folder)
        needed[folder] = {f[-1] for f in nm(["-u"], libs[lib])}
    return defined, needed, missing


def check(defined, needed):
    errors = []
    for folder in sorted(needed):
        lib, uses = layering.LAYERS[folder]
        for sym in sorted(needed[folder]):
            owner = defined.get(sym)
            if owner is not None and owner != folder and owner not in uses:
                errors.append("%s/ (%s) calls %s, defined in %s/, against "
                              "the layer order (%s/ may use: %s)" %
                              (folder, lib, sym, owner, folder,
                               ", ".join(uses) or "nothing"))
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    defined, needed, missing = read(a.build)
    if missing:
        print("calls: libraries not built: %s" % ", ".join(missing))
        return 1
    if a.self_test:
        plants = [("gateway/core", "bridge_start", "gateway/bridge"),
                  ("gateway/transfer", "prov_contact_add", "gateway/admin")]
        failures = 0
        for folder, sym, owner in plants:
            if defined.get(sym) != owner:
                print("self-test: %s is not %s/'s any more; pick another"
                      % (sym, owner))
                failures += 1
                continue
            planted = {f: set(s) for f, s in needed.items()}
            planted[folder].add(sym)
            want = "%s/ (%s) calls %s" % (folder, layering.LAYERS[folder][0],
                                          sym)
            if any(want in e for e in check(defined, planted)):
                print("self-test: caught %s" % want)
            else:
                print("self-test: a call %s -> %s was not caught" %
                      (folder, sym))
                failures += 1
        print("self-test: %s" % ("FAIL" if failures else "ok"))
        return 1 if failures else 0
    errors = check(defined, needed)
    for e in errors:
        print(e)
    if not errors:
        print("calls: %d libraries, every call points down" % len(needed))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
