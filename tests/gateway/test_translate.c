/*
 * translate.c alone: no sockets, no SQLite, no event loop.  Presence
 * aggregation across the user's resources, <show> both ways (pascal's
 * <show>offline</show> included), what a Barev peer's presence tells the
 * user, and the exact presence the user's server gets for a contact.
 * Messages and chat states both ways (BAREV.md §4), on the transcripts'
 * bytes, with the exact message the user's server gets; what becomes of a
 * user's message; the XEP-0184 receipt.  Roster items:
 * the push and the request for a contact (its JID XEP-0106-escaped by
 * addr.c), and whether an item the server reports is already right.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "translate.h"
#include "xmlstream.h"
#include "../check.h"

/* ---- a Barev peer's bytes, parsed as barevlink parses them ---- */

static xmpp_stanza_t *parsed;

static void
keep(void *arg, xmpp_stanza_t *st)
{
	(void)arg;
	if (parsed == NULL)
		parsed = xmpp_stanza_clone(st);
}

static xmpp_stanza_t *
parse(const char *xml)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:client' "
	    "xmlns:stream='http://etherx.jabber.org/streams'>";
	struct xs_callbacks cb = { NULL, keep, NULL };
	struct xs_parser *p = xs_parser_new(NULL, &cb, NULL);

	parsed = NULL;
	xs_parser_feed(p, hdr, strlen(hdr));
	xs_parser_feed(p, xml, strlen(xml));
	xs_parser_free(p);
	CHECK(parsed != NULL);
	return parsed;
}

/* what `xml` from a peer tells: available, show, status, avatar, photo */
static void
peer_says(const char *xml, int ignore, int available, const char *show,
    const char *status, int avatar, const char *photo)
{
	struct tr_peer_presence p;
	xmpp_stanza_t *st = parse(xml);

	if (st == NULL)
		return;
	tr_peer_presence_read(st, &p);
	if (p.ignore != ignore || p.available != available ||
	    strcmp(p.show, show) != 0 || p.avatar != avatar ||
	    (status == NULL) != (p.status == NULL) ||
	    (status && strcmp(status, p.status) != 0) ||
	    (photo == NULL) != (p.photo == NULL) ||
	    (photo && strcmp(photo, p.photo) != 0))
		fprintf(stderr, "  %s\n  read: ignore %d available %d show '%s'"
		    " status %s avatar %d photo %s\n", xml, p.ignore,
		    p.available, p.show, p.status ? p.status : "(none)",
		    p.avatar, p.photo ? p.photo : "(none)");
	CHECK(p.ignore == ignore);
	CHECK(p.available == available);
	CHECK_STR(p.show, show);
	CHECK(p.avatar == avatar);
	if (status == NULL)
		CHECK(p.status == NULL);
	else
		CHECK_STR(p.status, status);
	if (photo == NULL)
		CHECK(p.photo == NULL);
	else
		CHECK_STR(p.photo, photo);
	tr_peer_presence_clear(&p);
	xmpp_stanza_release(st);
}

