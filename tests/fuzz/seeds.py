#!/usr/bin/env python3
"""Seed corpora for the fuzz harnesses, made at run time.

    seeds.py TRANSCRIPTS OUTDIR

TRANSCRIPTS is the folder of Barev wire transcripts (../shared/barev-
transcripts: one folder per implementation pair, one file per phase).  For
each harness OUTDIR/<harness>/ gets inputs in that harness's format (see
the comment at the top of each tests/fuzz/fuzz_<name>.c), cut from what
real purple and pascal builds sent each other.  The committed seeds in
tests/fuzz/corpus/ are added by bench/fuzz/run.sh itself.
"""
import ast
import hashlib
import os
import re
import sys

REC = re.compile(r'^\s+[\d.]+\s+conn#(\d+) (xmpp|data) \S+ (\w+)\(\w+\) --> '
                 r'\S+ (\w+)\(\w+\)\s+(\d+) bytes')
HEX = re.compile(r'^\s+[0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)')


def records(path):
    """(conn, kind, sender, payload bytes) per record of one phase file."""
    out, cur = [], None
    with open(path, encoding='utf-8') as f:
        for line in f:
            m = REC.match(line)
            if m:
                cur = [int(m.group(1)), m.group(2), m.group(3), [], None]
                out.append(cur)
                continue
            if cur is None:
                continue
            s = line.rstrip('\n')
            if s.strip().startswith('exact bytes: '):
                cur[4] = ast.literal_eval(s.strip()[len('exact bytes: '):])
            elif s.startswith('      | '):
                cur[3].append(s[8:].encode('utf-8'))
            else:
                h = HEX.match(s)
                if h and cur[1] == 'data':
                    cur[3].append(bytes.fromhex(h.group(1).replace(' ', '')))
    res = []
    for conn, kind, sender, parts, exact in out:
        if exact is not None:
            data = exact
        elif kind == 'xmpp':
            data = b'\n'.join(parts)
        else:
            data = b''.join(parts)
        if data:
            res.append((conn, kind, sender, data))
    return res


DST = b'aa5fec79afee82d0f14cb88c1b13e631690094ff'

SWAP = [(b'alice', b'\0A'), (b'bob', b'alice'), (b'\0A', b'bob'),
        (b'200:1::1', b'\0X'), (b'200:2::2', b'200:1::1'), (b'\0X', b'200:2::2'),
        (b'0200:0001::0001', b'\0Y'), (b'0200:0002::0002', b'0200:0001::0001'),
        (b'\0Y', b'0200:0002::0002')]


def as_bob(data, sender):
    """What bob would have sent: alice's lines with the names swapped."""
    if sender == 'bob':
        return data
    for a, b in SWAP:
        data = data.replace(a, b)
    return data


def header_cut(data):
    """The bytes up to the end of the stream header, or None."""
    i = data.find(b'<stream:stream')
    j = data.find(b'>', i) if i != -1 else -1
    return data[:j + 1] if j != -1 else None


def put(outdir, harness, data):
    d = os.path.join(outdir, harness)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    for pair in sorted(os.listdir(src)):
        folder = os.path.join(src, pair)
        if not os.path.isdir(folder):
            continue
        streams = {}
        for phase in sorted(os.listdir(folder)):
            per_dir = {}
            for conn, kind, sender, data in records(os.path.join(folder, phase)):
                if kind == 'xmpp':
                    streams.setdefault((conn, sender), []).append(data)
                    if not data.startswith(b'<?xml') and b'<stream:stream' not in data:
                        per_dir.setdefault(sender, []).append(data)
                else:
                    per_dir.setdefault(('s5', conn, sender), []).append(data)
            for key, chunks in per_dir.items():
                if isinstance(key, tuple):
                    # socks5: the first bytes each side sent on a data conn
                    blob = b''.join(chunks)[:512]
                    # the harness's DST.ADDR, so the sender's check passes
                    blob = re.sub(rb'[0-9a-f]{40}', DST, blob)
                    put(outdir, 'socks5', bytes([0]) + blob)
                    put(outdir, 'socks5', bytes([1]) + blob)
                    continue
                body = b''.join(as_bob(c, key) for c in chunks)
                put(outdir, 'pipe', body)
                put(outdir, 'xmlstream', b'\0\0<stream:stream xmlns="jabber:client" '
                    b'xmlns:stream="http://etherx.jabber.org/streams">' + body)
        for (conn, sender), chunks in streams.items():
            data = b''.join(chunks)
            put(outdir, 'xmlstream', b'\0\0' + data)
            put(outdir, 'xmlstream', b'\x07\x01' + data)
            put(outdir, 'xmlstream', b'\x01\x02' + data[:600])
            put(outdir, 'pipehdr', as_bob(data, sender))
            # blhdr: [mode] + the header, alone or with the first stanzas;
            # modes (fuzz_blhdr.c): EOF after it, kept open, and kept open
            # after a pause in the middle of the header
            hdr = header_cut(as_bob(data, sender))
            if hdr is not None:
                put(outdir, 'blhdr', b'\x00' + hdr)
                put(outdir, 'blhdr', b'\x7b' + hdr)
                put(outdir, 'blhdr', b'\x01' + as_bob(data, sender)[:len(hdr) + 600])


if __name__ == '__main__':
    main()
