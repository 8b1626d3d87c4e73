/*
 * test_iqtrack — the gateway's own requests to the server (a user's vCard,
 * an upload slot) take their answer only from the JID they went to: any
 * other user the server routes to the component cannot answer in their
 * place, even with the right id (a user's own server may answer for her
 * account).  Requests time out with a NULL reply.  Errors and timeouts
 * become the kind's problem, shown in status, until a request succeeds;
 * an OMEMO key read's item-not-found (the user has no keys) does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gw.h"
#include "iqtrack.h"
#include "xmlstream.h"
#include "../check.h"

static char sent_id[64];
static int calls;
static xmpp_stanza_t *got;

static int
catch_send(struct gw *gw, xmpp_stanza_t *st)
{
	(void)gw;
	snprintf(sent_id, sizeof(sent_id), "%s", xmpp_stanza_get_id(st));
	return 0;
}

static void
answered(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	(void)gw;
	(void)arg;
	calls++;
	got = reply ? xmpp_stanza_clone(reply) : NULL;
}

static xmpp_stanza_t *iq(const char *, const char *, const char *, const char *);

/* a callback that asks again whenever it is told "no answer" */
static int asked_again, refused_again;

static void
asks_again(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	xmpp_stanza_t *req;

	(void)arg;
	if (reply != NULL || asked_again >= 1000)
		return;
	asked_again++;
	req = iq("get", NULL, "alice@example.org", NULL);
	if (gw_iq_request(gw, req, GW_IQ_VCARD, 5000, asks_again, NULL) != 0)
		refused_again++;
	xmpp_stanza_release(req);
}

static xmpp_stanza_t *
iq(const char *type, const char *from, const char *to, const char *id)
{
	xmpp_stanza_t *s = xmpp_stanza_new(xs_ctx());

	xmpp_stanza_set_name(s, "iq");
	xmpp_stanza_set_type(s, type);
	if (from)
		xmpp_stanza_set_from(s, from);
	if (to)
		xmpp_stanza_set_to(s, to);
	if (id)
		xmpp_stanza_set_id(s, id);
	return s;
}

/* only the addressee answers a request; a forged reply is dropped */
static void
test_only_the_addressee_answers(struct gw *gw, char *first, size_t len)
{
	xmpp_stanza_t *req, *forged, *real;

	/* a request without an addressee cannot be matched: refused */
	req = iq("get", NULL, NULL, NULL);
	CHECK(gw_iq_request(gw, req, GW_IQ_UPLOAD, 5000, answered, NULL) == -1);
	xmpp_stanza_release(req);

	req = iq("get", "barev.example.org", "upload.example.org", NULL);
	CHECK(gw_iq_request(gw, req, GW_IQ_UPLOAD, 5000, answered, NULL) == 0);
	xmpp_stanza_release(req);
	snprintf(first, len, "%s", sent_id);
	CHECK(strncmp(first, "gw-", 3) == 0);

	/* mallory's forged slot with the right id: taken off the wire, not
	 * given to the waiting request */
	forged = iq("result", "mallory@example.org/x", "barev.example.org", first);
	CHECK(gw_iq_track_route(gw, forged) == 1);
	CHECK(calls == 0);
	xmpp_stanza_release(forged);
	forged = iq("result", NULL, "barev.example.org", first);
	CHECK(gw_iq_track_route(gw, forged) == 1);
	CHECK(calls == 0);
	xmpp_stanza_release(forged);

	/* the service itself (any case) answers it */
	real = iq("result", "Upload.Example.org", "barev.example.org", first);
	CHECK(gw_iq_track_route(gw, real) == 1);
	CHECK(calls == 1 && got != NULL);
	xmpp_stanza_release(real);
	if (got)
		xmpp_stanza_release(got);
}

/* fresh unguessable ids; a timeout answers NULL and is the kind's problem */
static void
test_timeout(struct gw *gw, const char *first)
{
	xmpp_stanza_t *req;
	char buf[512];

	/* ids are not guessable from the previous one */
	req = iq("get", NULL, "alice@example.org", NULL);
	CHECK(gw_iq_request(gw, req, GW_IQ_UPLOAD, 1, answered, NULL) == 0);
	xmpp_stanza_release(req);
	CHECK(strcmp(first, sent_id) != 0);
	CHECK(strncmp(sent_id, "gw-2-", 5) == 0 && strlen(sent_id) == 13);

	/* unanswered: the callback gets NULL at the timeout */
	event_base_dispatch(gw->base);
	CHECK(calls == 2 && got == NULL);

	/* the timeout is the kind's problem until a request of it succeeds */
	CHECK(strstr(gw_iq_problem(gw, GW_IQ_UPLOAD, buf, sizeof(buf)),
	    "no answer within 1s from alice@example.org") != NULL);
	CHECK(strstr(gw_iq_track_status(gw, buf, sizeof(buf)),
	    "Server refused: upload slot request (XEP-0363) to alice@example.org:"
	    " no answer within 1s (1 time(s)") != NULL);
}

