/*
 * Unit tests for barevlink's pure pieces: addresses (BAREV.md §1), the wire
 * formats (§2-5) and the redial backoff.  Byte-exact where the contract is.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "backoff.h"
#include "internal.h"
#include "xmlstream.h"

static int failures;

#define CHECK(c) do {							\
	if (!(c)) {							\
		fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #c); \
		failures++;						\
	}								\
} while (0)

static struct evbuffer *out;

/* take what the formatter wrote, compare, empty the buffer */
static int
got(const char *want)
{
	size_t	 n = evbuffer_get_length(out);
	char	*s = malloc(n + 1);
	int	 same;

	evbuffer_remove(out, s, n);
	s[n] = '\0';
	same = strcmp(s, want) == 0;
	if (!same)
		fprintf(stderr, "got:  %s\nwant: %s\n", s, want);
	free(s);
	return (same);
}

static void
test_addr(void)
{
	char		 buf[BL_ADDRSTRLEN], nick[64];
	struct in6_addr	 a, b;

	CHECK(bl_addr_canon("0200:0001::0001", buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "200:1::1") == 0);
	CHECK(bl_addr_canon("0201:ABCD:0000:0000:0000:0000:0000:00A1", buf,
	    sizeof(buf)) == 0);
	CHECK(strcmp(buf, "201:abcd::a1") == 0);
	CHECK(bl_addr_canon("[201:2::2]", buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "201:2::2") == 0);
	/* RFC 5952: longest zero run compressed, lower case */
	CHECK(bl_addr_canon("2001:db8:0:0:1:0:0:1", buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "2001:db8::1:0:0:1") == 0);
	CHECK(bl_addr_canon("10.0.0.1", buf, sizeof(buf)) == -1);
	CHECK(bl_addr_canon("bob", buf, sizeof(buf)) == -1);
	CHECK(bl_addr_canon("", buf, sizeof(buf)) == -1);
	CHECK(bl_addr_canon("fe80::1%lo", buf, sizeof(buf)) == -1);
	CHECK(bl_addr_canon("200:1::1", buf, 4) == -1);

	CHECK(bl_addr_parse("200:1::1", &a) == 0);
	CHECK(bl_addr_parse("0200:0001:0000::0001", &b) == 0);
	CHECK(bl_addr_cmp(&a, &b) == 0);
	CHECK(bl_addr_parse("200:1::2", &b) == 0);
	CHECK(bl_addr_cmp(&a, &b) < 0);

	CHECK(bl_jid_split("alice@0200:0001::0001", nick, sizeof(nick),
	    &b) == 0);
	CHECK(strcmp(nick, "alice") == 0 && bl_addr_cmp(&a, &b) == 0);
	CHECK(bl_jid_split("Bob@[200:1::1]:1338", nick, sizeof(nick),
	    &b) == 0);
	CHECK(strcmp(nick, "Bob") == 0 && bl_addr_cmp(&a, &b) == 0);
	CHECK(bl_jid_split("bob@example.org", nick, sizeof(nick), &b) == 1);
	CHECK(bl_jid_split("@200:1::1", nick, sizeof(nick), &b) == -1);
	CHECK(bl_jid_split("200:1::1", nick, sizeof(nick), &b) == -1);
	CHECK(bl_jid_split(NULL, nick, sizeof(nick), &b) == -1);
	CHECK(bl_jid_split("averyveryverylongnick@200::1", nick, 8, &b) == -1);
}

static void
test_header(void)
{
	CHECK(bl_fmt_header(out, "alice", "200:1::1", "bob", "200:2::2") == 0);
	CHECK(got("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n"
	    "<stream:stream xmlns=\"jabber:client\" "
	    "xmlns:stream=\"http://etherx.jabber.org/streams\" "
	    "from=\"alice@200:1::1\" to=\"bob@200:2::2\">"));
	CHECK(bl_fmt_header(out, "a\"&<>'", "200:1::1", "b\xc3\xa9", "::1")
	    == 0);
	CHECK(got("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n"
	    "<stream:stream xmlns=\"jabber:client\" "
	    "xmlns:stream=\"http://etherx.jabber.org/streams\" "
	    "from=\"a&quot;&amp;&lt;&gt;'@200:1::1\" to=\"b\xc3\xa9@::1\">"));
}

