/*
 * xs_parser: what a peer's bytes turn into.  Real transcript bytes parse
 * into the expected trees whatever way they are split; every kind of
 * hostile input (oversize, depth bomb, DTD/entities, bad UTF-8, junk)
 * ends the stream with the right reason, once, and leaks nothing (run
 * under ASan/LeakSanitizer).
 */
#include <stdlib.h>
#include <string.h>

#include "xmlstream.h"
#include "../check.h"

#define HDR_PASCAL \
	"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<stream:stream " \
	"xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/" \
	"streams\" from=\"bob@200:2::2\" to=\"alice@0200:0001::0001\">"
#define MSG_PURPLE \
	"<message to='alice@200:1::1' from='bob@200:2::2' type='chat'><body>" \
	"hi alice &lt;b&gt;&amp;amp; &quot;quotes&quot;&lt;/b&gt; &apos;apos" \
	"&apos;</body><html xmlns='http://www.w3.org/1999/xhtml'><body><font>" \
	"hi alice &lt;b&gt;&amp;amp; &quot;quotes&quot;&lt;/b&gt; &apos;apos" \
	"&apos;</font></body></html><x xmlns='jabber:x:event'><composing/>" \
	"</x></message>"
#define PRES_PASCAL "<presence></presence>"
#define PING_PURPLE \
	"<iq type='get' id='ping-1795311974-0' from='alice@200:1::1' " \
	"to='bob@200:2::2'><ping xmlns='urn:xmpp:ping'/></iq>"
#define PONG_PASCAL \
	"<iq type='result' to='alice@0200:0001::0001' id='ping-1795311974-0'/>"
#define PING_PASCAL \
	"<iq type=\"get\" id=\"ping-1795311974-9631\" from=\"bob@200:2::2\" " \
	"to=\"alice@200:1::1\"><ping xmlns=\"urn:xmpp:ping\"/></iq>"
#define END "</stream:stream>"

/* What the callbacks saw, stanzas serialized canonically. */
struct rec {
	struct xs_parser	*p;
	char			*hdr;
	char			*st[64];
	int			 n;
	int			 closes;
	enum xs_close		 why;
	char			 detail[256];
	int			 free_on_stanza;	/* free p at this stanza */
	int			 free_on_close;
	int			 reset_on_stanza;
};

static void
rec_header(void *arg, xmpp_stanza_t *h)
{
	struct rec *r = arg;

	free(r->hdr);
	r->hdr = xs_serialize_str(h, XS_SER_SELFCLOSE, NULL);
}

static void
rec_stanza(void *arg, xmpp_stanza_t *st)
{
	struct rec *r = arg;

	if (r->n < 64)
		r->st[r->n] = xs_serialize_str(st, XS_SER_SELFCLOSE, NULL);
	r->n++;
	if (r->free_on_stanza == r->n) {
		xs_parser_free(r->p);
		r->p = NULL;
	} else if (r->reset_on_stanza == r->n)
		CHECK(xs_parser_reset(r->p) == 0);
}

static void
rec_close(void *arg, enum xs_close why, const char *detail)
{
	struct rec *r = arg;

	r->closes++;
	r->why = why;
	snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
	if (r->free_on_close) {
		xs_parser_free(r->p);
		r->p = NULL;
	}
}

static const struct xs_callbacks rec_cb = {
	rec_header, rec_stanza, rec_close,
};

static void
rec_init(struct rec *r, const struct xs_limits *lim)
{
	memset(r, 0, sizeof *r);
	r->p = xs_parser_new(lim, &rec_cb, r);
	CHECK(r->p != NULL);
}

static void
rec_done(struct rec *r)
{
	int i;

	xs_parser_free(r->p);
	free(r->hdr);
	for (i = 0; i < r->n && i < 64; i++)
		free(r->st[i]);
	memset(r, 0, sizeof *r);
}

/* Feed all of `s` in one call; returns the feed's result. */
static int
feed(struct rec *r, const char *s)
{
	return xs_parser_feed(r->p, s, strlen(s));
}

/* Parse a whole input and expect a given close reason. */
static void
expect_close(const char *input, const struct xs_limits *lim,
    enum xs_close want, int want_stanzas)
{
	struct rec r;