/* BAREV.md §3, as purple and pascal really send it (the transcripts) */
static void
test_peer_presence(void)
{
	/* purple: available, no avatar yet */
	peer_says("<presence from='bob@200:2::2'><x xmlns='vcard-temp:x:update'>"
	    "<photo/></x></presence>", 0, 1, "", NULL, 1, NULL);
	/* away with a status and an avatar hash */
	peer_says("<presence><show>away</show><status>lunch &amp; more</status>"
	    "<x xmlns='vcard-temp:x:update'><photo>0a1b</photo></x></presence>",
	    0, 1, "away", "lunch & more", 1, "0a1b");
	/* every show a peer may send is kept as it is for the XMPP side */
	peer_says("<presence><show>xa</show></presence>", 0, 1, "xa", NULL, 0,
	    NULL);
	peer_says("<presence><show>dnd</show></presence>", 0, 1, "dnd", NULL, 0,
	    NULL);
	peer_says("<presence><show>chat</show></presence>", 0, 1, "chat", NULL,
	    0, NULL);
	/* an unknown show is plain available */
	peer_says("<presence><show>busy</show></presence>", 0, 1, "", NULL, 0,
	    NULL);
	/* pascal: <presence></presence>, twice, always available */
	peer_says("<presence></presence>", 0, 1, "", NULL, 0, NULL);
	/* pascal's offline is a show; its avatar still counts */
	peer_says("<presence><show>offline</show><x xmlns='vcard-temp:x:update'>"
	    "<photo>ff</photo></x></presence>", 0, 0, "", NULL, 1, "ff");
	/* the gateway's own goodbye (double quotes: pascal reads only those) */
	peer_says("<presence type=\"unavailable\"></presence>", 0, 0, "", NULL,
	    0, NULL);
	/* an unavailable presence tells no avatar, but keeps its status */
	peer_says("<presence type='unavailable'><status>bye</status>"
	    "<x xmlns='vcard-temp:x:update'><photo>ff</photo></x></presence>",
	    0, 0, "", "bye", 0, "ff");
	/* an error changes nothing at all */
	peer_says("<presence type='error'><show>dnd</show></presence>", 1, 0,
	    "", NULL, 0, NULL);
	/* an x of another namespace is no avatar */
	peer_says("<presence><x xmlns='jabber:x:other'><photo>ff</photo></x>"
	    "</presence>", 0, 1, "", NULL, 0, NULL);
}

/* ---- the user's resources toward her peers ---- */

static void
test_show_both_ways(void)
{
	CHECK(tr_show_parse(NULL) == TR_SHOW_NONE);
	CHECK(tr_show_parse("chat") == TR_SHOW_CHAT);
	CHECK(tr_show_parse("away") == TR_SHOW_AWAY);
	CHECK(tr_show_parse("xa") == TR_SHOW_XA);
	CHECK(tr_show_parse("dnd") == TR_SHOW_DND);
	CHECK(tr_show_parse("Away") == TR_SHOW_NONE);	/* RFC 6121: exact */
	CHECK(tr_show_parse("offline") == TR_SHOW_NONE);
	/* purple shows xa (and chat) as available: away is what it knows */
	CHECK_STR(tr_show_to_barev(TR_SHOW_AWAY), "away");
	CHECK_STR(tr_show_to_barev(TR_SHOW_XA), "away");
	CHECK_STR(tr_show_to_barev(TR_SHOW_DND), "dnd");
	CHECK(tr_show_to_barev(TR_SHOW_CHAT) == NULL);
	CHECK(tr_show_to_barev(TR_SHOW_NONE) == NULL);
}

/* the winner among resources, offered in every order */
static const struct tr_resource *
best_of(const struct tr_resource *v, size_t n, int reverse)
{
	const struct tr_resource *best = NULL;

	for (size_t k = 0; k < n; k++) {
		const struct tr_resource *r = &v[reverse ? n - 1 - k : k];

		if (tr_resource_wins(r, best))
			best = r;
	}
	return best;
}

static void
test_presence_aggregation(void)
{
	/* priority first: the phone (away, 10) speaks for her over the
	 * laptop (available, 0) */
	const struct tr_resource a[] = {
		{ 0, TR_SHOW_NONE, "at the desk" },
		{ 10, TR_SHOW_AWAY, "on the phone" },
	};
	/* the same priority: the most available wins, chat over none over
	 * away over xa over dnd */
	const struct tr_resource b[] = {
		{ 5, TR_SHOW_DND, "d" }, { 5, TR_SHOW_XA, "x" },
		{ 5, TR_SHOW_AWAY, "a" }, { 5, TR_SHOW_CHAT, "c" },
		{ 5, TR_SHOW_NONE, "n" },
	};
	/* negative priorities still count (RFC 6121 §4.7.2.3) */
	const struct tr_resource c[] = {
		{ -1, TR_SHOW_CHAT, "low" }, { -5, TR_SHOW_CHAT, "lower" },
	};

	for (int rev = 0; rev < 2; rev++) {
		CHECK_STR(best_of(a, 2, rev)->status, "on the phone");
		CHECK_STR(best_of(b, 5, rev)->status, "c");
		CHECK_STR(best_of(b, 3, rev)->status, "a");
		CHECK_STR(best_of(b, 2, rev)->status, "x");
		CHECK_STR(best_of(c, 2, rev)->status, "low");
	}
	CHECK(best_of(a, 0, 0) == NULL);
	/* her away phone shows as away at every Barev peer */
	CHECK_STR(tr_show_to_barev(best_of(a, 2, 0)->show), "away");
}

