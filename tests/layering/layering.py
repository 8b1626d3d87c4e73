#!/usr/bin/env python3
"""Layering check (issue 11): includes and links point one way.

    common <- xmlstream <- component, barevlink <- gateway

LAYERS below is the one declaration of that order.  docs/design.md shows the
same table (between the "layers:begin/end" markers) and this script fails if
the two differ, so the picture in the docs cannot drift from what is checked.

For every .c/.h in a layer folder, every `#include "..."` is resolved the way
the compiler does (the including file's own folder first, then the folders
on the include path, i.e. the other layers) and must land in the file's own
layer or in one the layer may use.  A header found in no layer, or in two
layers but not the file's own, is an error too: an include the check cannot
place is an include nobody can reason about.  Each layer's CMakeLists.txt
may link (target_link_libraries) only the libraries of the layers it may
use, plus EXTERNAL targets, and must name exactly the layers it includes
from (no missing link, no link it does not use).

    layering.py [--root DIR]     exit 0 = clean, 1 = violations (listed)
    layering.py --self-test      plants back edges in temp copies and checks
                                 that each one is caught
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# folder: (CMake library, layers it may use).  Write out the whole set (no
# transitivity): component and barevlink are siblings and must not see each
# other.  A folder inside a layer's folder is a layer of its own (its files
# belong to it, not to the folder around it): gateway/store/ is the first of
# gateway/'s target sub-layers (translate/, bridge/, avatar/, transfer/,
# admin/, store/: docs/design.md's next steps), which become rows here as
# files move into them.
LAYERS = {
    "common": ("barevcommon", []),
    "xmlstream": ("xmlstream", ["common"]),
    "component": ("component", ["common", "xmlstream"]),
    "barevlink": ("barevlink", ["common", "xmlstream"]),
    "gateway/store": ("gwstore", ["common", "schema"]),
    "gateway/translate": ("gwtranslate", ["xmlstream"]),
    "gateway/core": ("gwcore", ["common", "xmlstream", "component",
                                "barevlink"]),
    "gateway/avatar": ("gwavatar", ["common", "xmlstream", "barevlink",
                                    "gateway/store", "gateway/core"]),
    "gateway/transfer": ("gwtransfer", ["common", "xmlstream", "barevlink",
                                        "gateway/store", "gateway/core"]),
    "gateway/bridge": ("gwbridge", ["common", "xmlstream", "component",
                                    "barevlink", "gateway/store",
                                    "gateway/translate", "gateway/core",
                                    "gateway/avatar", "gateway/transfer"]),
    "gateway/admin": ("gwadmin", ["common", "xmlstream", "component",
                                  "barevlink", "gateway/store",
                                  "gateway/core", "gateway/transfer",
                                  "gateway/bridge"]),
    "gateway": ("gwdaemon", ["common", "xmlstream", "component", "barevlink",
                             "gateway/store", "gateway/translate",
                             "gateway/core", "gateway/avatar",
                             "gateway/transfer", "gateway/bridge",
                             "gateway/admin"]),
}
# folders that are libraries but hold no C headers of ours (generated code)
LIBS_WITHOUT_HEADERS = {"schema": "gwschema"}
# targets any layer may link: system libraries found by pkg-config
EXTERNAL = re.compile(r"^(PkgConfig::\w+|PUBLIC|PRIVATE|INTERFACE|m|pthread)$")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
LINK = re.compile(r"target_link_libraries\(\s*(\S+)([^)]*)\)", re.S)


def table_text():
    """LAYERS as the lines docs/design.md shows."""
    lines = []
    for folder, (lib, uses) in LAYERS.items():
        lines.append("%-19s %-12s may use: %s" %
                     (folder + "/", lib, ", ".join(uses) or "(nothing)"))
    return "\n".join(lines)


def layer_of(relpath):
    """The layer a path (relative to the root) belongs to: the longest
    layer folder it is in, or None."""
    best = None
    for folder in LAYERS:
        if relpath == folder or relpath.startswith(folder + "/"):
            if best is None or len(folder) > len(best):
                best = folder
    return best


def layer_files(root, folder):
    """(dirpath, files) of a layer's folder, without the folders inside it
    that are layers of their own."""
    d = os.path.join(root, folder)
    for dirpath, dirnames, files in os.walk(d):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        dirnames[:] = [n for n in dirnames
                       if layer_of(rel + "/" + n) == folder]
        yield dirpath, files


def headers_by_layer(root):
    where = {}
    for folder in LAYERS:
        d = os.path.join(root, folder)
        for dirpath, files in layer_files(root, folder):
            for f in files:
                if f.endswith(".h"):
                    rel = os.path.relpath(os.path.join(dirpath, f), d)
                    where.setdefault(rel, []).append(folder)
    return where


def check_includes(root, errors, used):
    """used[folder] collects the layers folder/ really includes from."""
    where = headers_by_layer(root)
    for folder, (_, uses) in LAYERS.items():
        for dirpath, files in layer_files(root, folder):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for m in INCLUDE.finditer(text):
                    inc = m.group(1)
                    line = text.count("\n", 0, m.start()) + 1
                    # the compiler looks next to the including file first
                    local = os.path.normpath(os.path.join(dirpath, inc))
                    if os.path.isfile(local):
                        target = layer_of(os.path.relpath(local, root)
                                          .replace(os.sep, "/"))
                        if target is None:
                            errors.append("%s:%d: includes \"%s\" from %s/, "
                                          "which is not a layer" %
                                          (rel, line, inc, os.path.relpath(
                                              os.path.dirname(local), root)))
                            continue
                    else:
                        found = where.get(inc, [])
                        if len(found) != 1:
                            errors.append("%s:%d: \"%s\" is %s" % (
                                rel, line, inc,
                                "in no layer" if not found else
                                "in several layers (%s)" % ", ".join(found)))
                            continue
                        target = found[0]
                    if target != folder:
                        used.setdefault(folder, set()).add(target)
                    if target != folder and target not in uses:
                        errors.append("%s:%d: %s/ includes \"%s\" from %s/, "
                                      "against the layer order (%s/ may use: "
                                      "%s)" % (rel, line, folder, inc, target,
                                               folder, ", ".join(uses) or
                                               "nothing"))


def check_links(root, errors, used):
    lib_of = {f: lib for f, (lib, _) in LAYERS.items()}
    lib_of.update(LIBS_WITHOUT_HEADERS)
    folder_of = {lib: f for f, lib in lib_of.items()}
    for folder, (lib, uses) in LAYERS.items():
        cm = os.path.join(root, folder, "CMakeLists.txt")
        if not os.path.isfile(cm):
            errors.append("%s/CMakeLists.txt: missing (each layer is a "
                          "library)" % folder)
            continue
        with open(cm, encoding="utf-8") as fh:
            text = re.sub(r"#.*", "", fh.read())
        if not re.search(r"add_library\(\s*%s\b" % re.escape(lib), text):
            errors.append("%s/CMakeLists.txt: does not define library %s" %
                          (folder, lib))
        linked = set()
        for m in LINK.finditer(text):
            if m.group(1) != lib:
                continue
            for dep in m.group(2).split():
                if EXTERNAL.match(dep):
                    continue
                linked.add(folder_of.get(dep))
                if dep not in folder_of:
                    errors.append("%s/CMakeLists.txt: %s links %s, which is "
                                  "neither a layer nor external" %
                                  (folder, lib, dep))
                elif folder_of[dep] not in uses:
                    errors.append("%s/CMakeLists.txt: %s links %s (%s/), "
                                  "against the layer order" %
                                  (folder, lib, dep, folder_of[dep]))
        # names exactly what it uses: every layer it includes from, and
        # no layer it does not (schema/ has no headers: exempt)
        for dep in sorted(used.get(folder, set()) - linked):
            errors.append("%s/CMakeLists.txt: %s includes from %s/ but does "
                          "not link %s" % (folder, lib, dep, lib_of[dep]))
        for dep in sorted(d for d in linked - used.get(folder, set())
                          if d is not None and d not in LIBS_WITHOUT_HEADERS):
            errors.append("%s/CMakeLists.txt: %s links %s but includes "
                          "nothing from %s/" % (folder, lib, lib_of[dep], dep))


def check_docs(root, errors):
    doc = os.path.join(root, "docs", "design.md")
    if not os.path.isfile(doc):
        return  # a partial copy (self-test) may leave the docs out
    with open(doc, encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"<!-- layers:begin -->\n```\n(.*?)```\n<!-- layers:end -->",
                  text, re.S)
    if m is None:
        errors.append("docs/design.md: no layers:begin/end table")
    elif m.group(1).rstrip("\n") != table_text():
        errors.append("docs/design.md: the layer table differs from "
                      "tests/layering/layering.py's LAYERS; it should read:\n"
                      + table_text())


def run(root):
    errors, used = [], {}
    check_includes(root, errors, used)
    check_links(root, errors, used)
    check_docs(root, errors)
    for e in errors:
        print(e)
    if not errors:
        print("layering: %d layers, includes and links point one way" %
              len(LAYERS))
    return 1 if errors else 0


# ---- self-test: every planted back edge must make the check fail ----

PLANTS = [
    # (file, text appended, what the report must mention)
    ("barevlink/dial.c", '#include "component.h"\n',
     "barevlink/ includes \"component.h\" from component/"),
    ("common/log.c", '#include "xmlstream.h"\n',
     "common/ includes \"xmlstream.h\" from xmlstream/"),
    ("xmlstream/conn.c", '#include "gw.h"\n',
     "xmlstream/ includes \"gw.h\" from gateway/core/"),
    ("component/component.c", '#include "../gateway/route.h"\n',
     "component/ includes \"../gateway/route.h\" from gateway/"),
    ("component/component.c", '#include "../gateway/store/store.h"\n',
     "component/ includes \"../gateway/store/store.h\" from gateway/store/"),
    ("gateway/store/store.c", '#include "gw.h"\n',
     "gateway/store/ includes \"gw.h\" from gateway/core/"),
    ("gateway/translate/translate.c", '#include "store.h"\n',
     "gateway/translate/ includes \"store.h\" from gateway/store/"),
    ("gateway/translate/translate.c", '#include "barevlink.h"\n',
     "gateway/translate/ includes \"barevlink.h\" from barevlink/"),
    ("gateway/store/CMakeLists.txt",
     "target_link_libraries(gwstore PUBLIC xmlstream)\n",
     "gwstore links xmlstream (xmlstream/), against the layer order"),
    ("barevlink/pipe.c", '#include "no_such_header.h"\n',
     "\"no_such_header.h\" is in no layer"),
    ("barevlink/CMakeLists.txt", "target_link_libraries(barevlink PUBLIC gwdaemon)\n",
     "barevlink links gwdaemon (gateway/), against the layer order"),
    # gateway/'s own sub-layers: no module reaches up or sideways
    ("gateway/core/gw.c", '#include "bridge.h"\n',
     "gateway/core/ includes \"bridge.h\" from gateway/bridge/"),
    ("gateway/transfer/transfer.c", '#include "bridge.h"\n',
     "gateway/transfer/ includes \"bridge.h\" from gateway/bridge/"),
    ("gateway/avatar/avatar.c", '#include "transfer.h"\n',
     "gateway/avatar/ includes \"transfer.h\" from gateway/transfer/"),
    ("gateway/bridge/relay.c", '#include "provision.h"\n',
     "gateway/bridge/ includes \"provision.h\" from gateway/admin/"),
    ("gateway/admin/provision.c", '#include "route.h"\n',
     "gateway/admin/ includes \"route.h\" from gateway/"),
    ("gateway/core/CMakeLists.txt",
     "target_link_libraries(gwcore PUBLIC gwbridge)\n",
     "gwcore links gwbridge (gateway/bridge/), against the layer order"),
    ("xmlstream/init.c", '#include "log.h"\n',
     "xmlstream includes from common/ but does not link barevcommon"),
    ("xmlstream/CMakeLists.txt", "target_link_libraries(xmlstream PUBLIC barevcommon)\n",
     "xmlstream links barevcommon but includes nothing from common/"),
]


def self_test(src):
    me = os.path.abspath(__file__)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="layering-") as tmp:
        # the top folders: a layer inside another comes with it
        for folder in sorted({f.split("/")[0] for f in LAYERS} | {"docs"}):
            shutil.copytree(os.path.join(src, folder),
                            os.path.join(tmp, folder))
        clean = subprocess.run([sys.executable, me, "--root", tmp],
                               capture_output=True, text=True)
        if clean.returncode != 0:
            print("self-test: the unmodified copy fails:\n" + clean.stdout)
            return 1
        for rel, text, want in PLANTS:
            path = os.path.join(tmp, rel)
            with open(path, encoding="utf-8") as fh:
                before = fh.read()
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
            r = subprocess.run([sys.executable, me, "--root", tmp],
                               capture_output=True, text=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(before)
            if r.returncode == 0 or want not in r.stdout:
                print("self-test: planting %r in %s was not caught "
                      "(rc %d):\n%s" % (text.strip(), rel, r.returncode,
                                        r.stdout))
                failures += 1
            else:
                print("self-test: caught %s" % want)
        # the docs' table drifting from LAYERS is caught as well
        doc = os.path.join(tmp, "docs", "design.md")
        with open(doc, encoding="utf-8") as fh:
            before = fh.read()
        with open(doc, "w", encoding="utf-8") as fh:
            fh.write(before.replace("may use: common, xmlstream\n",
                                    "may use: common, xmlstream, gateway\n", 1))
        r = subprocess.run([sys.executable, me, "--root", tmp],
                           capture_output=True, text=True)
        if r.returncode == 0 or "layer table differs" not in r.stdout:
            print("self-test: an edited docs table was not caught")
            failures += 1
        else:
            print("self-test: caught a docs table that differs")
    print("self-test: %s" % ("FAIL" if failures else "ok"))
    return 1 if failures else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.normpath(
        os.path.join(here, "..", "..")))
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    return self_test(a.root) if a.self_test else run(a.root)


if __name__ == "__main__":
    sys.exit(main())
