/*
 * xs_serialize: the bytes a Barev peer receives.  Quote style per stanza
 * kind (BAREV.md §3-5), explicit end tags unless asked, fixed attribute
 * order, minimal escaping with raw UTF-8 — and whatever the parser built
 * comes back out as bytes that parse to the same tree.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "xmlstream.h"
#include "../check.h"

static xmpp_stanza_t *
el(const char *name)
{
	xmpp_stanza_t *s = xmpp_stanza_new(xs_ctx());

	xmpp_stanza_set_name(s, name);
	return s;
}

static void
add_text(xmpp_stanza_t *parent, const char *text)
{
	xmpp_stanza_t *t = xmpp_stanza_new(xs_ctx());

	xmpp_stanza_set_text(t, text);
	xmpp_stanza_add_child_ex(parent, t, 0);
}

static char *
ser(xmpp_stanza_t *st, unsigned flags)
{
	return xs_serialize_str(st, flags, NULL);
}

static void
test_barev_iq_single_quotes(void)
{
	xmpp_stanza_t *iq = el("iq"), *ping = el("ping");
	char *s;

	/* Set in an order unlike the wire order. */
	xmpp_stanza_set_attribute(iq, "to", "bob@200:2::2");
	xmpp_stanza_set_attribute(iq, "from", "alice@200:1::1");
	xmpp_stanza_set_attribute(iq, "id", "ping-1795311974-0");
	xmpp_stanza_set_attribute(iq, "type", "get");
	xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
	xmpp_stanza_add_child_ex(iq, ping, 0);
	s = ser(iq, XS_SER_SINGLE_QUOTES | XS_SER_SELFCLOSE);
	CHECK_STR(s, "<iq type='get' id='ping-1795311974-0' "
	    "from='alice@200:1::1' to='bob@200:2::2'>"
	    "<ping xmlns='urn:xmpp:ping'/></iq>");
	free(s);
	/* Never type="result" in an iq for pascal; double only if asked. */
	s = ser(iq, 0);
	CHECK_STR(s, "<iq type=\"get\" id=\"ping-1795311974-0\" "
	    "from=\"alice@200:1::1\" to=\"bob@200:2::2\">"
	    "<ping xmlns=\"urn:xmpp:ping\"></ping></iq>");
	free(s);
	xmpp_stanza_release(iq);
}

static void
test_presence_and_message_double_quotes(void)
{
	xmpp_stanza_t *p = el("presence"), *m = el("message"), *b = el("body");
	char *s;

	xmpp_stanza_set_type(p, "unavailable");
	s = ser(p, 0);
	CHECK_STR(s, "<presence type=\"unavailable\"></presence>");
	free(s);
	xmpp_stanza_set_type(m, "chat");
	xmpp_stanza_set_from(m, "alice@200:1::1");
	xmpp_stanza_set_to(m, "bob@200:2::2");
	xmpp_stanza_set_attribute(m, "xml:lang", "en");
	xmpp_stanza_set_attribute(m, "a", "1");
	add_text(b, "hello");
	xmpp_stanza_add_child_ex(m, b, 0);
	s = ser(m, 0);
	CHECK_STR(s, "<message to=\"bob@200:2::2\" from=\"alice@200:1::1\" "
	    "type=\"chat\" a=\"1\" xml:lang=\"en\"><body>hello</body>"
	    "</message>");
	free(s);
	xmpp_stanza_release(p);
	xmpp_stanza_release(m);
}

static void
test_escaping(void)
{
	xmpp_stanza_t *m = el("message"), *b = el("body");
	char *s;

	xmpp_stanza_set_attribute(m, "to", "a&<>\"'\xc3\xa9@x");
	add_text(b, "&<>\"' caf\xc3\xa9 \xf0\x9f\x98\x80");
	xmpp_stanza_add_child_ex(m, b, 0);
	s = ser(m, 0);
	CHECK_STR(s, "<message to=\"a&amp;&lt;&gt;&quot;'\xc3\xa9@x\"><body>"
	    "&amp;&lt;&gt;\"' caf\xc3\xa9 \xf0\x9f\x98\x80</body></message>");
	free(s);
	s = ser(m, XS_SER_SINGLE_QUOTES);
	CHECK_STR(s, "<message to='a&amp;&lt;&gt;\"&apos;\xc3\xa9@x'><body>"
	    "&amp;&lt;&gt;\"' caf\xc3\xa9 \xf0\x9f\x98\x80</body></message>");
	free(s);
	xmpp_stanza_release(m);

	/* xs_escape alone, into an evbuffer. */
	{
		struct evbuffer *out = evbuffer_new();
		char buf[64];
		size_t n;

		CHECK(xs_escape(out, "a<b>&'\"", 7, 0) == 0);
		CHECK(xs_escape(out, "|'\"", 3, '\'') == 0);
		CHECK(xs_escape(out, "|'\"", 3, '"') == 0);
		n = evbuffer_remove(out, buf, sizeof buf - 1);
		buf[n] = '\0';
		CHECK_STR(buf, "a&lt;b&gt;&amp;'\"|&apos;\"|'&quot;");
		evbuffer_free(out);
	}
}