/* ---- a contact's presence toward the user ---- */

/* st (taken) as the component link writes it is exactly `want` */
static void
pushed(xmpp_stanza_t *st, const char *want)
{
	char *s;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	s = xs_serialize_str(st, 0, NULL);
	CHECK_STR(s, want);
	free(s);
	xmpp_stanza_release(st);
}

static void
contact_says(int available, const char *show, const char *status,
    const char *photo, const char *want)
{
	pushed(tr_contact_presence("bob\\40200\\3a2\\3a\\3a2@barev.example.org/barev",
	    "alice@example.org", available, show, status, photo), want);
}

/* libstrophe writes attributes in its hash table's (fixed) order */
#define TO "to=\"alice@example.org\" "
#define FROM "from=\"bob\\40200\\3a2\\3a\\3a2@barev.example.org/barev\""

static void
test_contact_presence(void)
{
	contact_says(1, "", NULL, "",
	    "<presence " TO FROM "><x xmlns=\"vcard-temp:x:update\"><photo>"
	    "</photo></x></presence>");
	contact_says(1, "away", "lunch & <more>", "0a1b",
	    "<presence " TO FROM "><show>away</show><status>lunch &amp; "
	    "&lt;more&gt;</status><x xmlns=\"vcard-temp:x:update\"><photo>0a1b"
	    "</photo></x></presence>");
	/* unavailable: the status may say why; no show, no avatar */
	contact_says(0, "dnd", "gone fishing", "0a1b",
	    "<presence " TO FROM " type=\"unavailable\"><status>gone fishing"
	    "</status></presence>");
	contact_says(0, "", "", NULL,
	    "<presence " TO FROM " type=\"unavailable\"></presence>");
}

/* ---- messages and chat states (BAREV.md §4) ---- */