	rec_init(&r, lim);
	CHECK(feed(&r, input) == -1);
	CHECK(r.closes == 1);
	if (r.why != want)
		fprintf(stderr, "  input %.60s...: got %s (%s), want %s\n",
		    input, xs_close_str(r.why), r.detail, xs_close_str(want));
	CHECK(r.why == want);
	CHECK(r.n == want_stanzas);
	/* Dead parsers stay dead and quiet. */
	CHECK(feed(&r, "<presence/>") == -1);
	xs_parser_eof(r.p);
	CHECK(r.closes == 1);
	rec_done(&r);
}

static void
test_pascal_header(void)
{
	struct rec r;

	rec_init(&r, NULL);
	CHECK(feed(&r, HDR_PASCAL) == 0);
	CHECK_STR(r.hdr, "<stream:stream xmlns=\"jabber:client\" "
	    "to=\"alice@0200:0001::0001\" from=\"bob@200:2::2\" "
	    "xmlns:stream=\"http://etherx.jabber.org/streams\"/>");
	CHECK(r.n == 0 && r.closes == 0);
	rec_done(&r);
}

static void
check_purple_message(xmpp_stanza_t *m)
{
	xmpp_stanza_t *body, *html, *x, *c;
	char *text;

	CHECK_STR(xmpp_stanza_get_name(m), "message");
	/* Inherited jabber:client is not invented as an attribute. */
	CHECK(xmpp_stanza_get_attribute(m, "xmlns") == NULL);
	CHECK(xmpp_stanza_get_attribute_count(m) == 3);
	CHECK_STR(xmpp_stanza_get_to(m), "alice@200:1::1");
	CHECK_STR(xmpp_stanza_get_type(m), "chat");
	body = xmpp_stanza_get_child_by_name(m, "body");
	CHECK(body != NULL);
	text = body != NULL ? xmpp_stanza_get_text(body) : NULL;
	CHECK_STR(text, "hi alice <b>&amp; \"quotes\"</b> 'apos'");
	free(text);
	html = xmpp_stanza_get_child_by_name(m, "html");
	CHECK(html != NULL);
	if (html != NULL)
		CHECK_STR(xmpp_stanza_get_ns(html),
		    "http://www.w3.org/1999/xhtml");
	x = xmpp_stanza_get_child_by_ns(m, "jabber:x:event");
	CHECK(x != NULL);
	c = x != NULL ? xmpp_stanza_get_children(x) : NULL;
	CHECK(c != NULL && strcmp(xmpp_stanza_get_name(c), "composing") == 0);
	CHECK(c != NULL && xmpp_stanza_get_attribute_count(c) == 0);
}

static void
tree_message(void *arg, xmpp_stanza_t *st)
{
	check_purple_message(st);
	rec_stanza(arg, st);
}

static void
test_purple_message_tree(void)
{
	static const struct xs_callbacks cb = {
		rec_header, tree_message, rec_close,
	};
	struct rec r;

	memset(&r, 0, sizeof r);
	r.p = xs_parser_new(NULL, &cb, &r);
	CHECK(feed(&r, HDR_PASCAL MSG_PURPLE) == 0);
	CHECK(r.n == 1);
	rec_done(&r);
}

static void
test_transcript_stanzas(void)
{
	struct rec r;

	rec_init(&r, NULL);
	CHECK(feed(&r, HDR_PASCAL PRES_PASCAL PRES_PASCAL
	    "<presence from='bob@200:2::2'><x xmlns='vcard-temp:x:update'>"
	    "<photo/></x></presence>" PING_PURPLE PONG_PASCAL PING_PASCAL) == 0);
	CHECK(r.n == 6);
	CHECK_STR(r.st[0], "<presence/>");
	CHECK_STR(r.st[1], "<presence/>");
	CHECK_STR(r.st[2], "<presence from=\"bob@200:2::2\"><x xmlns="
	    "\"vcard-temp:x:update\"><photo/></x></presence>");
	CHECK_STR(r.st[3], "<iq type=\"get\" id=\"ping-1795311974-0\" "
	    "from=\"alice@200:1::1\" to=\"bob@200:2::2\">"
	    "<ping xmlns=\"urn:xmpp:ping\"/></iq>");
	CHECK_STR(r.st[4], "<iq type=\"result\" id=\"ping-1795311974-0\" "
	    "to=\"alice@0200:0001::0001\"/>");
	CHECK_STR(r.st[5], "<iq type=\"get\" id=\"ping-1795311974-9631\" "
	    "from=\"bob@200:2::2\" to=\"alice@200:1::1\">"
	    "<ping xmlns=\"urn:xmpp:ping\"/></iq>");
	CHECK(feed(&r, END) == -1);
	CHECK(r.closes == 1 && r.why == XS_END_STREAM);
	rec_done(&r);
}

