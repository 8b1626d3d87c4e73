/*
 * test_rostersync — at a roster grant that reads as well as writes
 * (XEP-0356 roster "both"), the gateway reads each user's roster and pushes
 * only the items missing or different (issue 13: start-up work proportional
 * to what changed).  A roster that is right costs no push; a read refused
 * or unanswered falls back to pushing everything; reads are paced; a grant
 * that only writes pushes everything without reading.
 *
 * The fake server is gw->send_fn: it keeps what the gateway sends, and the
 * test answers the iqs through the router as the server would.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bridge.h"
#include "bridge_int.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "provision.h"
#include "xmlstream.h"
#include "gwtest.h"
#include "../check.h"

#define GWJID GWT_JID
#define ALICE "alice@example.org"
#define ZOE "zoe@example.org"
#define BOB_JID "bob\\40201\\3a2\\3a\\3a2@" GWJID	/* XEP-0106 */
#define CAROL_JID "carol\\40201\\3a3\\3a\\3a3@" GWJID
#define NUSERS 20		/* u0..u17 besides alice and zoe */
#define GRANT(type) "<message from='example.org' to='" GWJID "'>" \
	"<privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='" \
	type "'/></privilege></message>"

/* what a right roster holds for alice: the gateway, bob ("Bobby"), carol */
#define ITEM(jid, name) "<item jid='" jid "' name='" name "'" \
	" subscription='both'><group>Barev</group></item>"
#define ALICE_RIGHT ITEM(GWJID, "Barev gateway") ITEM(BOB_JID, "Bobby") \
	ITEM(CAROL_JID, "carol")

static struct gw gw;
static char logpath[512];

/* roster iqs of `type` ("get"/"set") sent to `to` (NULL: anyone) */
static int
count_roster(const char *type, const char *to)
{
	int n = 0;

	for (int i = 0; i < gwt_nsent; i++)
		if (gwt_streq(xmpp_stanza_get_name(gwt_sent[i]), "iq") &&
		    gwt_streq(xmpp_stanza_get_type(gwt_sent[i]), type) &&
		    (to == NULL || gwt_streq(xmpp_stanza_get_to(gwt_sent[i]), to)) &&
		    xmpp_stanza_get_child_by_name_and_ns(gwt_sent[i], "query",
		    "jabber:iq:roster") != NULL)
			n++;
	return n;
}

/* the push of `item` to `to`, or NULL */
static xmpp_stanza_t *
find_push(const char *to, const char *item)
{
	for (int i = 0; i < gwt_nsent; i++) {
		xmpp_stanza_t *q = xmpp_stanza_get_child_by_name_and_ns(gwt_sent[i],
		    "query", "jabber:iq:roster");
		xmpp_stanza_t *it = q ? xmpp_stanza_get_child_by_name(q, "item") : NULL;

		if (it && gwt_streq(xmpp_stanza_get_type(gwt_sent[i]), "set") &&
		    gwt_streq(xmpp_stanza_get_to(gwt_sent[i]), to) &&
		    gwt_streq(xmpp_stanza_get_attribute(it, "jid"), item))
			return gwt_sent[i];
	}
	return NULL;
}

static int
sent_probe(const char *from, const char *to)
{
	for (int i = 0; i < gwt_nsent; i++)
		if (gwt_streq(xmpp_stanza_get_name(gwt_sent[i]), "presence") &&
		    gwt_streq(xmpp_stanza_get_type(gwt_sent[i]), "probe") &&
		    gwt_streq(xmpp_stanza_get_from(gwt_sent[i]), from) &&
		    gwt_streq(xmpp_stanza_get_to(gwt_sent[i]), to))
			return 1;
	return 0;
}

static void
deliver(const char *xml)
{
	gwt_deliver(&gw, xml);
}

/* the users whose roster get of this round was answered */
static char answered[NUSERS][64];
static int nanswered;

