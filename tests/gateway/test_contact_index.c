/*
 * test_contact_index — the bridge's contact index (issue 13): a JID on the
 * component names a contact by (identity, nick without case, address), so
 * the same Barev peer in two users' rosters is two contacts, each found
 * only for its own user; a contact removed is found no more; with many
 * contacts each JID still finds its own.  Checked through what a user
 * sees (a probe answered from the contact's JID, a message to a JID she
 * does not have refused, the contact's vCard), and through
 * br_contact_for()/br_contact_by_addr() directly.
 *
 * The fake server is gw->send_fn: it keeps what the gateway sends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "bridge_int.h"
#include "gw.h"
#include "provision.h"
#include "store.h"
#include "xmlstream.h"
#include "gwtest.h"
#include "../check.h"

#define GWJID GWT_JID
#define ALICE "alice@example.org"
#define DAVE "dave@example.org"
/* bob@201:2::2 as a JID on the component (XEP-0106) */
#define BOB_JID "bob\\40201\\3a2\\3a\\3a2@" GWJID
#define BOB_JID_UPPER "BoB\\40201\\3a2\\3a\\3a2@" GWJID
#define BOB_OTHER_ADDR "bob\\40201\\3a2\\3a\\3a3@" GWJID
#define CAROL_JID "carol\\40201\\3a2\\3a\\3a2@" GWJID
#define ERIN_JID "erin\\40201\\3a2\\3a\\3a5@" GWJID
#define MANY 300

static struct gw gw;

static void
deliver(const char *xml)
{
	gwt_deliver(&gw, xml);
}

/* the user probes `contact_jid`: 1 if the gateway answered for it */
static int
probe_answered(const char *user, const char *contact_jid)
{
	char xml[1024], from[600];

	gwt_forget_sent();
	snprintf(xml, sizeof(xml), "<presence type='probe' from='%s/res' to='%s'/>",
	    user, contact_jid);
	deliver(xml);
	snprintf(from, sizeof(from), "%s/barev", contact_jid);
	return gwt_find_sent("presence", "unavailable", from, NULL) != NULL;
}

/* the user sends a chat message to `contact_jid`: 1 if it was refused as
 * "not among your contacts" */
static int
message_refused(const char *user, const char *contact_jid)
{
	char xml[1024];

	gwt_forget_sent();
	snprintf(xml, sizeof(xml), "<message type='chat' id='m1' from='%s/res'"
	    " to='%s'><body>hi</body></message>", user, contact_jid);
	deliver(xml);
	return gwt_find_sent("message", "error", contact_jid, NULL) != NULL;
}

static struct br_contact *
lookup(const char *user, const char *contact_jid)
{
	struct br_user *u = br_user_by_jid(gw.bridge, user);

	return u != NULL ? br_contact_for(u, contact_jid) : NULL;
}

static void
add_identity(const char *jid, const char *nick)
{
	struct prov_result r;
	char port[16];

	snprintf(port, sizeof(port), "%d", gwt_free_port());
	CHECK(prov_identity_create(&gw, jid, nick, "::1", port, &r) == 0);
}

/* ---- scenarios ---- */