#define STREAM HDR_PASCAL PRES_PASCAL " " MSG_PURPLE "\n" PING_PURPLE \
	"<message to=\"a@b\"><body>caf\xc3\xa9 &#233; &#x1F600;<![CDATA[<x>&]]>" \
	"</body><thread>t</thread></message>" PONG_PASCAL END

/* Offsets just past each stanza's end tag in STREAM. */
static void
stanza_ends(const char *s, size_t *ends, int *n)
{
	static const char *const tails[] = {
		PRES_PASCAL, MSG_PURPLE, PING_PURPLE, "</thread></message>",
		PONG_PASCAL,
	};
	const char *at = s;
	int i;

	*n = 0;
	for (i = 0; i < 5; i++) {
		at = strstr(at, tails[i]);
		CHECK(at != NULL);
		if (at == NULL)
			return;
		at += strlen(tails[i]);
		ends[(*n)++] = at - s;
	}
}

static void
test_split_everywhere(void)
{
	const char *s = STREAM;
	size_t len = strlen(s), ends[8], i, cut;
	struct rec whole, r;
	int n, k, j, ok;

	rec_init(&whole, NULL);
	CHECK(feed(&whole, s) == -1);
	CHECK(whole.n == 5 && whole.closes == 1 && whole.why == XS_END_STREAM);
	CHECK_STR(whole.st[3], "<message to=\"a@b\"><body>caf\xc3\xa9 "
	    "\xc3\xa9 \xf0\x9f\x98\x80&lt;x&gt;&amp;</body><thread>t</thread>"
	    "</message>");
	stanza_ends(s, ends, &n);

	/* One byte at a time: each stanza arrives with its last byte. */
	rec_init(&r, NULL);
	k = 0;
	ok = 1;
	for (i = 0; i < len; i++) {
		xs_parser_feed(r.p, s + i, 1);
		while (k < n && ends[k] <= i + 1)
			k++;
		if (r.n != k)
			ok = 0;
	}
	CHECK(ok);
	CHECK(r.n == whole.n && r.closes == 1 && r.why == XS_END_STREAM);
	for (j = 0; j < r.n && j < whole.n; j++)
		CHECK_STR(r.st[j], whole.st[j]);
	rec_done(&r);

	/* Every two-way split. */
	ok = 1;
	for (cut = 0; cut <= len; cut++) {
		rec_init(&r, NULL);
		xs_parser_feed(r.p, s, cut);
		xs_parser_feed(r.p, s + cut, len - cut);
		if (r.n != whole.n || r.closes != 1 || r.why != XS_END_STREAM)
			ok = 0;
		for (j = 0; ok && j < r.n; j++)
			if (strcmp(r.st[j], whole.st[j]) != 0)
				ok = 0;
		if (!ok) {
			fprintf(stderr, "  split at %zu differs\n", cut);
			rec_done(&r);
			break;
		}
		rec_done(&r);
	}
	CHECK(ok);
	rec_done(&whole);
}

static void
test_end_and_junk(void)
{
	struct rec r;

	rec_init(&r, NULL);
	CHECK(feed(&r, HDR_PASCAL PRES_PASCAL END "junk<<</stream:stream>"
	    END "<message/>") == -1);
	CHECK(r.n == 1 && r.closes == 1 && r.why == XS_END_STREAM);
	CHECK(feed(&r, END) == -1);
	xs_parser_eof(r.p);
	CHECK(r.closes == 1);
	rec_done(&r);

	/* EOF without </stream:stream>, even inside a stanza. */
	rec_init(&r, NULL);
	CHECK(feed(&r, HDR_PASCAL "<message><body>hal") == 0);
	xs_parser_eof(r.p);
	CHECK(r.closes == 1 && r.why == XS_END_EOF && r.n == 0);
	rec_done(&r);
}

static void
test_not_stream(void)
{
	expect_close("<?xml version='1.0'?><html><body/></html>", NULL,
	    XS_ERR_NOT_STREAM, 0);
	expect_close("<message to='a@b'/>", NULL, XS_ERR_NOT_STREAM, 0);
	expect_close("hello", NULL, XS_ERR_XML, 0);
}