static int
was_answered(const char *user)
{
	for (int k = 0; k < nanswered; k++)
		if (strcmp(answered[k], user) == 0)
			return 1;
	return 0;
}

/* a new round: what was sent and answered before is forgotten */
static void
grant(const char *xml)
{
	gwt_forget_sent();
	nanswered = 0;
	deliver(xml);
}

/* the id of the (last) roster get sent to `user`, copied to id */
static int
get_id(const char *user, char *id, size_t len)
{
	int found = -1;

	for (int i = 0; i < gwt_nsent; i++)
		if (gwt_streq(xmpp_stanza_get_type(gwt_sent[i]), "get") &&
		    gwt_streq(xmpp_stanza_get_to(gwt_sent[i]), user) &&
		    xmpp_stanza_get_child_by_name_and_ns(gwt_sent[i], "query",
		    "jabber:iq:roster") != NULL) {
			snprintf(id, len, "%s", xmpp_stanza_get_id(gwt_sent[i]));
			found = 0;
		}
	return found;
}

/* a user whose roster get is out and not answered yet, other than `not1`
 * and `not2`; NULL if none */
static const char *
next_unanswered(const char *not1, const char *not2)
{
	for (int i = 0; i < gwt_nsent; i++) {
		const char *to = xmpp_stanza_get_to(gwt_sent[i]);

		if (gwt_streq(xmpp_stanza_get_type(gwt_sent[i]), "get") && to &&
		    xmpp_stanza_get_child_by_name_and_ns(gwt_sent[i], "query",
		    "jabber:iq:roster") != NULL && !was_answered(to) &&
		    !gwt_streq(to, not1) && !gwt_streq(to, not2))
			return to;
	}
	return NULL;
}

/* the server answers the roster get to `user` with `items` */
static int
answer_get(const char *user, const char *items)
{
	char id[128], xml[8192];

	if (get_id(user, id, sizeof(id)) == -1)
		return -1;
	if (nanswered < NUSERS)
		snprintf(answered[nanswered++], sizeof(answered[0]), "%s", user);
	snprintf(xml, sizeof(xml), "<iq type='result' id='%s' from='%s' to='%s'>"
	    "<query xmlns='jabber:iq:roster'>%s</query></iq>", id, user, GWJID,
	    items);
	deliver(xml);
	return 0;
}

static int
answer_get_error(const char *user, const char *cond)
{
	char id[128], xml[1024];

	if (get_id(user, id, sizeof(id)) == -1)
		return -1;
	if (nanswered < NUSERS)
		snprintf(answered[nanswered++], sizeof(answered[0]), "%s", user);
	snprintf(xml, sizeof(xml), "<iq type='error' id='%s' from='%s' to='%s'>"
	    "<error type='auth'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "</error></iq>", id, user, GWJID, cond);
	deliver(xml);
	return 0;
}

/* how many log lines so far contain every one of the words */
static int
log_lines(const char *w1, const char *w2)
{
	FILE *f = fopen(logpath, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, w1) && (!w2 || strstr(line, w2)))
			n++;
	fclose(f);
	return n;
}

/* ---- scenarios ---- */

static void
setup_users(void)
{
	struct prov_result r;
	char port[16], jid[64], nick[16];

	for (int i = 0; i < NUSERS - 2; i++) {
		snprintf(jid, sizeof(jid), "u%d@example.org", i);
		snprintf(nick, sizeof(nick), "u%d", i);
		snprintf(port, sizeof(port), "%d", gwt_free_port());
		CHECK(prov_identity_create(&gw, jid, nick, "::1", port, &r) == 0);
	}
	snprintf(port, sizeof(port), "%d", gwt_free_port());
	CHECK(prov_identity_create(&gw, ZOE, "zoe", "::1", port, &r) == 0);
	snprintf(port, sizeof(port), "%d", gwt_free_port());
	CHECK(prov_identity_create(&gw, ALICE, "alice", "::1", port, &r) == 0);
	CHECK(prov_contact_add(&gw, ALICE, "bob@201:2::2", "Bobby", &r) == 0);
	CHECK(prov_contact_add(&gw, ALICE, "carol@201:3::3", NULL, &r) == 0);
}

