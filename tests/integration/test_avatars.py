"""Avatars (issue 4): alice@example.org, in an ordinary XMPP client, sees
the pictures of her Barev contacts the XEP-0153 way (a hash in their
presence, the image in their vCard), and they see hers, scaled to what
purple shows (≤ 96×96, ≤ 64 KiB).

bob (201:2::2) runs the Barev test peer with the purple profile (hashes the
image bytes), carol (201:3::3) with the pascal profile (hashes the base64
text, so her advertised token never matches her image; BAREV.md §5).
"""
# ctest: timeout=400
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "barevpeer"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import harness                                   # noqa: E402
from harness import expect, expect_eq            # noqa: E402
import barevpeer as bp                           # noqa: E402

import barevworld                                # noqa: E402
from barevworld import contact_jid, store_rows  # noqa: E402
from xfer import NS_VCARD, png, photo_of, vcard_photo  # noqa: E402

ALICE_ADDR = "201:1::1"
BOB_ADDR = "201:2::2"
CAROL_ADDR = "201:3::3"
BOB = contact_jid("bob", BOB_ADDR)
CAROL = contact_jid("carol", CAROL_ADDR)


def image_size(data):
    """(width, height) of a PNG, JPEG or GIF from its header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", data[6:10])
    expect(data[:2] == b"\xff\xd8", "a png, gif or jpeg", "magic bytes", data[:8])
    i = 2
    while i < len(data):
        marker, seglen = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xc0 <= marker <= 0xcf and marker not in (0xc4, 0xc8, 0xcc):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + seglen
    raise AssertionError("no JPEG frame header")


def sha1(b):
    return hashlib.sha1(b).hexdigest()


def vcard_gets(session):
    """vCard requests the gateway sent this peer on this pipe."""
    return [el for el in session.received
            if bp.local(el.tag) == "iq" and el.get("type") == "get"
            and el.find("{%s}vCard" % NS_VCARD) is not None]


async def settle(session):
    """Everything sent on the pipe before now has been handled by the
    gateway: pipes are ordered, so a ping's answer comes after it."""
    expect(await session.send_ping(timeout=10), "the gateway answers a ping", True, False)


async def alice_sets_avatar(alice, data, mtype="image/png"):
    """Set the vCard PHOTO (XEP-0054) and announce it (XEP-0153), as a
    client's 'change avatar' does."""
    # Debian's stock prosody.cfg.lua limits what a client sends to 10 kB/s:
    # the large avatar's vCard (~130 kB of base64) takes ~13 s to go up.
    await alice["xep_0153"].set_avatar(avatar=data, mtype=mtype, timeout=60)


async def peer_sees_alice_avatar(session, not_hash=None, timeout=20):
    """Wait until the peer fetched an avatar that matches the hash in
    alice's presence (and differs from `not_hash`); returns the bytes."""
    def ok():
        img, hsh = session.remote_avatar, session.remote_presence.get("photo")
        return img is not None and hsh and sha1(img) == hsh and hsh != not_hash
    await session.wait_until(ok, timeout=timeout,
                             what="an avatar matching alice's photo hash")
    return session.remote_avatar


async def setup():
    return await barevworld.start()


async def test_bob_sets_an_avatar_and_alice_gets_its_hash_and_bytes(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=15)
    picture = png(48, 48, seed=1)
    alice.mark()
    await bob.publish_avatar(picture)
    pr = await alice.wait_presence(
        lambda p: p["from"].bare == BOB and photo_of(p) == sha1(picture),
        timeout=15, what="bob's presence with his avatar's hash")
    expect_eq(pr["type"], "available", "bob stays available")
    mime, data = await vcard_photo(alice, BOB)
    expect_eq(mime, "image/png", "TYPE in bob's vCard")
    expect_eq(data, picture, "the image in bob's vCard")
    expect_eq(len(vcard_gets(s)), 1, "vCard requests to bob for one new avatar")
    ctx["bob_picture"] = picture