/* A stanza of exactly `len` bytes: <message><body>xxx</body></message>. */
static char *
stanza_of(size_t len)
{
	static const char pre[] = "<message><body>", post[] = "</body></message>";
	size_t fill = len - strlen(pre) - strlen(post);
	char *s = malloc(len + 1);

	memcpy(s, pre, strlen(pre));
	memset(s + strlen(pre), 'x', fill);
	memcpy(s + strlen(pre) + fill, post, strlen(post) + 1);
	return s;
}

static void
test_oversize(void)
{
	struct xs_limits lim = { .max_stanza = 1000 };
	struct rec r;
	char *s, *big;
	size_t fed, i;

	/* Exactly the limit passes, one byte more does not. */
	rec_init(&r, &lim);
	s = stanza_of(1000);
	CHECK(feed(&r, HDR_PASCAL) == 0);
	CHECK(feed(&r, s) == 0);
	CHECK(feed(&r, " \n") == 0);
	CHECK(feed(&r, s) == 0);
	CHECK(r.n == 2 && r.closes == 0);
	free(s);
	s = stanza_of(1001);
	CHECK(feed(&r, s) == -1);
	CHECK(r.n == 2 && r.closes == 1 && r.why == XS_ERR_TOO_BIG);
	free(s);
	rec_done(&r);

	/*
	 * 10 MB inside one attribute value, one text node, one start tag
	 * name: refused after about the limit, not after 10 MB.
	 */
	big = malloc(1024);
	memset(big, 'a', 1024);
	{
		const char *opens[] = {
			"<message to='", "<message><body>", "<message ",
			"<m", "",
		};
		for (i = 0; i < sizeof opens / sizeof opens[0]; i++) {
			rec_init(&r, &lim);
			if (i < 4) {
				CHECK(feed(&r, HDR_PASCAL) == 0);
				CHECK(feed(&r, opens[i]) == 0);
			} else	/* a huge header */
				CHECK(feed(&r, "<stream:stream to='") == 0);
			for (fed = 0; fed < 10 * 1024 * 1024; fed += 1024)
				if (xs_parser_feed(r.p, big, 1024) != 0)
					break;
			CHECK(fed <= 1000 + 4096 + 1024);
			CHECK(r.closes == 1 && r.why == XS_ERR_TOO_BIG);
			rec_done(&r);
		}
	}
	free(big);
}

static void
test_depth(void)
{
	struct xs_limits lim = { .max_depth = 4 };
	char *bomb;
	size_t i, n = 100000;

	expect_close(HDR_PASCAL "<a><b><c><d/></c></b></a><a><b><c><d><e/>",
	    &lim, XS_ERR_TOO_DEEP, 1);
	/* Default limit 32: 32 levels pass, 33 do not. */
	bomb = malloc(n * 3 + sizeof HDR_PASCAL);
	strcpy(bomb, HDR_PASCAL);
	for (i = 0; i < 32; i++)
		strcat(bomb, "<a>");
	for (i = 0; i < 32; i++)
		strcat(bomb, "</a>");
	{
		struct rec r;

		rec_init(&r, NULL);
		CHECK(feed(&r, bomb) == 0);
		CHECK(r.n == 1 && r.closes == 0);
		rec_done(&r);
	}
	strcpy(bomb, HDR_PASCAL);
	for (i = 0; i < n; i++)
		memcpy(bomb + strlen(HDR_PASCAL) + 3 * i, "<a>", 3);
	bomb[strlen(HDR_PASCAL) + 3 * n] = '\0';
	expect_close(bomb, NULL, XS_ERR_TOO_DEEP, 0);
	free(bomb);
}