/* Parsed stanzas, serialized, parse back to the same bytes again. */
static char *reparsed[8];
static int nreparsed;

static void
keep(void *arg, xmpp_stanza_t *st)
{
	(void)arg;
	if (nreparsed < 8)
		reparsed[nreparsed++] = ser(st, XS_SER_SINGLE_QUOTES);
}

static char *
roundtrip_once(const char *stanza)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:client' "
	    "xmlns:stream='http://etherx.jabber.org/streams'>";
	struct xs_callbacks cb = { NULL, keep, NULL };
	struct xs_parser *p = xs_parser_new(NULL, &cb, NULL);

	nreparsed = 0;
	xs_parser_feed(p, hdr, strlen(hdr));
	xs_parser_feed(p, stanza, strlen(stanza));
	xs_parser_free(p);
	CHECK(nreparsed == 1);
	return nreparsed == 1 ? reparsed[0] : NULL;
}

static void
test_round_trip(void)
{
	static const char *const in[] = {
		"<message to='alice@200:1::1' from='bob@200:2::2' type='chat'>"
		"<body>hi alice &lt;b&gt;&amp;amp; &quot;quotes&quot;&lt;/b&gt; "
		"&apos;apos&apos;</body><html xmlns='http://www.w3.org/1999/"
		"xhtml'><body><font>hi</font></body></html><x xmlns='jabber:x:"
		"event'><composing/></x></message>",
		"<iq type='result' to='bob@0200:0002::0002' id='vcard-1'><vCard "
		"xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBO"
		"Rw0KGgo=</BINVAL></PHOTO></vCard></iq>",
		"<message a='tab&#9;nl&#10;cr&#13;' b=\"'&quot;&amp;&lt;&gt;\">"
		"<body>cr&#13;lf\n&#x1F600;\xc3\xa9</body></message>",
		"<presence><show>dnd</show><status>  do not  disturb </status>"
		"</presence>",
	};
	size_t i;
	char *a, *b;

	for (i = 0; i < sizeof in / sizeof in[0]; i++) {
		a = roundtrip_once(in[i]);
		b = a != NULL ? roundtrip_once(a) : NULL;
		if (a != NULL && b != NULL)
			CHECK_STR(b, a);
		free(a);
		free(b);
	}
	/* And the escaped control characters survive as such. */
	a = roundtrip_once(in[2]);
	CHECK_STR(a, "<message a='tab&#9;nl&#10;cr&#13;' b='&apos;\"&amp;"
	    "&lt;&gt;'><body>cr&#13;lf\n\xf0\x9f\x98\x80\xc3\xa9</body>"
	    "</message>");
	free(a);
}

static void
test_evbuffer_and_many_attrs(void)
{
	xmpp_stanza_t *x = el("x");
	struct evbuffer *out = evbuffer_new();
	char name[8], *s, *flat;
	size_t n;
	int i;

	/* More attributes than fit the serializer's stack array. */
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "a%02d", 39 - i);
		xmpp_stanza_set_attribute(x, name, "v");
	}
	xmpp_stanza_set_ns(x, "urn:x");
	CHECK(xs_serialize(x, XS_SER_SELFCLOSE, out) == 0);
	n = evbuffer_get_length(out);
	flat = (char *)evbuffer_pullup(out, -1);
	s = ser(x, XS_SER_SELFCLOSE);
	CHECK(s != NULL && n == strlen(s) && memcmp(flat, s, n) == 0);
	CHECK(s != NULL && strncmp(s, "<x xmlns=\"urn:x\" a00=\"v\" a01=\"v\"",
	    32) == 0);
	CHECK(s != NULL && strstr(s, "a38=\"v\" a39=\"v\"/>") != NULL);
	free(s);
	evbuffer_free(out);
	xmpp_stanza_release(x);
}

/*
 * Whatever bytes a caller passes in text or an attribute value, the output
 * is well-formed XML 1.0: ill-formed UTF-8 and characters XML forbids
 * become U+FFFD (issue 15: one bad file name used to make Prosody close
 * the component stream and disconnect every user).
 */
#define FFFD "\xef\xbf\xbd"

static void
check_repaired(const char *in, const char *want)
{
	xmpp_stanza_t *m = el("message"), *b = el("body");
	char *s, *w;
	size_t wl = strlen(want) * 2 + 128;

	xmpp_stanza_set_attribute(m, "a", in);
	add_text(b, in);
	xmpp_stanza_add_child_ex(m, b, 0);
	w = malloc(wl);
	snprintf(w, wl, "<message a=\"%s\"><body>%s</body></message>", want,
	    want);
	s = ser(m, 0);
	CHECK_STR(s, w);
	free(s);
	snprintf(w, wl, "<message a='%s'><body>%s</body></message>", want,
	    want);
	s = ser(m, XS_SER_SINGLE_QUOTES);
	CHECK_STR(s, w);
	free(s);
	free(w);
	xmpp_stanza_release(m);
}

