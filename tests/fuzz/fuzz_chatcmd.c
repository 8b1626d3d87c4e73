/*
 * fuzz_chatcmd — the provisioning commands typed as chat to the gateway
 * JID (gateway/admin/chatcmd.c: "add bob@201:abcd::1 Bob", "admin create ...").
 *
 * Input: [who] then message bodies separated by NUL bytes, sent in order
 * (add, then remove, ... one session).  `who` picks the sender: alice (has
 * an identity), the admin, erin (none yet, may register), or a stranger on
 * another domain.  A body is text as it comes out of the XML parser: valid
 * UTF-8 without the control characters XML cannot carry; other inputs are
 * skipped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlstring.h>

#include "fixture.h"
#include "route.h"
#include "xmlstream.h"

static const char *const senders[] = {
	FZ_USER "/phone", FZ_ADMIN "/gajim", "erin@example.org/dino",
	"mallory@other.example/x",
};

static int
xml_text_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return 0;
	}
	return xmlCheckUTF8((const xmlChar *)s) != 0;
}

static void
send_body(struct fz *f, const char *from, const char *text)
{
	xmpp_stanza_t *m = xmpp_stanza_new(xs_ctx()), *b, *t;

	if (m == NULL || (b = xmpp_stanza_new(xs_ctx())) == NULL ||
	    (t = xmpp_stanza_new(xs_ctx())) == NULL)
		abort();
	xmpp_stanza_set_name(m, "message");
	xmpp_stanza_set_type(m, "chat");
	xmpp_stanza_set_from(m, from);
	xmpp_stanza_set_to(m, FZ_COMPONENT);
	xmpp_stanza_set_id(m, "c1");
	xmpp_stanza_set_name(b, "body");
	/* <body></body> parses to no text node at all */
	if (*text != '\0') {
		xmpp_stanza_set_text(t, text);
		xmpp_stanza_add_child_ex(b, t, 0);
	} else {
		xmpp_stanza_release(t);
	}
	xmpp_stanza_add_child_ex(m, b, 0);
	gw_route_stanza(&f->gw, m);
	xmpp_stanza_release(m);
	fz_settle(f, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f;
	char *buf, *p, *end;
	const char *from;

	if (size < 1 || size > 16384)
		return 0;
	from = senders[data[0] % 4];
	if ((buf = malloc(size)) == NULL)
		abort();
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	end = buf + size - 1;
	for (p = buf; p <= end; p += strlen(p) + 1)
		if (!xml_text_ok(p, strlen(p))) {
			free(buf);
			return 0;
		}
	f = fz_open();
	for (p = buf; p <= end; p += strlen(p) + 1)
		send_body(f, from, p);
	fz_close(f);
	free(buf);
	return 0;
}