static void
test_dtd_and_entities(void)
{
	struct rec r;

	expect_close("<?xml version='1.0'?><!DOCTYPE stream:stream ["
	    "<!ENTITY x 'boom'>]><stream:stream xmlns='jabber:client'>",
	    NULL, XS_ERR_DTD, 0);
	expect_close("<?xml version='1.0'?><!DOCTYPE s SYSTEM "
	    "'file:///etc/passwd'><stream:stream>", NULL, XS_ERR_DTD, 0);
	expect_close("<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 "
	    "'&lol;&lol;&lol;&lol;'>]><stream:stream>&lol2;", NULL,
	    XS_ERR_DTD, 0);
	expect_close(HDR_PASCAL "<message><body>&xxe;</body></message>",
	    NULL, XS_ERR_DTD, 0);
	expect_close(HDR_PASCAL "<message to='&xxe;'/>", NULL, XS_ERR_DTD, 0);
	expect_close(HDR_PASCAL PRES_PASCAL "<!ENTITY x 'y'>", NULL,
	    XS_ERR_DTD, 1);
	expect_close(HDR_PASCAL PRES_PASCAL "<!DOCTYPE x>", NULL,
	    XS_ERR_DTD, 1);
	expect_close(HDR_PASCAL "<message>&#0;</message>", NULL,
	    XS_ERR_XML, 0);

	/* The five predefined ones and character references are fine. */
	rec_init(&r, NULL);
	CHECK(feed(&r, HDR_PASCAL "<message to='a&amp;b&lt;&gt;&quot;&apos;"
	    "&#233;'><body>&amp;&lt;&gt;&quot;&apos;&#xe9;</body></message>")
	    == 0);
	CHECK(r.n == 1);
	CHECK_STR(r.st[0], "<message to=\"a&amp;b&lt;&gt;&quot;'\xc3\xa9\">"
	    "<body>&amp;&lt;&gt;\"'\xc3\xa9</body></message>");
	rec_done(&r);
}

static void
test_bad_utf8(void)
{
	expect_close(HDR_PASCAL "<message><body>caf\xe9</body></message>",
	    NULL, XS_ERR_XML, 0);
	expect_close(HDR_PASCAL "<message to='caf\xc3'/>", NULL, XS_ERR_XML, 0);
	/* Overlong '/' and a lone continuation byte. */
	expect_close(HDR_PASCAL "<message><body>\xc0\xaf</body></message>",
	    NULL, XS_ERR_XML, 0);
	expect_close(HDR_PASCAL PRES_PASCAL "<m>\x80</m>", NULL, XS_ERR_XML, 1);
	/* UTF-16 is not XMPP. */
	{
		static const char u16[] = "\xff\xfe<\0s\0t\0r\0e\0a\0m\0>\0";
		struct rec r;

		rec_init(&r, NULL);
		CHECK(xs_parser_feed(r.p, u16, sizeof u16 - 1) == -1);
		CHECK(r.closes == 1 && r.why == XS_ERR_XML && r.hdr == NULL);
		rec_done(&r);
	}
}

static void
test_not_well_formed(void)
{
	expect_close(HDR_PASCAL "<message><body></message>", NULL,
	    XS_ERR_XML, 0);
	expect_close(HDR_PASCAL PRES_PASCAL "<foo:bar/>", NULL, XS_ERR_XML, 1);
	expect_close(HDR_PASCAL "<message a='1' a='2'/>", NULL, XS_ERR_XML, 0);
	expect_close(HDR_PASCAL "<message a=1/>", NULL, XS_ERR_XML, 0);
	expect_close(HDR_PASCAL "</stream:error>", NULL, XS_ERR_XML, 0);
}

static void
test_namespaces_and_prefixes(void)
{
	struct rec r;

	rec_init(&r, NULL);
	CHECK(feed(&r, "<stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams' id='42' "
	    "from='gw.example.org'><stream:error><conflict xmlns="
	    "'urn:ietf:params:xml:ns:xmpp-streams'/><text xml:lang='en'>"
	    "bye</text></stream:error><nons><child a='1'>t</child></nons>")
	    == 0);
	CHECK(r.n == 2);
	CHECK_STR(r.st[0], "<stream:error><conflict xmlns=\"urn:ietf:params:"
	    "xml:ns:xmpp-streams\"/><text xml:lang=\"en\">bye</text>"
	    "</stream:error>");
	CHECK_STR(r.st[1], "<nons><child a=\"1\">t</child></nons>");
	rec_done(&r);

	/* A stream with no namespaces at all still works. */
	rec_init(&r, NULL);
	CHECK(feed(&r, "<stream><a><b>x</b></a>") == 0);
	CHECK(r.n == 1);
	CHECK_STR(r.hdr, "<stream/>");
	CHECK_STR(r.st[0], "<a><b>x</b></a>");
	rec_done(&r);
}

