/*
 * roster — what the gateway writes into its users' rosters: their Barev
 * contacts and the gateway itself (name "Barev gateway", group "Barev"),
 * and the gateway JID's own presence (DESIGN.md "Flows").
 *
 * The one idea: a roster item is pushed (XEP-0356) where the user's server
 * granted the roster, and asked for with a subscription request (RFC 6121
 * §3.1) everywhere else.  A push the server refuses, or leaves unanswered,
 * makes the privilege unusable until a push works again; that item, and
 * every one after it, is asked for instead (a new item still tries a push
 * too, so recovery is noticed).  The gateway JID is always available while
 * the daemon runs: GUI clients cannot open a chat with a JID without '@',
 * so it has to be in the roster, online, to be one click away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge.h"
#include "bridge_int.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "translate.h"

#define ROSTER_PUSH_MS 30000	/* a roster push unanswered: given up */

/* a roster push in flight: what to do instead if the server refuses it */
struct roster_op {
	char user[STORE_JID_MAX];
	char item[STORE_JID_MAX];
	char name[STORE_NAME_MAX + 1];
	int remove;
	int probe;		/* ask for her presence once the item is in */
	int fell_back;		/* the subscription presences went already */
};

/* the user's server granted us her roster (whether it works or not) */
int
roster_granted_for(struct bridge *br, const char *user_jid)
{
	const char *at = strrchr(user_jid, '@');

	return br->privileged_host && at && strcasecmp(at + 1, br->privileged_host) == 0;
}

/* ... and its pushes are not being refused */
int
roster_privileged_for(struct bridge *br, const char *user_jid)
{
	return !br->roster_refused && roster_granted_for(br, user_jid);
}

/* Without the privilege: the item asks the user itself (RFC 6121 §3.1).
 * Harmless when she is subscribed already: her server answers for her.
 * No probe from the item until she approves (bridge.c probes then): a
 * server answers a probe from a JID she has not approved with
 * "unsubscribed" (Prosody does), which reads as her removing it. */
static void
roster_by_presence(struct gw *gw, const struct roster_op *op)
{
	xmpp_stanza_t *st;

	if (op->remove) {
		gw_send_release(gw, br_stanza("presence", "unsubscribe", op->item, op->user));
		gw_send_release(gw, br_stanza("presence", "unsubscribed", op->item, op->user));
		return;
	}
	/* XEP-0172: the nick rides on the request, so the client can name it */
	if ((st = tr_roster_request(op->item, op->user, op->name)) == NULL) {
		log_error("bridge", "out of memory: %s is not in %s's roster",
		    op->item, op->user);
		return;
	}
	gw_send_release(gw, st);
}

/* The answer to a push: a refusal (ejabberd 23.01 answers internal-server-
 * error, module_not_loaded) makes the privilege unusable until a push works
 * again; this item falls back to a subscription request.  Silence is not a
 * refusal: a server busy with many pushes (every start pushes every item)
 * answers late, and a subscription request per late answer only adds to its
 * load.  iqtrack logs the timeout and shows it in status. */
static void
roster_pushed(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	struct roster_op *op = arg;
	struct bridge *br = gw->bridge;
	const char *type = reply ? xmpp_stanza_get_type(reply) : NULL;
	char cause[256];

	if (br == NULL || br->stopping)
		goto out;
	if (type && strcmp(type, "result") == 0) {
		if (br->roster_refused) {
			br->roster_refused = 0;
			log_info("bridge", "roster pushes work again: contacts go"
			    " straight into users' rosters");
		}
		/* the item shares her presence now: whether she is online
		 * tells whether to dial a new contact at once */
		if (op->probe)
			gw_send_release(gw, br_stanza("presence", "probe", op->item, op->user));
		goto out;
	}
	if (reply == NULL)
		goto out;
	if (!br->roster_refused) {
		br->roster_refused = 1;
		log_warn("bridge", "the server refused a roster push to %s (%s):"
		    " users get subscription requests instead until a push"
		    " works again", op->user, gw_iq_error_text(reply, cause,
		    sizeof(cause)));
	}
	if (!op->fell_back)
		roster_by_presence(gw, op);
out:
	free(op);
}

