/*
 * test_passthru — between two gateways only allow-listed children pass,
 * checked to the last descendant, both ways; reply@to and OMEMO 2's
 * keys@jid cross as Barev JIDs and come back as the XMPP JIDs of the same
 * people; OMEMO messages pass whole, however many keys; ids kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passthru.h"
#include "xmlstream.h"
#include "../check.h"

/* alice@a.example (Barev alice@201:1::1) and her contact bob@201:2::2 */
static const struct tr_pair bob = {
	.user_jid = "alice@a.example", .user_nick = "alice",
	.user_addr = "201:1::1",
	.contact_jid = "bob\\40201\\3a2\\3a\\3a2@barev.a.example",
	.contact_nick = "bob", .contact_addr = "201:2::2",
};

static xmpp_stanza_t *
parse(const char *xml)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(xs_ctx(), xml);

	CHECK(st != NULL);
	return st;
}

static char *
ser(xmpp_stanza_t *st)
{
	size_t n;

	return xs_serialize_str(st, 0, &n);
}

static void
test_extract_keeps_only_the_allowlist(void)
{
	xmpp_stanza_t *st = parse("<message xmlns='jabber:client' id='m1'>"
	    "<body>hi</body>"
	    "<reactions xmlns='urn:xmpp:reactions:0' id='x'><reaction>+1</reaction></reactions>"
	    "<x xmlns='urn:example:private'/>"
	    "<retract xmlns='urn:xmpp:message-retract:1' id='y'><x xmlns='urn:example:private'/></retract>"
	    "<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='a.example'/>"
	    "<origin-id xmlns='urn:xmpp:sid:0' id='m1'/>"
	    "<request xmlns='urn:xmpp:receipts'/>"
	    "</message>");
	char *extra;
	int durable;

	CHECK(passthru_extract(&bob, st, &extra, &durable) == 0);
	CHECK(extra != NULL && durable == 1);
	if (extra) {
		CHECK(strstr(extra, ">+1</reaction></reactions>") != NULL);
		CHECK(strstr(extra, "urn:example:private") == NULL);
		CHECK(strstr(extra, "retract") == NULL);	/* foreign child */
		CHECK(strstr(extra, "forged") == NULL);
		CHECK(strstr(extra, "origin-id") != NULL);
		CHECK(passthru_has(extra, "request", "urn:xmpp:receipts"));
		CHECK(!passthru_has(extra, "received", "urn:xmpp:receipts"));
	}
	free(extra);
	xmpp_stanza_release(st);

	st = parse("<message xmlns='jabber:client'><composing"
	    " xmlns='http://jabber.org/protocol/chatstates'/></message>");
	CHECK(passthru_extract(&bob, st, &extra, &durable) == 0);
	CHECK(extra != NULL && durable == 0);	/* a chat state stays transient */
	free(extra);
	xmpp_stanza_release(st);

	st = parse("<message xmlns='jabber:client'><body>plain</body></message>");
	CHECK(passthru_extract(&bob, st, &extra, &durable) == 0);
	CHECK(extra == NULL && durable == 0);
	xmpp_stanza_release(st);
}

static void
test_reply_to_crosses_as_the_barev_jid_and_back(void)
{
	xmpp_stanza_t *st = parse("<message xmlns='jabber:client'>"
	    "<reply xmlns='urn:xmpp:reply:0' to='alice@a.example/phone' id='q1'/>"
	    "</message>"), *wire, *out, *peer, *r;
	char *extra, *xml;
	int durable;

	CHECK(passthru_extract(&bob, st, &extra, &durable) == 0);
	CHECK(extra && strstr(extra, "to=\"alice@201:1::1\"") != NULL);
	wire = passthru_wire("m2", "answer", extra);
	xml = ser(wire);
	CHECK(xml && strstr(xml, "id=\"m2\"") && strstr(xml, "<body>answer</body>"));
	free(xml);
	xmpp_stanza_release(wire);
	free(extra);
	xmpp_stanza_release(st);

	/* from bob's gateway: its "me" is our contact, its "peer" our user */
	peer = parse("<message xmlns='jabber:client' id='p1'>"
	    "<reply xmlns='urn:xmpp:reply:0' to='BOB@201:2::2' id='a'/>"
	    "<reply xmlns='urn:xmpp:reply:0' to='alice@201:1::1' id='b'/>"
	    "<reply xmlns='urn:xmpp:reply:0' to='mallory@201:6::6' id='c'/>"
	    "<x xmlns='jabber:x:oob'><url>http://x</url></x>"
	    "</message>");
	out = xs_stanza("message", "chat", NULL, NULL);
	CHECK(passthru_import(&bob, peer, out) == 1);
	r = xmpp_stanza_get_children(out);
	CHECK(r && strcmp(xmpp_stanza_get_attribute(r, "to"), bob.contact_jid) == 0);
	r = r ? xmpp_stanza_get_next(r) : NULL;
	CHECK(r && strcmp(xmpp_stanza_get_attribute(r, "to"), bob.user_jid) == 0);
	r = r ? xmpp_stanza_get_next(r) : NULL;
	CHECK(r && xmpp_stanza_get_attribute(r, "to") == NULL);
	CHECK(r && xmpp_stanza_get_next(r) == NULL);	/* no oob */
	xmpp_stanza_release(out);
	xmpp_stanza_release(peer);
}