/* the same peer in two rosters: two contacts, each its user's own */
static void
test_contact_is_per_user(void)
{
	struct prov_result r;
	struct br_contact *a, *d;

	add_identity(ALICE, "alice");
	add_identity(DAVE, "dave");
	CHECK(prov_contact_add(&gw, ALICE, "bob@201:2::2", "Bob Builder", &r) == 0);
	CHECK(prov_contact_add(&gw, ALICE, "carol@201:2::2", NULL, &r) == 0);
	CHECK(prov_contact_add(&gw, DAVE, "bob@201:2::2", NULL, &r) == 0);
	CHECK(prov_contact_add(&gw, DAVE, "Erin@201:2::5", NULL, &r) == 0);

	a = lookup(ALICE, BOB_JID);
	d = lookup(DAVE, BOB_JID);
	CHECK(a != NULL && d != NULL && a != d);
	CHECK(a != NULL && gwt_streq(a->user->jid, ALICE));
	CHECK(d != NULL && gwt_streq(d->user->jid, DAVE));
	CHECK(a != NULL && gwt_streq(a->nick, "bob") &&
	    gwt_streq(a->address, "201:2::2") && gwt_streq(a->jid, BOB_JID) &&
	    gwt_streq(a->name, "Bob Builder"));
	CHECK(d != NULL && gwt_streq(d->name, ""));
	/* same address, other nick; same nick, other address */
	CHECK(lookup(ALICE, CAROL_JID) != NULL && lookup(ALICE, CAROL_JID) != a);
	CHECK(lookup(DAVE, CAROL_JID) == NULL);
	CHECK(lookup(ALICE, BOB_OTHER_ADDR) == NULL);
	CHECK(lookup(ALICE, ERIN_JID) == NULL);
	/* the nick without case, as the store's UNIQUE key has it */
	CHECK(lookup(ALICE, BOB_JID_UPPER) == a);
	CHECK(lookup(DAVE, ERIN_JID) != NULL &&
	    gwt_streq(lookup(DAVE, ERIN_JID)->nick, "Erin"));
	CHECK(a != NULL && br_contact_by_addr(gw.bridge, a->ident, "BOB",
	    "201:2::2") == a);
	CHECK(a != NULL && br_contact_by_addr(gw.bridge, a->ident, "bob",
	    "201:2::3") == NULL);

	/* what she sees */
	CHECK(probe_answered(ALICE, BOB_JID));
	CHECK(probe_answered(ALICE, CAROL_JID));
	CHECK(!probe_answered(ALICE, ERIN_JID));
	CHECK(probe_answered(DAVE, ERIN_JID));
	CHECK(message_refused(ALICE, ERIN_JID));
	CHECK(message_refused(DAVE, CAROL_JID));
	CHECK(message_refused(ALICE, BOB_OTHER_ADDR));
	gwt_forget_sent();
}

/* the contact's vCard from its strings: a 256-byte name kept whole */
static void
test_vcard_names(void)
{
	struct prov_result r;
	char name[STORE_NAME_MAX + 1], xml[1024];
	xmpp_stanza_t *res, *vc, *fn;
	char *text;

	memset(name, 'n', STORE_NAME_MAX);
	name[STORE_NAME_MAX] = '\0';
	CHECK(prov_contact_add(&gw, ALICE, "frank@201:2::6", name, &r) == 0);
	gwt_forget_sent();
	snprintf(xml, sizeof(xml), "<iq type='get' id='v1' from='" ALICE "/res'"
	    " to='frank\\40201\\3a2\\3a\\3a6@" GWJID "'>"
	    "<vCard xmlns='vcard-temp'/></iq>");
	deliver(xml);
	res = gwt_find_sent("iq", "result", NULL, ALICE "/res");
	vc = res ? xmpp_stanza_get_child_by_name(res, "vCard") : NULL;
	fn = vc ? xmpp_stanza_get_child_by_name(vc, "FN") : NULL;
	text = fn ? xmpp_stanza_get_text(fn) : NULL;
	CHECK(text != NULL && gwt_streq(text, name));
	free(text);
	gwt_forget_sent();
}

/* removed: found no more, for its user only */
static void
test_removed_contact_is_gone(void)
{
	struct prov_result r;

	CHECK(prov_contact_remove(&gw, ALICE, "bob@201:2::2", &r) == 0);
	CHECK(lookup(ALICE, BOB_JID) == NULL);
	CHECK(lookup(DAVE, BOB_JID) != NULL);
	CHECK(!probe_answered(ALICE, BOB_JID));
	CHECK(message_refused(ALICE, BOB_JID));
	CHECK(probe_answered(DAVE, BOB_JID));
	/* and back again */
	CHECK(prov_contact_add(&gw, ALICE, "bob@201:2::2", NULL, &r) == 0);
	CHECK(lookup(ALICE, BOB_JID) != NULL && lookup(ALICE, BOB_JID) !=
	    lookup(DAVE, BOB_JID));
	CHECK(probe_answered(ALICE, BOB_JID));
	gwt_forget_sent();
}

/*
 * The JID as the gateway wrote it is found without parsing it; every other
 * spelling of the same contact (a resource, the domain's case, the
 * address written out, the nick's case) still finds it, and only it.
 */