/* the other users (no contacts) answer with the gateway item, right:
 * until `user`'s roster get is out (NULL: until all are answered) */
#define GW_RIGHT ITEM(GWJID, "Barev gateway")
static int
read_others_until(const char *user)
{
	const char *to;
	char who[64];
	int n = 0;

	while ((user == NULL || count_roster("get", user) == 0) &&
	    (to = next_unanswered(ALICE, ZOE)) != NULL) {
		snprintf(who, sizeof(who), "%s", to);
		CHECK(answer_get(who, GW_RIGHT) == 0);
		n++;
	}
	return n;
}

/* A grant that reads: each roster is read, no push before an answer, and
 * no more than a small window of reads in flight. */
static void
test_grant_reads_rosters_a_window_at_a_time(void)
{
	int first, more;

	grant(GRANT("both"));
	first = count_roster("get", NULL);
	CHECK(first > 0 && first < NUSERS);
	CHECK(count_roster("set", NULL) == 0);
	/* each answer lets one more read go */
	more = read_others_until(ALICE);
	CHECK(count_roster("get", NULL) == first + more);
	CHECK(count_roster("get", ALICE) == 1);
	/* right rosters: not one push, and each user's presence asked for, as
	 * the gateway item's push would have */
	CHECK(count_roster("set", NULL) == 0);
	CHECK(answer_get(ALICE, ALICE_RIGHT) == 0);
	CHECK(count_roster("set", ALICE) == 0);
	CHECK(sent_probe(GWJID, ALICE));
}

/* Items missing or different are pushed, the rest are not; items on the
 * component that are not her contacts are left alone. */
static void
test_only_differences_are_pushed(void)
{
	grant(GRANT("both"));
	read_others_until(ALICE);
	/* alice: carol renamed by hand, bob missing, a stray item on the
	 * component and one elsewhere */
	CHECK(answer_get(ALICE, GW_RIGHT
	    "<item jid='" CAROL_JID "' name='Caz' subscription='both'>"
	    "<group>Barev</group></item>"
	    "<item jid='gone\\40201\\3a9\\3a\\3a9@" GWJID "' subscription='both'/>"
	    "<item jid='friend@example.net' subscription='both'/>") == 0);
	CHECK(find_push(ALICE, BOB_JID) != NULL);
	CHECK(find_push(ALICE, CAROL_JID) != NULL);
	CHECK(find_push(ALICE, GWJID) == NULL);
	CHECK(count_roster("set", ALICE) == 2);
	CHECK(log_lines("alice@example.org's roster holds 1 item(s) on " GWJID,
	    "left as they are") == 1);
	/* zoe: the gateway in a second group too */
	read_others_until(ZOE);
	CHECK(answer_get(ZOE, "<item jid='" GWJID "' name='Barev gateway'"
	    " subscription='both'><group>Barev</group><group>Work</group></item>") == 0);
	CHECK(find_push(ZOE, GWJID) != NULL);
	CHECK(count_roster("set", ZOE) == 1);
	/* everybody else is right */
	read_others_until(NULL);
	CHECK(nanswered == NUSERS);
	CHECK(count_roster("set", NULL) == 3);
	CHECK(log_lines("roster sync: 20 roster(s) read, 3 item(s) pushed,"
	    " 0 user(s) pushed in full", "1 stray") == 1);
}

/* A refused read: that user and every one not read yet get everything
 * pushed, without a read. */