async def test_the_same_token_again_is_not_fetched_again(ctx):
    bob = ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    before = len(vcard_gets(s))
    await bob.set_presence(show="away")
    await bob.set_presence()
    await settle(s)
    expect_eq(len(vcard_gets(s)), before, "vCard requests after an unchanged token")


async def test_carol_on_pascal_advertises_a_token_that_is_not_the_hash(ctx):
    alice, carol = ctx["alice"], ctx["carol"]
    s = await carol.wait_session("alice", timeout=15)
    picture = png(40, 24, seed=2)
    alice.mark()
    await carol.publish_avatar(picture)
    expect(carol.avatar_hash != sha1(picture), "pascal's token is not the image's hash",
           "different", carol.avatar_hash)
    # alice sees the hash of the image, never pascal's token
    await alice.wait_presence(
        lambda p: p["from"].bare == CAROL and photo_of(p) == sha1(picture),
        timeout=15, what="carol's presence with the SHA1 of her image")
    mime, data = await vcard_photo(alice, CAROL)
    expect_eq(data, picture, "the image in carol's vCard")
    await settle(s)
    # pascal sends every presence twice and the old one first: one fetch
    expect_eq(len(vcard_gets(s)), 1, "vCard requests to carol")
    rows = store_rows(ctx["gw"], "SELECT token, sha1 FROM avatars"
                      " WHERE owner_kind = 'contact' ORDER BY owner_id")
    expect((carol.avatar_hash, sha1(picture)) in rows,
           "token and hash stored apart", (carol.avatar_hash, sha1(picture)), rows)


async def test_alice_sets_a_large_avatar_and_both_peers_get_a_small_one(ctx):
    alice, bob, carol = ctx["alice"], ctx["bob"], ctx["carol"]
    sb = await bob.wait_session("alice", timeout=10)
    sc = await carol.wait_session("alice", timeout=10)
    big = png(300, 200, seed=3)
    await alice_sets_avatar(alice, big)
    for who, s in (("bob (purple)", sb), ("carol (pascal)", sc)):
        img = await peer_sees_alice_avatar(s)
        w, h = image_size(img)
        expect(w <= 96 and h <= 96, "%s gets at most 96x96" % who, "<= 96x96", (w, h))
        expect_eq((w, h), (96, 64), "%s: aspect kept" % who)
        expect(len(img) <= 65536, "%s gets at most 64 KiB" % who, "<= 65536", len(img))
    expect_eq(sb.remote_avatar, sc.remote_avatar, "both peers get the same image")
    expect_eq(sc.dropped_iqs, [], "iqs pascal would have taken for pongs")
    ctx["alice_hash"] = sb.remote_presence["photo"]


