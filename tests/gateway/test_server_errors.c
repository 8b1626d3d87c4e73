/*
 * test_server_errors — a server that answers the gateway's own requests
 * with errors (ejabberd 23.01 answers a privileged roster push with
 * internal-server-error, module_not_loaded).  For each kind of request the
 * gateway sends: one WARN line with the server's condition and text (a
 * repeat is counted, not logged again), `status` says it, the fallback
 * happens (a refused roster push -> a subscription request from the same
 * JID), and everything else keeps working.  Also: the gateway puts its own
 * JID in every user's roster and is online there.
 *
 * The fake server is gw->send_fn: it keeps what the gateway sends, and the
 * test answers the iqs through the router as the server would.  Log lines
 * are read back from stderr, redirected to a file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bridge.h"
#include "bridge_int.h"
#include "component.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "provision.h"
#include "store.h"
#include "xmlstream.h"
#include "gwtest.h"
#include "../check.h"

#define GWJID GWT_JID
#define ALICE "alice@example.org"
#define BOB_JID "bob\\40201\\3a2\\3a\\3a2@" GWJID	/* XEP-0106 */
#define CAROL_JID "carol\\40201\\3a3\\3a\\3a3@" GWJID

static struct gw gw;
static char logpath[512];

/* the roster push for `item` among what was sent */
static xmpp_stanza_t *
find_push(const char *item)
{
	for (int i = 0; i < gwt_nsent; i++) {
		xmpp_stanza_t *q = xmpp_stanza_get_child_by_name_and_ns(gwt_sent[i],
		    "query", "jabber:iq:roster");
		xmpp_stanza_t *it = q ? xmpp_stanza_get_child_by_name(q, "item") : NULL;

		if (it && gwt_streq(xmpp_stanza_get_attribute(it, "jid"), item) &&
		    gwt_streq(xmpp_stanza_get_type(gwt_sent[i]), "set"))
			return gwt_sent[i];
	}
	return NULL;
}

static void
deliver(const char *xml)
{
	gwt_deliver(&gw, xml);
}

/* the server answers `req` (one of ours) with an error */
static void
answer_error(xmpp_stanza_t *req, const char *cond, const char *text)
{
	char xml[2048];

	snprintf(xml, sizeof(xml), "<iq type='error' id='%s' from='%s' to='%s'>"
	    "<error type='cancel'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "%s%s%s</error></iq>", xmpp_stanza_get_id(req), xmpp_stanza_get_to(req),
	    xmpp_stanza_get_from(req), cond,
	    text ? "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>" : "",
	    text ? text : "", text ? "</text>" : "");
	deliver(xml);
}

static void
answer_result(xmpp_stanza_t *req)
{
	char xml[1024];

	snprintf(xml, sizeof(xml), "<iq type='result' id='%s' from='%s' to='%s'/>",
	    xmpp_stanza_get_id(req), xmpp_stanza_get_to(req), xmpp_stanza_get_from(req));
	deliver(xml);
}

/* the privileged roster get (XEP-0356) sent to `user`, answered with her
 * roster `items` (XML of <item/>s, "" = empty); 0, or -1 if none was sent */
static int
answer_roster_get(const char *user, const char *items)
{
	xmpp_stanza_t *get = gwt_find_sent("iq", "get", GWJID, user);
	char xml[4096];

	if (get == NULL || xmpp_stanza_get_child_by_name_and_ns(get, "query",
	    "jabber:iq:roster") == NULL)
		return -1;
	snprintf(xml, sizeof(xml), "<iq type='result' id='%s' from='%s' to='%s'>"
	    "<query xmlns='jabber:iq:roster'>%s</query></iq>",
	    xmpp_stanza_get_id(get), user, GWJID, items);
	deliver(xml);
	return 0;
}

/* how many log lines so far contain every one of the words */
static int
log_lines(const char *w1, const char *w2, const char *w3)
{
	FILE *f = fopen(logpath, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, w1) && (!w2 || strstr(line, w2)) && (!w3 || strstr(line, w3)))
			n++;
	fclose(f);
	return n;
}

static const char *
status_text(void)
{
	static char buf[8192];

	prov_status(&gw, buf, sizeof(buf));
	return buf;
}

/* ---- scenarios ---- */

/* alice gets an identity: the gateway is in her roster (by subscription
 * request while no privilege is granted) and online for her */
static void
test_new_identity_gets_the_gateway(void)
{
	struct prov_result r;
	char port[16];
	xmpp_stanza_t *sub, *nick;

	gwt_forget_sent();
	snprintf(port, sizeof(port), "%d", gwt_free_port());
	CHECK(prov_identity_create(&gw, ALICE, "alice", "::1", port, &r) == 0);
	sub = gwt_find_sent("presence", "subscribe", GWJID, ALICE);
	CHECK(sub != NULL);
	nick = sub ? xmpp_stanza_get_child_by_name(sub, "nick") : NULL;
	CHECK(nick != NULL && gwt_streq(xmpp_stanza_get_ns(nick), "http://jabber.org/protocol/nick"));
	CHECK(gwt_find_sent("presence", "", GWJID, ALICE) != NULL);

	/* her client probes the gateway and subscribes to it: approved, online */
	gwt_forget_sent();
	deliver("<presence type='probe' from='" ALICE "' to='" GWJID "'/>");
	CHECK(gwt_find_sent("presence", "", GWJID, ALICE) != NULL);
	gwt_forget_sent();
	deliver("<presence type='subscribe' from='someone@example.net' to='" GWJID "'/>");
	CHECK(gwt_find_sent("presence", "subscribed", GWJID, "someone@example.net") != NULL);
	CHECK(gwt_find_sent("presence", "", GWJID, "someone@example.net") != NULL);
}