static void
test_refused_read_pushes_everything(void)
{
	char who[64], jid[64];
	const char *to;
	int gets, unread = 0;

	grant(GRANT("both"));
	to = next_unanswered(NULL, NULL);
	CHECK(to != NULL);
	if (to == NULL)
		return;
	snprintf(who, sizeof(who), "%s", to);
	CHECK(answer_get_error(who, "forbidden") == 0);
	CHECK(find_push(who, GWJID) != NULL);
	CHECK(log_lines(" WARN bridge:", "refused to read") == 1);
	gets = count_roster("get", NULL);
	for (int i = 0; i < NUSERS - 2; i++) {
		snprintf(jid, sizeof(jid), "u%d@example.org", i);
		if (count_roster("get", jid) == 0) {
			unread++;
			CHECK(find_push(jid, GWJID) != NULL);
		}
	}
	CHECK(unread > 0);
	if (count_roster("get", ALICE) == 0) {
		CHECK(find_push(ALICE, BOB_JID) != NULL);
		CHECK(find_push(ALICE, CAROL_JID) != NULL);
	}
	/* the reads still out are answered: no new read follows */
	read_others_until(NULL);
	CHECK(count_roster("get", NULL) == gets);
}

/* A read nobody answers: that user's items are all pushed. */
static void
test_unanswered_read_pushes_everything(void)
{
	struct timeval tv = { 0, 400 * 1000 };

	roster_test_push_ms(&gw, 100);
	grant(GRANT("both"));
	event_base_loopexit(gw.base, &tv);
	event_base_dispatch(gw.base);
	CHECK(find_push(ALICE, GWJID) != NULL);
	CHECK(find_push(ALICE, BOB_JID) != NULL);
	CHECK(find_push(ALICE, CAROL_JID) != NULL);
	roster_test_push_ms(&gw, 0);
}

/* A second grant (the link came back) while reads of the first are out:
 * answers to the old reads push nothing. */
static void
test_a_new_grant_ends_the_old_round(void)
{
	char old[128], xml[1024];

	grant(GRANT("both"));
	CHECK(get_id(ALICE, old, sizeof(old)) == 0);
	deliver(GRANT("both"));
	gwt_forget_sent();
	snprintf(xml, sizeof(xml), "<iq type='result' id='%s' from='" ALICE "'"
	    " to='" GWJID "'><query xmlns='jabber:iq:roster'/></iq>", old);
	deliver(xml);
	CHECK(count_roster("set", NULL) == 0);
	CHECK(count_roster("get", NULL) == 0);
}

/* A grant that only writes: every item pushed, nothing read (as before). */
static void
test_set_only_grant_pushes_without_reading(void)
{
	grant(GRANT("set"));
	CHECK(count_roster("get", NULL) == 0);
	CHECK(find_push(ALICE, GWJID) != NULL);
	CHECK(find_push(ALICE, BOB_JID) != NULL);
	CHECK(find_push(ALICE, CAROL_JID) != NULL);
	CHECK(find_push(ZOE, GWJID) != NULL);
	CHECK(count_roster("set", NULL) == NUSERS + 2);
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
	snprintf(path, sizeof(path), "%s/rostersync.sqlite", dir);
	unlink(path);
	snprintf(logpath, sizeof(logpath), "%s/rostersync.log", dir);
	snprintf(spool, sizeof(spool), "spool_dir = %s/spool\n", dir);
	if (gwt_world_start(&gw, dir, path, spool, gwt_capture) == -1)
		return 2;
	fflush(stderr);
	saved = dup(2);
	if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    dup2(fd, 2) == -1) {
		perror(logpath);
		return 2;
	}
	close(fd);
	log_set_level(LOG_LVL_INFO);

	setup_users();
	RUN(test_grant_reads_rosters_a_window_at_a_time);
	RUN(test_only_differences_are_pushed);
	RUN(test_refused_read_pushes_everything);
	RUN(test_unanswered_read_pushes_everything);
	RUN(test_a_new_grant_ends_the_old_round);
	RUN(test_set_only_grant_pushes_without_reading);

	gwt_forget_sent();
	gwt_world_stop(&gw);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if ((f = fopen(logpath, "r")) != NULL) {
		char line[4096];

		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
		fclose(f);
	}
	return CHECK_EXIT();
}