static void
test_free_in_callbacks(void)
{
	struct rec r;

	/* Freed while it still has stanzas to parse in the same feed. */
	rec_init(&r, NULL);
	r.free_on_stanza = 2;
	CHECK(feed(&r, HDR_PASCAL PRES_PASCAL PRES_PASCAL PRES_PASCAL END)
	    == -1);
	CHECK(r.n == 2 && r.closes == 0 && r.p == NULL);
	rec_done(&r);

	/* Freed from on_close, after an error and after the end. */
	rec_init(&r, NULL);
	r.free_on_close = 1;
	CHECK(feed(&r, HDR_PASCAL "<a></b>") == -1);
	CHECK(r.closes == 1 && r.p == NULL);
	rec_done(&r);
	rec_init(&r, NULL);
	r.free_on_close = 1;
	CHECK(feed(&r, HDR_PASCAL END "junk") == -1);
	CHECK(r.closes == 1 && r.why == XS_END_STREAM && r.p == NULL);
	rec_done(&r);
	rec_init(&r, NULL);
	r.free_on_close = 1;
	CHECK(feed(&r, HDR_PASCAL "<message>") == 0);
	xs_parser_eof(r.p);
	CHECK(r.closes == 1 && r.why == XS_END_EOF && r.p == NULL);
	rec_done(&r);
}

static void
test_reset(void)
{
	struct rec r;

	/* Reset from a callback: the rest of the feed is a new stream. */
	rec_init(&r, NULL);
	r.reset_on_stanza = 1;
	CHECK(feed(&r, "<stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams'><handshake/>"
	    "<stream:stream xmlns='jabber:client' xmlns:stream='http://"
	    "etherx.jabber.org/streams' id='2'><message/>") == 0);
	CHECK(r.n == 2 && r.closes == 0);
	CHECK_STR(r.hdr, "<stream:stream xmlns=\"jabber:client\" id=\"2\" "
	    "xmlns:stream=\"http://etherx.jabber.org/streams\"/>");
	CHECK_STR(r.st[1], "<message/>");

	/* Reset from outside forgets partial input, even a dead stream. */
	CHECK(feed(&r, "<message><bo") == 0);
	CHECK(xs_parser_reset(r.p) == 0);
	CHECK(feed(&r, HDR_PASCAL PRES_PASCAL) == 0);
	CHECK(r.n == 3 && r.closes == 0);
	CHECK(feed(&r, "</x>") == -1);
	CHECK(r.closes == 1);
	CHECK(xs_parser_reset(r.p) == 0);
	CHECK(feed(&r, HDR_PASCAL PRES_PASCAL) == 0);
	CHECK(r.n == 4 && r.closes == 1);
	rec_done(&r);
}

/* After a large stanza the parser rebuilds itself small; it must keep
 * its namespaces and go on exactly as before. */
static void
test_idle_compaction(void)
{
	struct rec r;
	char *s = stanza_of(20000);
	int i;

	rec_init(&r, NULL);
	CHECK(feed(&r, "<stream:stream xmlns='jabber:client' xmlns:stream="
	    "'http://etherx.jabber.org/streams' xmlns:a='urn:a&amp;b'>") == 0);
	for (i = 0; i < 3; i++) {
		CHECK(feed(&r, s) == 0);
		CHECK(feed(&r, "<a:x/><stream:error/>") == 0);
		CHECK(feed(&r, "<presence><sho") == 0);
		CHECK(feed(&r, "w>away</show></presence>") == 0);
	}
	CHECK(r.n == 12 && r.closes == 0);
	CHECK_STR(r.st[10], "<stream:error/>");
	CHECK_STR(r.st[11], "<presence><show>away</show></presence>");
	CHECK(feed(&r, "<b:y/>") == -1);	/* b: was never declared */
	CHECK(r.why == XS_ERR_XML);
	free(s);
	rec_done(&r);
}

int
main(void)
{
	if (xs_init() != 0)
		return 2;
	RUN(test_pascal_header);
	RUN(test_purple_message_tree);
	RUN(test_transcript_stanzas);
	RUN(test_split_everywhere);
	RUN(test_end_and_junk);
	RUN(test_not_stream);
	RUN(test_oversize);
	RUN(test_depth);
	RUN(test_dtd_and_entities);
	RUN(test_bad_utf8);
	RUN(test_not_well_formed);
	RUN(test_namespaces_and_prefixes);
	RUN(test_free_in_callbacks);
	RUN(test_reset);
	RUN(test_idle_compaction);
	xs_shutdown();
	return CHECK_EXIT();
}