/* an error from `from` to a request of `kind` to `to` */
static xmpp_stanza_t *
error_reply(struct gw *gw, enum gw_iq_kind kind, const char *to,
    const char *from, const char *error)
{
	xmpp_stanza_t *req = iq("get", NULL, to, NULL), *real;
	char xml[512];

	CHECK(gw_iq_request(gw, req, kind, 5000, answered, NULL) == 0);
	xmpp_stanza_release(req);
	snprintf(xml, sizeof(xml), "<iq type='error' from='%s'>%s</iq>", from, error);
	real = xmpp_stanza_new_from_string(xs_ctx(), xml);
	xmpp_stanza_set_id(real, sent_id);
	CHECK(gw_iq_track_route(gw, real) == 1);
	if (got)
		xmpp_stanza_release(got);
	return real;
}

/* errors are recorded with condition and text; a result clears them */
static void
test_errors_and_results(struct gw *gw)
{
	xmpp_stanza_t *req, *real;
	char buf[512];

	/* a user's server answers for her account */
	real = error_reply(gw, GW_IQ_VCARD, "bob@example.org", "example.org",
	    "<error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no vCards for you</text>"
	    "</error>");
	CHECK(calls == 3);
	CHECK_STR(gw_iq_error_text(real, buf, sizeof(buf)),
	    "forbidden (no vCards for you)");
	CHECK_STR(gw_iq_problem(gw, GW_IQ_VCARD, buf, sizeof(buf)),
	    "forbidden (no vCards for you) from bob@example.org");
	xmpp_stanza_release(real);

	/* a user without OMEMO keys has no node: an answer, not a problem */
	real = error_reply(gw, GW_IQ_PEP, "bob@example.org", "bob@example.org",
	    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "</error>");
	CHECK(calls == 4);
	CHECK_STR(gw_iq_problem(gw, GW_IQ_PEP, buf, sizeof(buf)), "");
	xmpp_stanza_release(real);
	real = error_reply(gw, GW_IQ_PEP, "bob@example.org", "bob@example.org",
	    "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "</error>");
	CHECK_STR(gw_iq_problem(gw, GW_IQ_PEP, buf, sizeof(buf)),
	    "forbidden from bob@example.org");
	xmpp_stanza_release(real);

	/* a result clears the kind's problem */
	req = iq("get", NULL, "upload.example.org", NULL);
	CHECK(gw_iq_request(gw, req, GW_IQ_UPLOAD, 5000, answered, NULL) == 0);
	xmpp_stanza_release(req);
	real = iq("result", "upload.example.org", "barev.example.org", sent_id);
	CHECK(gw_iq_track_route(gw, real) == 1);
	xmpp_stanza_release(real);
	if (got)
		xmpp_stanza_release(got);
	CHECK_STR(gw_iq_problem(gw, GW_IQ_UPLOAD, buf, sizeof(buf)), "");
	CHECK(strstr(gw_iq_track_status(gw, buf, sizeof(buf)), "upload") == NULL);
	CHECK(strstr(buf, "vCard request") != NULL);
	gw_iq_track_reset(gw);
	CHECK_STR(gw_iq_track_status(gw, buf, sizeof(buf)),
	    "Server requests: all answered\n");

	/* not ours, or not a reply: left to the other rules */
	real = iq("result", "alice@example.org", "barev.example.org", "other");
	CHECK(gw_iq_track_route(gw, real) == 0);
	xmpp_stanza_release(real);
}

/*
 * The shutdown finishes every request with NULL; one whose callback asks
 * again is refused then, so the shutdown ends (it looped for ever before),
 * and the tracker takes requests again afterwards.
 */
static void
test_shutdown(struct gw *gw)
{
	xmpp_stanza_t *req = iq("get", NULL, "alice@example.org", NULL);

	CHECK(gw_iq_request(gw, req, GW_IQ_VCARD, 5000, asks_again, NULL) == 0);
	xmpp_stanza_release(req);
	gw_iq_track_shutdown(gw);
	CHECK(asked_again == 1 && refused_again == 1);
	req = iq("get", NULL, "alice@example.org", NULL);
	CHECK(gw_iq_request(gw, req, GW_IQ_VCARD, 5000, answered, NULL) == 0);
	xmpp_stanza_release(req);
	gw_iq_track_shutdown(gw);
}

int
main(void)
{
	struct gw gw;
	char first[64];

	if (xs_init() == -1)
		return 1;
	memset(&gw, 0, sizeof(gw));
	gw.base = event_base_new();
	gw.send_fn = catch_send;
	test_only_the_addressee_answers(&gw, first, sizeof(first));
	test_timeout(&gw, first);
	test_errors_and_results(&gw);
	test_shutdown(&gw);
	event_base_free(gw.base);
	xs_shutdown();
	return CHECK_EXIT();
}