static void
test_invalid_utf8_replaced(void)
{
	/* the attack: a percent-decoded file name */
	check_repaired("\xff\xfe" "bad.txt", FFFD FFFD "bad.txt");
	/* lone continuation, lead without continuation, truncated at end */
	check_repaired("a\x80z", "a" FFFD "z");
	check_repaired("a\xc3z", "a" FFFD "z");
	check_repaired("caf\xc3", "caf" FFFD);
	check_repaired("x\xe2\x82", "x" FFFD);
	check_repaired("\xf0\x9f\x98", FFFD);
	/* maximal subpart: a truncated 3-byte sequence is one U+FFFD */
	check_repaired("\xe2\x82(", FFFD "(");
	/* overlong forms, surrogates, beyond U+10FFFF, 5/6-byte leads */
	check_repaired("\xc0\xaf", FFFD FFFD);
	check_repaired("\xe0\x80\xaf", FFFD FFFD FFFD);
	check_repaired("\xed\xa0\x80", FFFD FFFD FFFD);
	check_repaired("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	check_repaired("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
	/* well-formed but not XML characters: U+FFFE, U+FFFF */
	check_repaired("<\xef\xbf\xbe\xef\xbf\xbf>", "&lt;" FFFD FFFD "&gt;");
	/* C0 controls XML forbids; DEL and U+FFFD itself are fine */
	check_repaired("a\x01\x08\x0b\x0c\x1b\x1f\x7f" FFFD "b",
	    "a" FFFD FFFD FFFD FFFD FFFD FFFD "\x7f" FFFD "b");
	/* the edges that are allowed stay */
	check_repaired("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
	    "\xef\xbf\xbd\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
	    "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
	    "\xef\xbf\xbd\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");

	/* xs_escape (barevlink's formatter, the component header) too, and
	 * a NUL inside the given length */
	{
		struct evbuffer *out = evbuffer_new();
		char buf[64];
		size_t n;

		CHECK(xs_escape(out, "n\xff" "a\0me", 6, '\'') == 0);
		n = evbuffer_remove(out, buf, sizeof buf - 1);
		buf[n] = '\0';
		CHECK_STR(buf, "n" FFFD "a" FFFD "me");
		evbuffer_free(out);
	}
	/* xs_utf8_repair: the same, for names used outside XML as well */
	{
		char *r = xs_utf8_repair("\xff\xfe" "bad\x01.txt caf\xc3\xa9\xe2\x82");

		CHECK_STR(r, FFFD FFFD "bad" FFFD ".txt caf\xc3\xa9" FFFD);
		free(r);
	}
}

static int parsed_ok, parse_closed;

static void
count_stanza(void *arg, xmpp_stanza_t *st)
{
	(void)arg;
	(void)st;
	parsed_ok++;
}

static void
count_close(void *arg, enum xs_close why, const char *detail)
{
	(void)arg;
	(void)detail;
	if (why != XS_END_STREAM && why != XS_END_EOF)
		parse_closed++;
}

/* Random bytes in, well-formed XML out: our parser (libxml2) takes it. */
static void
test_random_bytes_reparse(void)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:client' "
	    "xmlns:stream='http://etherx.jabber.org/streams'>";
	struct xs_callbacks cb = { NULL, count_stanza, count_close };
	unsigned seed = 15;
	char in[65], *s;
	int round, i, bad = 0;

	for (round = 0; round < 2000; round++) {
		xmpp_stanza_t *m = el("message"), *b = el("body");
		struct xs_parser *p;

		for (i = 0; i < 64; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (char)((seed >> 16) & 0xff);
			if (in[i] == '\0')
				in[i] = 'z';
		}
		in[64] = '\0';
		xmpp_stanza_set_attribute(m, "a", in);
		add_text(b, in);
		xmpp_stanza_add_child_ex(m, b, 0);
		s = ser(m, round & 1 ? XS_SER_SINGLE_QUOTES : 0);
		parsed_ok = parse_closed = 0;
		p = xs_parser_new(NULL, &cb, NULL);
		xs_parser_feed(p, hdr, strlen(hdr));
		xs_parser_feed(p, s, strlen(s));
		xs_parser_free(p);
		if (parsed_ok != 1 || parse_closed != 0) {
			if (bad++ < 3)
				fprintf(stderr, "not re-parsed: %s\n", s);
		}
		free(s);
		xmpp_stanza_release(m);
	}
	CHECK(bad == 0);
}

int
main(void)
{
	if (xs_init() != 0)
		return 2;
	RUN(test_barev_iq_single_quotes);
	RUN(test_presence_and_message_double_quotes);
	RUN(test_escaping);
	RUN(test_round_trip);
	RUN(test_evbuffer_and_many_attrs);
	RUN(test_invalid_utf8_replaced);
	RUN(test_random_bytes_reparse);
	xs_shutdown();
	return CHECK_EXIT();
}