/* An OMEMO 2 message with `nkeys` keys for bob's devices and one for
 * alice's own other device. */
static xmpp_stanza_t *
omemo2(const char *bob_jid, const char *alice_jid, int nkeys)
{
	char *xml = malloc(4096 + (size_t)nkeys * 300), *p;
	xmpp_stanza_t *st;

	if (xml == NULL)
		abort();
	p = xml + sprintf(xml, "<message xmlns='jabber:client' id='o1'>"
	    "<body>I sent you an OMEMO encrypted message.</body>"
	    "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='11'>"
	    "<keys jid='%s'>", bob_jid);
	for (int i = 0; i < nkeys; i++)
		p += sprintf(p, "<key rid='%d' kex='true'>%0200d</key>", 100 + i, i);
	sprintf(p, "</keys><keys jid='%s'><key rid='12'>QUJD</key></keys>"
	    "</header><payload>UExBSU4=</payload></encrypted>"
	    "<store xmlns='urn:xmpp:hints'/>"
	    "<encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:omemo:2'/>"
	    "</message>", alice_jid);
	st = parse(xml);
	free(xml);
	return st;
}

static void
test_omemo_passes_with_its_keys_renamed(void)
{
	xmpp_stanza_t *st, *out, *peer, *enc, *hdr, *k;
	char *extra;
	int durable;

	/* alice encrypts for bob's contact JID and for herself */
	st = omemo2(bob.contact_jid, "alice@a.example", 100);
	CHECK(passthru_extract(&bob, st, &extra, &durable) == 0);
	CHECK(extra != NULL && durable == 1);	/* worth a message of its own */
	if (extra) {
		CHECK(strstr(extra, " jid=\"bob@201:2::2\"") != NULL);
		CHECK(strstr(extra, " jid=\"alice@201:1::1\"") != NULL);
		CHECK(strstr(extra, "rid=\"199\"") != NULL);	/* all 100 keys */
		CHECK(strstr(extra, ">UExBSU4=</payload>") != NULL);
		CHECK(passthru_has(extra, "encryption", "urn:xmpp:eme:0"));
	}
	free(extra);
	xmpp_stanza_release(st);

	/* from bob's gateway: its user bob is our contact, its "peer" alice */
	peer = omemo2("alice@201:1::1", "bob@201:2::2", 3);
	out = xs_stanza("message", "chat", NULL, NULL);
	CHECK(passthru_import(&bob, peer, out) == 1);
	enc = xmpp_stanza_get_child_by_name_and_ns(out, "encrypted", "urn:xmpp:omemo:2");
	hdr = enc ? xmpp_stanza_get_child_by_name(enc, "header") : NULL;
	k = hdr ? xmpp_stanza_get_children(hdr) : NULL;
	CHECK(k && strcmp(xmpp_stanza_get_attribute(k, "jid"), bob.user_jid) == 0);
	k = k ? xmpp_stanza_get_next(k) : NULL;
	CHECK(k && strcmp(xmpp_stanza_get_attribute(k, "jid"), bob.contact_jid) == 0);
	xmpp_stanza_release(out);
	xmpp_stanza_release(peer);

	/* legacy OMEMO has no JIDs: it passes as written */
	st = parse("<message xmlns='jabber:client'><body>fallback</body>"
	    "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'>"
	    "<key rid='8' prekey='true'>S0VZ</key><iv>SVY=</iv></header>"
	    "<payload>UA==</payload></encrypted></message>");
	CHECK(passthru_extract(&bob, st, &extra, &durable) == 0);
	CHECK(extra && strstr(extra, " prekey=\"true\"") != NULL &&
	    strstr(extra, " rid=\"8\"") != NULL &&
	    strstr(extra, ">S0VZ</key>") != NULL);
	free(extra);
	xmpp_stanza_release(st);
}

static void
test_ids(void)
{
	char big[200];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(passthru_id_ok("abc-123"));
	CHECK(!passthru_id_ok(""));
	CHECK(!passthru_id_ok(NULL));
	CHECK(!passthru_id_ok(big));
}

int
main(void)
{
	if (xs_init() == -1) {
		fprintf(stderr, "xs_init failed\n");
		return 1;
	}
	RUN(test_extract_keeps_only_the_allowlist);
	RUN(test_reply_to_crosses_as_the_barev_jid_and_back);
	RUN(test_omemo_passes_with_its_keys_renamed);
	RUN(test_ids);
	xs_shutdown();
	return CHECK_EXIT();
}
