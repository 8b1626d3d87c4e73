/*
 * test_service — what a user's client sees when it talks to the gateway
 * JID itself: disco#info shows a Barev gateway, disco#items answers, ping
 * and version answer, anything unknown is refused with service-unavailable
 * (never silence), and errors are never answered with errors.
 *
 * Stanzas go in through the same parser the component link uses and the
 * replies are caught by the gw->send_fn seam and checked as serialized XML.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "route.h"
#include "service.h"
#include "xmlstream.h"

#define COMP	"barev.example.org"

static int failures;
static xmpp_stanza_t *parsed;
static char *sent[8];
static int nsent;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		failures++;						\
	}								\
} while (0)

static void
on_stanza(void *arg, xmpp_stanza_t *st)
{
	(void)arg;
	parsed = xmpp_stanza_clone(st);
}

static void
on_close(void *arg, enum xs_close why, const char *detail)
{
	(void)arg;
	(void)why;
	(void)detail;
}

/* one stanza as the component link would hand it over */
static xmpp_stanza_t *
stanza(const char *xml)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:component:"
	    "accept' xmlns:stream='http://etherx.jabber.org/streams' id='x'>";
	struct xs_callbacks cb = { NULL, on_stanza, on_close };
	struct xs_parser *p = xs_parser_new(NULL, &cb, NULL);

	parsed = NULL;
	if (p == NULL || xs_parser_feed(p, hdr, sizeof hdr - 1) == -1 ||
	    xs_parser_feed(p, xml, strlen(xml)) == -1 || parsed == NULL) {
		fprintf(stderr, "cannot parse %s\n", xml);
		exit(2);
	}
	xs_parser_free(p);
	return parsed;
}

static int
capture(struct gw *gw, xmpp_stanza_t *st)
{
	(void)gw;
	if (nsent < 8)
		sent[nsent++] = xs_serialize_str(st, 0, NULL);
	return 0;
}

static void
reset_sent(void)
{
	while (nsent > 0)
		free(sent[--nsent]);
}

/* route `xml`, expect exactly one reply containing every needle */
static void
expect_reply(struct gw *gw, const char *xml, const char *const *needles)
{
	xmpp_stanza_t *st = stanza(xml);

	reset_sent();
	gw_route_stanza(gw, st);
	xmpp_stanza_release(st);
	if (nsent != 1) {
		fprintf(stderr, "%d replies to %s\n", nsent, xml);
		failures++;
		return;
	}
	for (; *needles != NULL; needles++) {
		if (strstr(sent[0], *needles) == NULL) {
			fprintf(stderr, "reply %s\n  to %s\n  lacks %s\n",
			    sent[0], xml, *needles);
			failures++;
		}
	}
}

static void
expect_silence(struct gw *gw, const char *xml)
{
	xmpp_stanza_t *st = stanza(xml);

	reset_sent();
	gw_route_stanza(gw, st);
	xmpp_stanza_release(st);
	if (nsent != 0) {
		fprintf(stderr, "unexpected reply %s\n  to %s\n", sent[0], xml);
		failures++;
	}
}

#define ALICE "alice@example.org/phone"

static void
test_user_discovers_the_gateway(struct gw *gw)
{
	expect_reply(gw, "<iq type='get' id='d1' from='" ALICE "' to='" COMP
	    "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
	    (const char *[]){ "type=\"result\"", "id=\"d1\"",
	    "to=\"" ALICE "\"", "from=\"" COMP "\"",
	    "category=\"gateway\"", "type=\"barev\"", "name=\"Barev gateway\"",
	    "var=\"http://jabber.org/protocol/disco#info\"",
	    "var=\"http://jabber.org/protocol/disco#items\"",
	    "var=\"urn:xmpp:ping\"", "var=\"jabber:iq:version\"",
	    "var=\"urn:example:later\"", NULL });
	expect_reply(gw, "<iq type='get' id='d2' from='" ALICE "' to='" COMP
	    "'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
	    (const char *[]){ "type=\"result\"", "id=\"d2\"",
	    "http://jabber.org/protocol/disco#items", NULL });
	expect_reply(gw, "<iq type='get' id='d3' from='" ALICE "' to='" COMP
	    "'><query xmlns='http://jabber.org/protocol/disco#info' "
	    "node='nonsense'/></iq>",
	    (const char *[]){ "type=\"error\"", "id=\"d3\"",
	    "<item-not-found", NULL });
}

/* what one gateway advertises is its own (gw->service), not the process's */
static void
test_features_belong_to_their_gateway(struct gw *gw)
{
	struct gw other;

	memset(&other, 0, sizeof other);
	other.cfg.component_jid = gw->cfg.component_jid;
	other.send_fn = capture;
	expect_reply(&other, "<iq type='get' id='o1' from='" ALICE "' to='" COMP
	    "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
	    (const char *[]){ "type=\"result\"", "id=\"o1\"",
	    "var=\"urn:xmpp:ping\"", NULL });
	CHECK(nsent == 1 && strstr(sent[0], "urn:example:later") == NULL);
	gw_service_reset(&other);
}