/* Put `item` into (or take it out of) the user's roster. */
void
roster_item(struct bridge *br, const char *user, const char *item,
    const char *name, int remove, int probe)
{
	struct gw *gw = br->gw;
	struct roster_op *op;
	xmpp_stanza_t *st;

	if ((op = calloc(1, sizeof(*op))) == NULL) {
		log_error("bridge", "out of memory: %s is not in %s's roster", item, user);
		return;
	}
	snprintf(op->user, sizeof(op->user), "%s", user);
	snprintf(op->item, sizeof(op->item), "%s", item);
	snprintf(op->name, sizeof(op->name), "%s", name);
	op->remove = remove;
	op->probe = probe && !remove;
	if (!roster_granted_for(br, user)) {
		roster_by_presence(gw, op);
		free(op);
		return;
	}
	if (br->roster_refused) {
		/* the request now; the push only finds out whether the
		 * privilege works again */
		roster_by_presence(gw, op);
		op->fell_back = 1;
	}
	st = tr_roster_push(gw->cfg.component_jid, user, item, name, remove);
	if (st == NULL || gw_iq_request(gw, st, GW_IQ_ROSTER,
	    roster_request_ms(gw), roster_pushed, op) == -1) {
		if (!op->fell_back)
			roster_by_presence(gw, op);
		free(op);
	}
	if (st)
		xmpp_stanza_release(st);
}

void
roster_contact(struct bridge *br, struct br_contact *c, int remove, int probe)
{
	roster_item(br, c->user->jid, c->jid, tr_contact_name(c->name, c->nick),
	    remove, probe);
}

/* ---- the gateway itself in every user's roster ---- */

/* its presence: always available while it runs (`type` NULL) */
void
roster_gateway_presence(struct bridge *br, const char *to, const char *type)
{
	xmpp_stanza_t *st = br_stanza("presence", type, br->gw->cfg.component_jid, to);

	if (st && type == NULL)
		br_add_text_child(st, "status", NULL, "Barev gateway: send 'help'");
	gw_send_release(br->gw, st);
}

/* in her roster (name "Barev gateway", group "Barev"), and online */
void
roster_gateway_join(struct bridge *br, struct br_user *u)
{
	roster_gateway_add(br, u);
	roster_gateway_presence(br, u->jid, NULL);
}

void
roster_gateway_add(struct bridge *br, struct br_user *u)
{
	roster_item(br, u->jid, br->gw->cfg.component_jid,
	    TR_ROSTER_GATEWAY_NAME, 0, 1);
}

/*
 * Subscription matters and probes addressed to the gateway JID itself:
 * anyone may have it in her roster (it is where `register` and `help` are
 * sent), so it approves every request and answers every probe with its
 * available presence.  1 = handled; the user's own available/unavailable
 * presence goes on to the aggregation (0).
 */
int
roster_gateway_stanza(struct bridge *br, xmpp_stanza_t *st, const char *type,
    const char *from_bare)
{
	const char *me = br->gw->cfg.component_jid;

	if (type == NULL || strcmp(type, "unavailable") == 0)
		return 0;
	if (strcmp(type, "probe") == 0) {
		roster_gateway_presence(br, xmpp_stanza_get_from(st), NULL);
	} else if (strcmp(type, "subscribe") == 0) {
		gw_send_release(br->gw, br_stanza("presence", "subscribed", me, from_bare));
		roster_gateway_presence(br, from_bare, NULL);
	} else if (strcmp(type, "subscribed") == 0) {
		/* she approved our request: show her we are here */
		roster_gateway_presence(br, from_bare, NULL);
	}
	/* unsubscribe/unsubscribed: her server has updated her roster */
	return 1;
}

/* tests: how long a push may go unanswered (0: the default) */
void
roster_test_push_ms(struct gw *gw, unsigned ms)
{
	gw->roster_push_ms = ms;
}

/* how long a roster request (push or get) may go unanswered */
unsigned
roster_request_ms(struct gw *gw)
{
	return gw->roster_push_ms ? gw->roster_push_ms : ROSTER_PUSH_MS;
}

/* every item the gateway wants in her roster, pushed (today's start-up
 * without a roster read: idempotent, but one push per item) */
void
roster_push_all(struct bridge *br, struct br_user *u)
{
	struct br_contact *c;

	roster_gateway_add(br, u);
	LIST_FOREACH(c, &u->contacts, user_entry)
		roster_contact(br, c, 0, 0);
}