async def test_changes_propagate_both_ways(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    # bob changes his picture: alice's client gets the new hash and image
    picture = png(64, 64, seed=4)
    alice.mark()
    await bob.publish_avatar(picture)
    await alice.wait_presence(
        lambda p: p["from"].bare == BOB and photo_of(p) == sha1(picture),
        timeout=15, what="bob's new avatar hash")
    _, data = await vcard_photo(alice, BOB)
    expect_eq(data, picture, "bob's new image")
    ctx["bob_picture"] = picture
    # alice changes hers: bob gets the new one, small
    small = png(80, 120, seed=5)
    await alice_sets_avatar(alice, small)
    img = await peer_sees_alice_avatar(s, not_hash=ctx["alice_hash"])
    expect_eq(image_size(img), (64, 96), "alice's new avatar at bob, scaled")
    ctx["alice_hash"] = sha1(img)


async def test_a_peer_avatar_over_the_size_cap_is_ignored(ctx):
    alice, bob, gw = ctx["alice"], ctx["bob"], ctx["gw"]
    s = await bob.wait_session("alice", timeout=10)
    huge = png(160, 160, seed=6, noisy=True)
    expect(len(huge) > 65536, "the test picture is over 64 KiB", "> 65536", len(huge))
    alice.mark()
    await bob.publish_avatar(huge)
    await gw.wait_log(r"exceeds avatar_max_bytes", timeout=15)
    await settle(s)
    # the vCard query is a round trip through the gateway: any presence it
    # sent before has reached alice by its answer
    _, data = await vcard_photo(alice, BOB)
    expect_eq(data, ctx["bob_picture"], "bob's vCard keeps the previous image")
    for pr in alice.presences[alice._cursor["presence"]:]:
        expect(photo_of(pr) != sha1(huge), "no presence with the oversized hash",
               None, str(pr))


async def test_avatars_survive_a_gateway_restart(ctx):
    alice, bob, gw = ctx["alice"], ctx["bob"], ctx["gw"]
    old = await bob.wait_session("alice", timeout=10)
    # bob's token is that of the oversized picture, which the gateway
    # remembers as seen: put his last good one back first (alice sees no
    # change: that is the image she has)
    await bob.publish_avatar(ctx["bob_picture"])
    await gw.wait_log(r"avatar: contact \d+: image/png avatar of %d bytes"
                      % len(ctx["bob_picture"]), timeout=15)
    gw.restart()
    await gw.wait_up(timeout=15)
    await old.wait_closed(timeout=15)
    alice.mark()
    s = await bob.wait_session("alice", timeout=30, exclude=(old,))
    await alice.wait_presence(
        lambda p: p["from"].bare == BOB and photo_of(p) == sha1(ctx["bob_picture"]),
        timeout=20, what="bob's hash after the restart")
    _, data = await vcard_photo(alice, BOB)
    expect_eq(data, ctx["bob_picture"], "bob's image after the restart")
    await settle(s)
    expect_eq(len(vcard_gets(s)), 0, "vCard requests for a token already fetched")
    # and alice's picture is still hers on the Barev side
    await s.wait_until(lambda: s.remote_presence.get("photo") == ctx["alice_hash"],
                       timeout=15, what="alice's hash in her presence after the restart")
    expect_eq(sha1(await s.request_vcard()), ctx["alice_hash"],
              "alice's image from a vCard get after the restart")


async def test_empty_vcard_when_alice_has_no_avatar_and_exact_format(ctx):
    alice, bob = ctx["alice"], ctx["bob"]
    s = await bob.wait_session("alice", timeout=10)
    # the answer to a peer's vCard get, byte for byte as BAREV.md §5 says
    iq_id = "vcard-format-1"
    mark = len(s.raw_in)
    await s.send_raw("<iq type='get' id='%s' from='%s' to='%s'><vCard xmlns='vcard-temp'/></iq>"
                     % (iq_id, bob.jid, s.remote_jid))
    await s.wait_stanza(lambda el: el.get("id") == iq_id, timeout=10)
    raw = bytes(s.raw_in[mark:]).decode()
    expect(raw.startswith("<iq type='result' id='%s'" % iq_id),
           "single-quoted result, id first", "<iq type='result' id='…'", raw[:80])
    expect("<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>" in raw,
           "upper-case PHOTO/TYPE/BINVAL", "…", raw[:300])
    expect("\n" not in raw.split("<BINVAL>")[1].split("</BINVAL>")[0],
           "base64 on one line", "no line breaks", None)
    # alice removes her avatar: her presence says <photo/>, vCard is empty
    alice.send_raw("<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
    await s.wait_until(lambda: s.remote_presence.get("photo") == "", timeout=15,
                       what="alice's presence with an empty photo")
    mark = len(s.raw_in)
    await s.send_raw("<iq type='get' id='vcard-format-2' from='%s' to='%s'><vCard xmlns='vcard-temp'/></iq>"
                     % (bob.jid, s.remote_jid))
    await s.wait_stanza(lambda el: el.get("id") == "vcard-format-2", timeout=10)
    raw = bytes(s.raw_in[mark:]).decode()
    expect("<vCard xmlns='vcard-temp'/>" in raw, "an empty vCard", "<vCard xmlns='vcard-temp'/>", raw)


if __name__ == "__main__":
    import netns
    netns.enter([ALICE_ADDR, BOB_ADDR, CAROL_ADDR])
    harness.main()