/* The server grants the roster, then refuses every push (ejabberd 23.01). */
static void
test_refused_roster_push_falls_back(void)
{
	struct prov_result r;
	xmpp_stanza_t *gwpush, *bobpush;
	int warns;

	CHECK(prov_contact_add(&gw, ALICE, "bob@201:2::2", NULL, &r) == 0);
	gwt_forget_sent();
	deliver("<message from='example.org' to='" GWJID "'>"
	    "<privilege xmlns='urn:xmpp:privilege:2'>"
	    "<perm access='roster' type='both'/>"
	    "<perm access='message' type='outgoing'/></privilege></message>");
	CHECK(strstr(status_text(), "roster privilege granted by example.org\n") != NULL);
	/* the grant reads too: alice's roster is read first (empty here),
	 * then what is missing is pushed */
	CHECK(find_push(GWJID) == NULL && find_push(BOB_JID) == NULL);
	CHECK(answer_roster_get(ALICE, "") == 0);
	gwpush = find_push(GWJID);
	bobpush = find_push(BOB_JID);
	CHECK(gwpush != NULL && bobpush != NULL);
	CHECK(gwpush && gwt_streq(xmpp_stanza_get_to(gwpush), ALICE));
	/* no subscription request yet: the push does the job */
	CHECK(gwt_find_sent("presence", "subscribe", NULL, NULL) == NULL);
	if (gwpush == NULL || bobpush == NULL)
		return;
	gwpush = xmpp_stanza_clone(gwpush);
	bobpush = xmpp_stanza_clone(bobpush);
	gwt_forget_sent();

	answer_error(gwpush, "internal-server-error", "module_not_loaded");
	answer_error(bobpush, "internal-server-error", "module_not_loaded");
	/* one WARN with the condition and text, for two refusals */
	warns = log_lines(" WARN iqtrack:", "internal-server-error (module_not_loaded)", "roster");
	CHECK(warns == 1);
	CHECK(log_lines(" WARN bridge:", "refused a roster push", "subscription requests") == 1);
	/* the fallback: each item asks alice itself */
	CHECK(gwt_find_sent("presence", "subscribe", GWJID, ALICE) != NULL);
	CHECK(gwt_find_sent("presence", "subscribe", BOB_JID, ALICE) != NULL);
	CHECK(gwt_find_sent("presence", "probe", BOB_JID, ALICE) == NULL);
	/* alice accepts bob's request: now her presence is asked for */
	gwt_forget_sent();
	deliver("<presence type='subscribed' from='" ALICE "' to='" BOB_JID "'/>");
	CHECK(gwt_find_sent("presence", "probe", BOB_JID, ALICE) != NULL);
	/* status says it */
	CHECK(strstr(status_text(), "pushes are refused: internal-server-error"
	    " (module_not_loaded)") != NULL);
	CHECK(strstr(status_text(), "Server refused: roster request") != NULL);
	if (warns != 1)
		fprintf(stderr, "status:\n%s", status_text());
	xmpp_stanza_release(gwpush);
	xmpp_stanza_release(bobpush);
}

/* While refused, a new contact is asked for at once; a push that works
 * again ends the fallback. */
static void
test_roster_privilege_recovers(void)
{
	struct prov_result r;
	xmpp_stanza_t *push;

	gwt_forget_sent();
	CHECK(prov_contact_add(&gw, ALICE, "carol@201:3::3", NULL, &r) == 0);
	CHECK(gwt_find_sent("presence", "subscribe", CAROL_JID, ALICE) != NULL);
	push = find_push(CAROL_JID);
	CHECK(push != NULL);
	if (push == NULL)
		return;
	/* no probe from carol before she is in alice's roster: a server
	 * answers it with "unsubscribed", which reads as alice removing her */
	CHECK(gwt_find_sent("presence", "probe", CAROL_JID, ALICE) == NULL);
	push = xmpp_stanza_clone(push);
	gwt_forget_sent();
	answer_result(push);
	xmpp_stanza_release(push);
	CHECK(gwt_find_sent("presence", "probe", CAROL_JID, ALICE) != NULL);
	CHECK(strstr(status_text(), "roster privilege granted by example.org\n") != NULL);
	CHECK(strstr(status_text(), "Server requests: all answered") != NULL);
	CHECK(log_lines(" INFO iqtrack:", "works again", NULL) == 1);
	/* the next contact goes by push alone */
	gwt_forget_sent();
	CHECK(prov_contact_add(&gw, ALICE, "dave@201:4::4", NULL, &r) == 0);
	CHECK(find_push("dave\\40201\\3a4\\3a\\3a4@" GWJID) != NULL);
	CHECK(gwt_find_sent("presence", "subscribe", NULL, NULL) == NULL);
}