static void
test_ping_and_version(struct gw *gw)
{
	expect_reply(gw, "<iq type='get' id='p1' from='" ALICE "' to='" COMP
	    "'><ping xmlns='urn:xmpp:ping'/></iq>",
	    (const char *[]){ "type=\"result\"", "id=\"p1\"",
	    "to=\"" ALICE "\"", NULL });
	expect_reply(gw, "<iq type='get' id='v1' from='" ALICE "' to='" COMP
	    "/res'><query xmlns='jabber:iq:version'/></iq>",
	    (const char *[]){ "type=\"result\"", "id=\"v1\"",
	    "<name>barev-gateway</name>",
	    "<version>" BAREV_VERSION "</version>", NULL });
	CHECK(nsent == 1 && strstr(sent[0], "<os") == NULL);
}

static void
test_unknown_requests_are_refused(struct gw *gw)
{
	expect_reply(gw, "<iq type='get' id='u1' from='" ALICE "' to='" COMP
	    "'><query xmlns='urn:example:unknown'/></iq>",
	    (const char *[]){ "type=\"error\"", "id=\"u1\"",
	    "<error type=\"cancel\">", "<service-unavailable xmlns=\""
	    "urn:ietf:params:xml:ns:xmpp-stanzas\"", NULL });
	expect_reply(gw, "<iq type='set' id='u2' from='" ALICE "' to='" COMP
	    "'><query xmlns='jabber:iq:version'/></iq>",
	    (const char *[]){ "type=\"error\"", "service-unavailable", NULL });
	expect_reply(gw, "<iq type='get' id='u3' from='" ALICE "' to='" COMP
	    "'/>", (const char *[]){ "type=\"error\"",
	    "service-unavailable", NULL });
}

static void
test_errors_and_results_are_not_answered(struct gw *gw)
{
	xmpp_stanza_t *st;

	expect_silence(gw, "<iq type='error' id='e1' from='" ALICE "' to='"
	    COMP "'><error type='cancel'><service-unavailable xmlns='urn:"
	    "ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
	expect_silence(gw, "<iq type='result' id='e2' from='" ALICE "' to='"
	    COMP "'/>");
	/* directly: an error stanza or one without a sender gets nothing */
	reset_sent();
	st = stanza("<message type='error' from='" ALICE "' to='" COMP "'/>");
	gw_reply_error(gw, st, "cancel", "service-unavailable", NULL);
	xmpp_stanza_release(st);
	st = stanza("<message to='" COMP "'><body>x</body></message>");
	gw_reply_error(gw, st, "cancel", "service-unavailable", NULL);
	xmpp_stanza_release(st);
	CHECK(nsent == 0);
}

static void
test_error_reply_shape(void)
{
	xmpp_stanza_t *st = stanza("<message id='m1' type='chat' from='"
	    ALICE "' to='bob@" COMP "'><body>hi</body></message>");
	xmpp_stanza_t *r = gw_error_reply(st, "wait", "recipient-unavailable",
	    "try later");
	char *s = r != NULL ? xs_serialize_str(r, 0, NULL) : NULL;

	CHECK(s != NULL);
	if (s != NULL) {
		CHECK(strstr(s, "<message") == s);
		CHECK(strstr(s, "to=\"" ALICE "\"") != NULL);
		CHECK(strstr(s, "from=\"bob@" COMP "\"") != NULL);
		CHECK(strstr(s, "type=\"error\"") != NULL);
		CHECK(strstr(s, "id=\"m1\"") != NULL);
		CHECK(strstr(s, "<error type=\"wait\"><recipient-unavailable "
		    "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"") != NULL);
		CHECK(strstr(s, ">try later</text>") != NULL);
	}
	free(s);
	if (r != NULL)
		xmpp_stanza_release(r);
	xmpp_stanza_release(st);
}

int
main(void)
{
	struct gw gw;

	if (xs_init() == -1)
		return 2;
	memset(&gw, 0, sizeof gw);
	gw.cfg.component_jid = (char *)COMP;
	gw.send_fn = capture;
	CHECK(gw_service_add_feature(&gw, "urn:example:later") == 0);
	CHECK(gw_service_add_feature(&gw, "urn:example:later") == 0);

	test_user_discovers_the_gateway(&gw);
	test_features_belong_to_their_gateway(&gw);
	test_ping_and_version(&gw);
	test_unknown_requests_are_refused(&gw);
	test_errors_and_results_are_not_answered(&gw);
	test_error_reply_shape();

	reset_sent();
	gw_service_reset(&gw);
	xs_shutdown();
	if (failures > 0) {
		fprintf(stderr, "test_service: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_service: ok\n");
	return 0;
}