static void
test_jid_spellings(void)
{
	struct br_contact *c = lookup(ALICE, BOB_JID);
	struct br_contact *d = lookup(DAVE, BOB_JID);

	CHECK(c != NULL && d != NULL && c != d);
	CHECK(c != NULL && gwt_streq(c->jid, BOB_JID));
	CHECK(lookup(ALICE, BOB_JID "/Gajim.x1") == c);
	CHECK(lookup(ALICE, "bob\\40201\\3a2\\3a\\3a2@BAREV.example.ORG") == c);
	CHECK(lookup(ALICE, "bob\\40201\\3a2\\3a0\\3a0\\3a0\\3a0\\3a0\\3a2@" GWJID) == c);
	CHECK(lookup(ALICE, BOB_JID_UPPER "/r") == c);
	CHECK(lookup(DAVE, BOB_JID "/r") == d);
	/* a prefix of a contact's JID is no contact */
	CHECK(lookup(ALICE, "bob\\40201\\3a2\\3a\\3a@" GWJID) == NULL);
}

/* many contacts: each JID finds its own, every time */
static void
test_many_contacts(void)
{
	struct prov_result r;
	char contact[64], jid[256];
	int64_t ids[MANY];
	int ok = 1;

	for (int i = 0; i < MANY; i++) {
		snprintf(contact, sizeof(contact), "p%d@201:3::%x", i, i + 1);
		if (prov_contact_add(&gw, DAVE, contact, NULL, &r) != 0) {
			fprintf(stderr, "%s: %s\n", contact, r.msg);
			ok = 0;
		}
		gwt_forget_sent();
	}
	CHECK(ok);
	for (int i = 0; i < MANY; i++) {
		struct br_contact *c;

		snprintf(jid, sizeof(jid), "p%d\\40201\\3a3\\3a\\3a%x@" GWJID, i, i + 1);
		c = lookup(DAVE, jid);
		ids[i] = c ? c->id : -1;
		if (c == NULL || !gwt_streq(c->jid, jid) || lookup(ALICE, jid) != NULL) {
			fprintf(stderr, "%s: not found as dave's own\n", jid);
			ok = 0;
		}
		/* the next address holds no p<i> */
		snprintf(jid, sizeof(jid), "p%d\\40201\\3a3\\3a\\3a%x@" GWJID, i, i + 2);
		if (lookup(DAVE, jid) != NULL)
			ok = 0;
	}
	CHECK(ok);
	for (int i = 1; i < MANY; i++)
		CHECK(ids[i] != ids[i - 1]);
	/* half of them removed: the others stay found */
	for (int i = 0; i < MANY; i += 2) {
		snprintf(contact, sizeof(contact), "p%d@201:3::%x", i, i + 1);
		CHECK(prov_contact_remove(&gw, DAVE, contact, &r) == 0);
		gwt_forget_sent();
	}
	for (int i = 0; i < MANY; i++) {
		struct br_contact *c;

		snprintf(jid, sizeof(jid), "p%d\\40201\\3a3\\3a\\3a%x@" GWJID, i, i + 1);
		c = lookup(DAVE, jid);
		if (i % 2 == 0 ? c != NULL : c == NULL || c->id != ids[i])
			ok = 0;
	}
	CHECK(ok);
	CHECK(probe_answered(DAVE, "p1\\40201\\3a3\\3a\\3a2@" GWJID));
	CHECK(!probe_answered(DAVE, "p0\\40201\\3a3\\3a\\3a1@" GWJID));
	gwt_forget_sent();
}

int
main(void)
{
	const char *dir = getenv("TEST_TMPDIR");
	char path[512], spool[600];

	if (dir == NULL)
		dir = ".";
	snprintf(path, sizeof(path), "%s/contact_index.sqlite", dir);
	unlink(path);
	snprintf(spool, sizeof(spool), "spool_dir = %s/spool\n", dir);
	if (gwt_world_start(&gw, dir, path, spool, gwt_capture) == -1)
		return 2;

	RUN(test_contact_is_per_user);
	RUN(test_vcard_names);
	RUN(test_removed_contact_is_gone);
	RUN(test_jid_spellings);
	RUN(test_many_contacts);

	gwt_forget_sent();
	gwt_world_stop(&gw);
	return CHECK_EXIT();
}