/* A push the server does not answer in time is not a refusal: a server
 * busy with a start's pushes answers late, and a subscription request per
 * late push would only add to its load (bench/scale). */
static void
test_unanswered_push_is_not_a_refusal(void)
{
	struct prov_result r;
	struct timeval tv = { 0, 400 * 1000 };

	roster_test_push_ms(&gw, 100);
	gwt_forget_sent();
	CHECK(prov_contact_add(&gw, ALICE, "erin@201:5::5", NULL, &r) == 0);
	CHECK(find_push("erin\\40201\\3a5\\3a\\3a5@" GWJID) != NULL);
	event_base_loopexit(gw.base, &tv);	/* the push times out meanwhile */
	event_base_dispatch(gw.base);
	CHECK(gwt_find_sent("presence", "subscribe", NULL, NULL) == NULL);
	CHECK(strstr(status_text(), "roster privilege granted by example.org\n") != NULL);
	CHECK(strstr(status_text(), "no answer") != NULL);
	roster_test_push_ms(&gw, 0);
}

/* alice's avatar: the server refuses her vCard, twice */
static void
test_refused_vcard(void)
{
	xmpp_stanza_t *get;

	for (int round = 0; round < 2; round++) {
		char xml[512];

		gwt_forget_sent();
		snprintf(xml, sizeof(xml), "<presence from='" ALICE "/phone' to='%s'>"
		    "<x xmlns='vcard-temp:x:update'><photo>%s</photo></x></presence>",
		    BOB_JID, round ? "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" :
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		deliver(xml);
		get = gwt_find_sent("iq", "get", GWJID, ALICE);
		CHECK(get != NULL && xmpp_stanza_get_child_by_name_and_ns(get,
		    "vCard", "vcard-temp") != NULL);
		if (get == NULL)
			return;
		get = xmpp_stanza_clone(get);
		answer_error(get, "service-unavailable", "vCards are off here");
		xmpp_stanza_release(get);
	}
	CHECK(log_lines(" WARN iqtrack:", "vCard", "service-unavailable (vCards are off here)") == 1);
	CHECK(strstr(status_text(), "vCard request to " ALICE ": service-unavailable"
	    " (vCards are off here) (2 time(s)") != NULL);
}

/* after all that, the rest works: a contact's disco, the status check */
static void
test_nothing_else_breaks(void)
{
	xmpp_stanza_t *res;

	gwt_forget_sent();
	deliver("<iq type='get' id='d1' from='" ALICE "/phone' to='" BOB_JID "'>"
	    "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
	res = gwt_find_sent("iq", "result", BOB_JID, ALICE "/phone");
	CHECK(res != NULL);
	gwt_forget_sent();
	deliver("<iq type='get' id='p1' from='" ALICE "/phone' to='" GWJID "'>"
	    "<ping xmlns='urn:xmpp:ping'/></iq>");
	CHECK(gwt_find_sent("iq", "result", GWJID, ALICE "/phone") != NULL);
	/* an unrelated error to the gateway is not taken for an answer */
	gwt_forget_sent();
	deliver("<iq type='error' id='gw-999-00000000' from='" ALICE "' to='" GWJID "'>"
	    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "</error></iq>");
	CHECK(gwt_nsent == 0);
}

int
main(void)
{
	const char *dir = getenv("TEST_TMPDIR");
	char path[512], spool[600];
	int saved, fd;
	FILE *f;

	if (dir == NULL)
		dir = ".";
	snprintf(path, sizeof(path), "%s/server_errors.sqlite", dir);
	unlink(path);
	snprintf(logpath, sizeof(logpath), "%s/server_errors.log", dir);
	snprintf(spool, sizeof(spool), "spool_dir = %s/spool\n", dir);
	if (gwt_world_start(&gw, dir, path, spool, gwt_capture) == -1)
		return 2;
	/* the log (stderr) goes to a file the checks read */
	fflush(stderr);
	saved = dup(2);
	if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    dup2(fd, 2) == -1) {
		perror(logpath);
		return 2;
	}
	close(fd);
	log_set_level(LOG_LVL_INFO);

	RUN(test_new_identity_gets_the_gateway);
	RUN(test_refused_roster_push_falls_back);
	RUN(test_roster_privilege_recovers);
	RUN(test_unanswered_push_is_not_a_refusal);
	RUN(test_refused_vcard);
	RUN(test_nothing_else_breaks);

	gwt_forget_sent();
	gwt_world_stop(&gw);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	/* the run's log, checks included, for whoever reads the test output */
	if ((f = fopen(logpath, "r")) != NULL) {
		char line[4096];

		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
		fclose(f);
	}
	return CHECK_EXIT();
}