static void
test_presence(void)
{
	struct bl_presence p;

	memset(&p, 0, sizeof(p));
	p.available = 1;
	CHECK(bl_fmt_presence(out, &p) == 0);
	CHECK(got("<presence><x xmlns=\"vcard-temp:x:update\"><photo></photo>"
	    "</x></presence>"));
	p.show = "xa";
	p.status = "gone <fishing> & \"back\" \xc3\xa9";
	p.photo = "ecd0ebc79d8765e7a67a707547e25c5725894170";
	CHECK(bl_fmt_presence(out, &p) == 0);
	CHECK(got("<presence><show>away</show><status>gone &lt;fishing&gt; "
	    "&amp; \"back\" \xc3\xa9</status><x xmlns=\"vcard-temp:x:update\">"
	    "<photo>ecd0ebc79d8765e7a67a707547e25c5725894170</photo></x>"
	    "</presence>"));
	p.show = "dnd";
	p.status = "";
	p.photo = "";
	CHECK(bl_fmt_presence(out, &p) == 0);
	CHECK(got("<presence><show>dnd</show><x xmlns=\"vcard-temp:x:update\">"
	    "<photo></photo></x></presence>"));
	p.show = "chat";
	CHECK(bl_fmt_presence(out, &p) == 0);
	CHECK(got("<presence><x xmlns=\"vcard-temp:x:update\"><photo></photo>"
	    "</x></presence>"));
	p.available = 0;
	CHECK(bl_fmt_presence(out, &p) == 0);
	CHECK(got("<presence type=\"unavailable\"></presence>"));
}

static void
test_stanzas(void)
{
	CHECK(bl_fmt_message(out, "bob@200:2::2", "alice@200:1::1",
	    "a&b <c> \"d\" 'e' \xd5\xa2\xd5\xa1\xd6\x80\xd5\xa5\xd6\x82") == 0);
	CHECK(got("<message to=\"bob@200:2::2\" from=\"alice@200:1::1\" "
	    "type=\"chat\"><body>a&amp;b &lt;c&gt; \"d\" 'e' "
	    "\xd5\xa2\xd5\xa1\xd6\x80\xd5\xa5\xd6\x82</body></message>"));
	CHECK(bl_fmt_chatstate(out, "bob@200:2::2", "alice@200:1::1",
	    "composing") == 0);
	CHECK(got("<message to=\"bob@200:2::2\" from=\"alice@200:1::1\" "
	    "type=\"chat\"><composing "
	    "xmlns='http://jabber.org/protocol/chatstates'/></message>"));
	CHECK(bl_fmt_chatstate(out, "b@::2", "a@::1", "typing") == -1);
	evbuffer_drain(out, evbuffer_get_length(out));
	CHECK(bl_fmt_ping(out, "ping-7", "alice@200:1::1", "bob@200:2::2")
	    == 0);
	CHECK(got("<iq type='get' id='ping-7' from='alice@200:1::1' "
	    "to='bob@200:2::2'><ping xmlns='urn:xmpp:ping'/></iq>"));
	CHECK(bl_fmt_ping_result(out, "it's", "alice@200:1::1",
	    "bob@200:2::2") == 0);
	CHECK(got("<iq type='result' id='it&apos;s' from='alice@200:1::1' "
	    "to='bob@200:2::2'/>"));
}

static void
test_backoff(void)
{
	unsigned b = 0, i, d;

	b = cm_backoff_next(b, 1000, 300000);
	CHECK(b == 1000);
	CHECK(cm_backoff_next(b, 1000, 300000) == 2000);
	for (i = 0; i < 40; i++)
		b = cm_backoff_next(b, 1000, 300000);
	CHECK(b == 300000);
	CHECK(cm_backoff_next(0xffffffffu, 1000, 0xffffffffu) == 0xffffffffu);
	/* jitter stays within [bound/2, bound] */
	for (i = 0; i < 1000; i++) {
		d = cm_backoff_jitter(1000, i * 2654435761u);
		CHECK(d >= 500 && d <= 1000);
	}
	CHECK(cm_backoff_jitter(1000, 0) == 500);
	CHECK(cm_backoff_jitter(1000, 500) == 1000);
	CHECK(cm_backoff_jitter(0, 12345) == 0);
	CHECK(cm_backoff_jitter(1, 1) == 1);
}

int
main(void)
{
	if (xs_init() == -1 || (out = evbuffer_new()) == NULL)
		return (1);
	test_addr();
	test_header();
	test_presence();
	test_stanzas();
	test_backoff();
	evbuffer_free(out);
	xs_shutdown();
	if (failures > 0) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return (1);
	}
	printf("ok\n");
	return (0);
}