static void
test_chatstate_of(void)
{
	static const char *const cases[][2] = {
		/* pascal, typing */
		{ "<message type='chat' to='alice@200:1::1' id='chat-1795311963-3031'>"
		    "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>", "composing" },
		/* purple, the end of typing */
		{ "<message to='bob@200:2::2' from='alice@200:1::1' type='chat'>"
		    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>", "active" },
		{ "<message><paused xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>", "paused" },
		{ "<message><inactive xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>", "inactive" },
		{ "<message><gone xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>", "gone" },
		/* purple's legacy jabber:x:event composing is no chat state */
		{ "<message><body>hi</body><x xmlns='jabber:x:event'><composing/>"
		    "</x></message>", NULL },
		/* the right name in no namespace, or an unknown state */
		{ "<message><composing/></message>", NULL },
		{ "<message><typing xmlns='http://jabber.org/protocol/chatstates'/>"
		    "</message>", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		xmpp_stanza_t *st = parse(cases[i][0]);
		const char *got;

		if (st == NULL)
			continue;
		got = tr_chatstate_of(st);
		if (cases[i][1] == NULL)
			CHECK(got == NULL);
		else
			CHECK(got != NULL && strcmp(got, cases[i][1]) == 0);
		xmpp_stanza_release(st);
	}
}

static void
test_user_chatstate(void)
{
	/* typing, from the start and again: composing, repeated */
	CHECK(tr_user_chatstate("composing", 0) == TR_TYPING_COMPOSING);
	CHECK(tr_user_chatstate("composing", 1) == TR_TYPING_COMPOSING);
	/* active ends her typing; while not typing a peer learns nothing */
	CHECK(tr_user_chatstate("active", 1) == TR_TYPING_STOP);
	CHECK(tr_user_chatstate("active", 0) == TR_TYPING_NONE);
	/* every other state ends typing at a peer with paused (+ active) */
	CHECK(tr_user_chatstate("paused", 1) == TR_TYPING_STOP);
	CHECK(tr_user_chatstate("paused", 0) == TR_TYPING_STOP);
	CHECK(tr_user_chatstate("inactive", 0) == TR_TYPING_STOP);
	CHECK(tr_user_chatstate("gone", 1) == TR_TYPING_STOP);
	CHECK(tr_user_chatstate(NULL, 1) == TR_TYPING_NONE);
}

/* what a user's message `xml` becomes toward a contact */
static void
user_sends(const char *xml, int durable_extra, const char *body,
    const char *state, int want_receipt, enum tr_user_send want)
{
	struct tr_user_message m;
	xmpp_stanza_t *st = parse(xml);

	if (st == NULL)
		return;
	tr_user_message_read(st, &m);
	if (body == NULL)
		CHECK(m.body == NULL);
	else
		CHECK_STR(m.body, body);
	if (state == NULL)
		CHECK(m.state == NULL);
	else
		CHECK(m.state != NULL && strcmp(m.state, state) == 0);
	CHECK(m.want_receipt == want_receipt);
	if (tr_user_send(&m, durable_extra) != want)
		fprintf(stderr, "  %s: send %d, want %d\n", xml,
		    tr_user_send(&m, durable_extra), want);
	CHECK(tr_user_send(&m, durable_extra) == want);
	tr_user_message_clear(&m);
	xmpp_stanza_release(st);
}

static void
test_user_message(void)
{
	/* a client's body with its state and a receipt request: a row; the
	 * Barev peer gets the body alone (BAREV.md §4) */
	user_sends("<message to='bob\\40200\\3a2\\3a\\3a2@barev.example.org' "
	    "type='chat' id='m1'><body>caf\xc3\xa9 &lt;b&gt; &amp; more</body>"
	    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
	    "<request xmlns='urn:xmpp:receipts'/></message>", 0,
	    "caf\xc3\xa9 <b> & more", "active", 1, TR_SEND_ROW);
	/* typing alone: transient */
	user_sends("<message type='chat'><composing "
	    "xmlns='http://jabber.org/protocol/chatstates'/></message>", 0,
	    NULL, "composing", 0, TR_SEND_STATE);
	/* an empty body is none */
	user_sends("<message type='chat'><body/><paused "
	    "xmlns='http://jabber.org/protocol/chatstates'/></message>", 0,
	    NULL, "paused", 0, TR_SEND_STATE);
	/* a reaction alone, to a gateway peer: a row of its own, even with
	 * a state beside it */
	user_sends("<message type='chat'><reactions id='m1' "
	    "xmlns='urn:xmpp:reactions:0'><reaction>\xf0\x9f\x91\x8d</reaction>"
	    "</reactions><active xmlns='http://jabber.org/protocol/chatstates'/>"
	    "</message>", 1, NULL, "active", 0, TR_SEND_ROW);
	/* ... and nothing for a Barev peer (no extras) */
	user_sends("<message type='chat'><reactions id='m1' "
	    "xmlns='urn:xmpp:reactions:0'><reaction>\xf0\x9f\x91\x8d</reaction>"
	    "</reactions></message>", 0, NULL, NULL, 0, TR_SEND_NOTHING);
	/* a receipt request without a body asks for nothing to be sent */
	user_sends("<message><request xmlns='urn:xmpp:receipts'/></message>", 0,
	    NULL, NULL, 1, TR_SEND_NOTHING);
}

#define MTO "to=\"alice@example.org\" "
#define MFROM "from=\"bob\\40200\\3a2\\3a\\3a2@barev.example.org/barev\""

/* what the user's server gets for `xml` from a Barev peer */
static void
user_gets(const char *xml, const char *id, const char *want, int want_durable)
{
	struct tr_peer_message m;
	xmpp_stanza_t *st = parse(xml), *out;
	int durable = -1;
	char *s;

	if (st == NULL)
		return;
	tr_peer_message_read(st, &m);
	out = tr_user_message("bob\\40200\\3a2\\3a\\3a2@barev.example.org/barev",
	    "alice@example.org", id, &m, &durable);
	if (want == NULL) {
		CHECK(out == NULL);
		CHECK(durable == 0);
	} else {
		CHECK(out != NULL);
		s = out ? xs_serialize_str(out, 0, NULL) : NULL;
		if (s != NULL && strcmp(s, want) != 0)
			fprintf(stderr, "  from %s\n", xml);
		CHECK_STR(s, want);
		CHECK(durable == want_durable);
		free(s);
	}
	if (out != NULL)
		xmpp_stanza_release(out);
	tr_peer_message_clear(&m);
	xmpp_stanza_release(st);
}

static void
test_peer_message(void)
{
	/* purple: the plain body only, its XHTML-IM and jabber:x:event left
	 * behind; markup stays escaped text */
	user_gets("<message to='alice@200:1::1' from='bob@200:2::2' type='chat'>"
	    "<body>hi alice &lt;b&gt;&amp;amp; &quot;quotes&quot;&lt;/b&gt; "
	    "&apos;apos&apos;</body><html xmlns='http://www.w3.org/1999/xhtml'>"
	    "<body><font>hi alice &lt;b&gt;&amp;amp; &quot;quotes&quot;&lt;/b&gt; "
	    "&apos;apos&apos;</font></body></html><x xmlns='jabber:x:event'>"
	    "<composing/></x></message>", "barev-7-1-1",
	    "<message " MTO MFROM " type=\"chat\" id=\"barev-7-1-1\"><body>hi alice "
	    "&lt;b&gt;&amp;amp; \"quotes\"&lt;/b&gt; 'apos'</body></message>", 1);
	/* pascal: double quotes; UTF-8 goes through raw, never as &#233; */
	user_gets("<message to=\"alice@200:1::1\" from=\"bob@200:2::2\" "
	    "type=\"chat\"><body>caf\xc3\xa9 \xe2\x98\x95</body></message>",
	    "barev-7-1-2",
	    "<message " MTO MFROM " type=\"chat\" id=\"barev-7-1-2\"><body>"
	    "caf\xc3\xa9 \xe2\x98\x95</body></message>", 1);
	/* a state beside a body (XMPP clients send both) stays beside it */
	user_gets("<message type='chat'><body>ok</body><active "
	    "xmlns='http://jabber.org/protocol/chatstates'/></message>", "i",
	    "<message " MTO MFROM " type=\"chat\" id=\"i\"><body>ok</body>"
	    "<active xmlns=\"http://jabber.org/protocol/chatstates\"></active>"
	    "</message>", 1);
	/* pascal typing: transient, no id, not stored by the server */
	user_gets("<message type='chat' to='alice@200:1::1' "
	    "id='chat-1795311963-3031'><composing "
	    "xmlns='http://jabber.org/protocol/chatstates'/></message>", NULL,
	    "<message " MTO MFROM " type=\"chat\"><composing "
	    "xmlns=\"http://jabber.org/protocol/chatstates\"></composing>"
	    "<no-store xmlns=\"urn:xmpp:hints\"></no-store></message>", 0);
	/* an empty body is no body */
	user_gets("<message type='chat'><body></body><paused "
	    "xmlns='http://jabber.org/protocol/chatstates'/></message>", NULL,
	    "<message " MTO MFROM " type=\"chat\"><paused "
	    "xmlns=\"http://jabber.org/protocol/chatstates\"></paused>"
	    "<no-store xmlns=\"urn:xmpp:hints\"></no-store></message>", 0);
	/* nothing to tell: no body, no state */
	user_gets("<message type='chat'><body/></message>", NULL, NULL, 0);
	user_gets("<message type='chat'><x xmlns='jabber:x:event'><composing/>"
	    "</x></message>", NULL, NULL, 0);
}

/* XEP-0184: the user's client learns her message was read */
static void
test_receipt(void)
{
	xmpp_stanza_t *st = tr_receipt(
	    "bob\\40200\\3a2\\3a\\3a2@barev.example.org/barev",
	    "alice@example.org/phone", "rcpt-3-17-1764700000", "purple<&>1");
	char *s;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	s = xs_serialize_str(st, 0, NULL);
	CHECK_STR(s, "<message to=\"alice@example.org/phone\" " MFROM
	    " id=\"rcpt-3-17-1764700000\"><received xmlns=\"urn:xmpp:receipts\""
	    " id=\"purple&lt;&amp;&gt;1\"></received></message>");
	free(s);
	xmpp_stanza_release(st);
}

/* ---- roster items ---- */

/* the contact's JID as the bridge makes it (addr.c), from `barev` */
static void
contact_jid(const char *barev, char *out, size_t len)
{
	struct gw_baddr a;
	char err[128];

	out[0] = '\0';
	CHECK(gw_baddr_parse(barev, &a, err, sizeof(err)) == 0);
	CHECK(gw_baddr_to_jid(&a, "barev.example.org", out, len) == 0);
}

#define GWJID "barev.example.org"
#define RTO "to=\"alice@example.org\" "
/* libstrophe's hash order again, another for an iq's three attributes */
#define IQHEAD "type=\"set\" from=\"" GWJID "\" to=\"alice@example.org\""

static void
test_roster_push(void)
{
	char jid[512];

	/* nick@ipv6: '@' and every ':' escaped (XEP-0106 §4), lower case */
	contact_jid("bob@200:2::2", jid, sizeof(jid));
	CHECK_STR(jid, "bob\\40200\\3a2\\3a\\3a2@" GWJID);
	pushed(tr_roster_push(GWJID, "alice@example.org", jid,
	    tr_contact_name("", "bob"), 0),
	    "<iq " IQHEAD "><query xmlns=\"jabber:iq:"
	    "roster\"><item jid=\"bob\\40200\\3a2\\3a\\3a2@" GWJID "\" name=\"bob\""
	    " subscription=\"both\"><group>Barev</group></item></query></iq>");
	/* a port, a bracketed address, upper case: the name keeps her
	 * spelling and markup is escaped in it */
	contact_jid("Bob@[201:ABCD::1]:1338", jid, sizeof(jid));
	CHECK_STR(jid, "bob\\40[201\\3aabcd\\3a\\3a1]\\3a1338@" GWJID);
	pushed(tr_roster_push(GWJID, "alice@example.org", jid,
	    tr_contact_name("Bob & <Co> \"B\"", "Bob"), 0),
	    "<iq " IQHEAD "><query xmlns=\"jabber:iq:"
	    "roster\"><item jid=\"bob\\40[201\\3aabcd\\3a\\3a1]\\3a1338@" GWJID
	    "\" name=\"Bob &amp; &lt;Co&gt; &quot;B&quot;\" subscription=\"both\">"
	    "<group>Barev</group></item></query></iq>");
	/* removed: no name, no group */
	contact_jid("bob@200:2::2", jid, sizeof(jid));
	pushed(tr_roster_push(GWJID, "alice@example.org", jid, "bob", 1),
	    "<iq " IQHEAD "><query xmlns=\"jabber:iq:"
	    "roster\"><item jid=\"bob\\40200\\3a2\\3a\\3a2@" GWJID "\" "
	    "subscription=\"remove\"></item></query></iq>");
	/* the gateway itself */
	pushed(tr_roster_push(GWJID, "alice@example.org", GWJID,
	    TR_ROSTER_GATEWAY_NAME, 0),
	    "<iq " IQHEAD "><query xmlns=\"jabber:iq:"
	    "roster\"><item jid=\"" GWJID "\" name=\"Barev gateway\" "
	    "subscription=\"both\"><group>Barev</group></item></query></iq>");
	/* without the privilege: the item asks, its name as XEP-0172 nick */
	contact_jid("bob@200:2::2", jid, sizeof(jid));
	pushed(tr_roster_request(jid, "alice@example.org", "bob"),
	    "<presence " RTO "from=\"bob\\40200\\3a2\\3a\\3a2@" GWJID "\" "
	    "type=\"subscribe\"><nick xmlns=\"http://jabber.org/protocol/nick\">"
	    "bob</nick></presence>");
	/* a name always: hers, else the nick */
	CHECK_STR(tr_contact_name("Bobby", "bob"), "Bobby");
	CHECK_STR(tr_contact_name("", "bob"), "bob");
	CHECK_STR(tr_contact_name(NULL, "bob"), "bob");
}

/* what a contact JID says of itself: disco#info and vCard */
static void
test_contact_disco_and_vcard(void)
{
	static const char *const passed[] = { "urn:xmpp:reactions:0" };

	pushed(tr_contact_disco("bob", NULL, 0),
	    "<query xmlns=\"http://jabber.org/protocol/disco#info\">"
	    "<identity type=\"pc\" category=\"client\" name=\"bob\"></identity>"
	    "<feature var=\"http://jabber.org/protocol/disco#info\"></feature>"
	    "<feature var=\"http://jabber.org/protocol/chatstates\"></feature>"
	    "<feature var=\"urn:xmpp:receipts\"></feature>"
	    "<feature var=\"urn:xmpp:ping\"></feature>"
	    "<feature var=\"vcard-temp\"></feature></query>");
	/* a gateway peer: what passes to it, after what every contact has */
	pushed(tr_contact_disco("b&<o>", passed, 1),
	    "<query xmlns=\"http://jabber.org/protocol/disco#info\">"
	    "<identity type=\"pc\" category=\"client\" name=\"b&amp;&lt;o&gt;\"></identity>"
	    "<feature var=\"http://jabber.org/protocol/disco#info\"></feature>"
	    "<feature var=\"http://jabber.org/protocol/chatstates\"></feature>"
	    "<feature var=\"urn:xmpp:receipts\"></feature>"
	    "<feature var=\"urn:xmpp:ping\"></feature>"
	    "<feature var=\"vcard-temp\"></feature>"
	    "<feature var=\"urn:xmpp:reactions:0\"></feature></query>");
	/* FN: the name she gave it, else the nick */
	pushed(tr_contact_vcard("bob", "Bob Barev"),
	    "<vCard xmlns=\"vcard-temp\"><NICKNAME>bob</NICKNAME>"
	    "<FN>Bob Barev</FN></vCard>");
	pushed(tr_contact_vcard("bob", ""),
	    "<vCard xmlns=\"vcard-temp\"><NICKNAME>bob</NICKNAME>"
	    "<FN>bob</FN></vCard>");
}

static int
item_right(const char *xml, const char *name)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(xs_ctx(), xml);
	int rv;

	CHECK(st != NULL);
	if (st == NULL)
		return -1;
	rv = tr_roster_item_right(st, name);
	xmpp_stanza_release(st);
	return rv;
}

static void
test_roster_item_right(void)
{
	CHECK(item_right("<item jid='b@g' name='bob' subscription='both'>"
	    "<group>Barev</group></item>", "bob") == 1);
	/* renamed by her, or the name we would push changed */
	CHECK(item_right("<item jid='b@g' name='Bobby' subscription='both'>"
	    "<group>Barev</group></item>", "bob") == 0);
	CHECK(item_right("<item jid='b@g' subscription='both'>"
	    "<group>Barev</group></item>", "bob") == 0);
	/* not both, or a request still pending */
	CHECK(item_right("<item jid='b@g' name='bob' subscription='to'>"
	    "<group>Barev</group></item>", "bob") == 0);
	CHECK(item_right("<item jid='b@g' name='bob' subscription='both' "
	    "ask='subscribe'><group>Barev</group></item>", "bob") == 0);
	/* the group Barev, alone */
	CHECK(item_right("<item jid='b@g' name='bob' subscription='both'/>",
	    "bob") == 0);
	CHECK(item_right("<item jid='b@g' name='bob' subscription='both'>"
	    "<group>Friends</group></item>", "bob") == 0);
	CHECK(item_right("<item jid='b@g' name='bob' subscription='both'>"
	    "<group>Barev</group><group>Friends</group></item>", "bob") == 0);
	CHECK(item_right("<item jid='b@g' name='bob' subscription='both'>"
	    "<group>barev</group></item>", "bob") == 0);
}

int
main(void)
{
	if (xs_init() != 0)
		return 2;
	RUN(test_peer_presence);
	RUN(test_show_both_ways);
	RUN(test_presence_aggregation);
	RUN(test_contact_presence);
	RUN(test_chatstate_of);
	RUN(test_user_chatstate);
	RUN(test_user_message);
	RUN(test_peer_message);
	RUN(test_receipt);
	RUN(test_roster_push);
	RUN(test_roster_item_right);
	RUN(test_contact_disco_and_vcard);
	xs_shutdown();
	return CHECK_EXIT();
}
