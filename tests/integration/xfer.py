"""Helpers the file and avatar tests share: reproducible payloads, HTTP off
the event loop, XEP-0363 uploads, message predicates, and the XEP-0153
bits (a PNG made here, the hash in a presence, the PHOTO in a vCard).
One copy here so a fix reaches every test that moves bytes.
"""
import asyncio
import base64
import contextlib
import hashlib
import struct
import urllib.error
import urllib.request
import zlib
from xml.sax.saxutils import quoteattr

from harness import expect, expect_eq

NS_UPLOAD = "{urn:xmpp:http:upload:0}"
NS_UPDATE = "vcard-temp:x:update"
NS_VCARD = "vcard-temp"


def blob(n, seed):
    """n reproducible, incompressible-looking bytes."""
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


async def http(method, url, data=None, headers=None, timeout=30, context=None, node=None):
    """Blocking urllib in a thread, so slixmpp keeps running: (status,
    body).  An HTTP error status comes back as (code, b""); TLS and
    connection failures raise.  `context`: the SSL context for https;
    `node`: a tests/lib/ygg.py node whose network namespace the request
    runs in (each server's HTTP is on its own node's 127.0.0.1)."""
    def run():
        with node.netns() if node is not None else contextlib.nullcontext():
            req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, b""
    return await asyncio.get_running_loop().run_in_executor(None, run)


async def upload_urls(client, service, name, data, via=None, what="the upload"):
    """The user puts a file on her server (XEP-0363: a slot from `service`,
    then the PUT); (PUT URL, GET URL).  `via(method, url, data=, headers=)`
    does the PUT (default: http())."""
    r = await client.iq_query(service, "get",
                              "<request xmlns='urn:xmpp:http:upload:0' filename=%s size='%d'"
                              " content-type='application/octet-stream'/>"
                              % (quoteattr(name), len(data)))
    expect_eq(r["type"], "result", "upload slot on %s for %s" % (service, what))
    slot = r.xml.find(NS_UPLOAD + "slot")
    put = slot.find(NS_UPLOAD + "put")
    hdrs = {h.get("name"): h.text for h in put.findall(NS_UPLOAD + "header")}
    hdrs["Content-Type"] = "application/octet-stream"
    status, _ = await (via or http)("PUT", put.get("url"), data=data, headers=hdrs)
    expect(status in (200, 201), what, "2xx", status)
    return put.get("url"), slot.find(NS_UPLOAD + "get").get("url")


async def upload(client, service, name, data, via=None, what="the upload"):
    """upload_urls(), the GET URL only (what a user pastes)."""
    return (await upload_urls(client, service, name, data, via, what))[1]


def says(who, *words):
    """A message predicate: from `who`, its body holding all `words`."""
    def pred(m):
        body = m["body"] or ""
        return m["from"].bare == who and all(w in body for w in words)
    return pred


def is_link(m, who):
    """A message from `who` whose body is a link."""
    return m["from"].bare == who and (m["body"] or "").startswith("http")


def png(width, height, seed, noisy=False):
    """An RGB PNG made with zlib + struct: a gradient tinted by `seed`
    (or pseudo-random noise, which does not compress)."""
    rows = bytearray()
    state = seed * 2654435761 & 0xffffffff
    for y in range(height):
        rows.append(0)                       # filter: none
        for x in range(width):
            if noisy:
                state = (state * 1103515245 + 12345) & 0xffffffff
                rows += state.to_bytes(4, "big")[:3]
            else:
                rows += bytes((x * 255 // max(1, width - 1),
                               y * 255 // max(1, height - 1), seed * 37 % 256))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))


def photo_of(presence):
    """The XEP-0153 hash in a presence: None = no <x/>, "" = <photo/>."""
    ph = presence.xml.find("{%s}x/{%s}photo" % (NS_UPDATE, NS_UPDATE))
    return None if ph is None else (ph.text or "").strip()


async def vcard_photo(client, jid):
    """(TYPE, bytes) of the PHOTO in jid's vCard, or (None, None)."""
    r = await client.iq_query(jid, "get", "<vCard xmlns='vcard-temp'/>")
    expect_eq(r["type"], "result", "vCard get on %s" % jid)
    ph = r.xml.find("{%s}vCard/{%s}PHOTO" % (NS_VCARD, NS_VCARD))
    if ph is None:
        return None, None
    b64 = ph.findtext("{%s}BINVAL" % NS_VCARD) or ""
    return ph.findtext("{%s}TYPE" % NS_VCARD), base64.b64decode("".join(b64.split()))
