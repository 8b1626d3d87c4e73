/*
 * peercaps — is the peer at the other end of a pipe another barev-gateway?
 *
 * Learnt only from what the peer says: once a pipe is up we send one
 * XEP-0030 disco#info get over it (single-quoted, id first: the shape of
 * our ping, which purple and pascal read fine, BAREV.md §5).  A gateway
 * answers with PEERCAPS_FEATURE among its features; purple and pascal
 * leave unknown iqs unanswered, so for them the question costs one stanza
 * and nothing else: no timer, no retry, no log line above debug.  Until a
 * yes comes the peer is a Barev peer and gets exactly today's bytes.
 *
 * The answer lives with the pipe (br_contact.peer_gateway, cleared when it
 * goes down): the same address may be a gateway today and purple tomorrow.
 * What was a gateway on the last pipe (was_gateway, kept in the store so a
 * restart does not forget it) keeps the extras of messages queued
 * meanwhile, and on the next pipe its queue waits for the answer, at most
 * HOLD_MS: then it goes in the form the answer asks for.  A peer that never
 * was a gateway is never waited for.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "barevlink.h"
#include "bridge_int.h"
#include "gw.h"
#include "log.h"
#include "store.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define PROBE_PREFIX "gwcaps-"
#define HOLD_MS 5000		/* a gateway answers in one round trip */

/* what a gateway tells another one it passes (passthru.c's allowlist) */
static const char *const gw_features[] = {
	PEERCAPS_FEATURE,
	"urn:xmpp:receipts",
	"http://jabber.org/protocol/chatstates",
	"urn:xmpp:message-correct:0",
	"urn:xmpp:reactions:0",
	"urn:xmpp:reply:0",
	"urn:xmpp:message-retract:1",
	"urn:xmpp:message-retract:0",
	"urn:xmpp:chat-markers:0",
};

static void
release(struct br_contact *c)
{
	if (c->caps_ev == NULL || !evtimer_pending(c->caps_ev, NULL))
		return;
	evtimer_del(c->caps_ev);
	br_pipe_ready(c->br, c);
}

/* was_gateway, in memory and in the store (a failed write is logged by
 * the store; memory still holds it until the next restart) */
static void
remember(struct br_contact *c, int yes)
{
	if (c->was_gateway == yes)
		return;
	c->was_gateway = yes;
	if (c->br->gw->store != NULL)
		(void)store_contact_set_gateway(c->br->gw->store, c->id, yes);
}

static void
hold_expired(evutil_socket_t fd, short what, void *arg)
{
	struct br_contact *c = arg;

	(void)fd;
	(void)what;
	log_info("peercaps", "%s@%s was a barev-gateway but did not say so again"
	    " in time; what waited for it goes in the Barev form", c->nick,
	    c->address);
	remember(c, 0);
	br_pipe_ready(c->br, c);
}

static int
hold(struct bridge *br, struct br_contact *c)
{
	struct timeval tv = { HOLD_MS / 1000, (HOLD_MS % 1000) * 1000 };

	if (c->caps_ev == NULL &&
	    (c->caps_ev = evtimer_new(br->gw->base, hold_expired, c)) == NULL)
		return 0;
	return evtimer_add(c->caps_ev, &tv) == 0;
}

int
peercaps_pipe_up(struct bridge *br, struct br_contact *c)
{
	xmpp_stanza_t *iq, *q;
	char id[40];
	int rv;

	c->peer_gateway = 0;
	c->caps_probe = ++br->next_cookie;
	snprintf(id, sizeof(id), PROBE_PREFIX "%llu",
	    (unsigned long long)c->caps_probe);
	iq = br_stanza("iq", "get", NULL, NULL);
	q = br_stanza("query", NULL, NULL, NULL);
	if (iq == NULL || q == NULL) {
		if (iq)
			xmpp_stanza_release(iq);
		if (q)
			xmpp_stanza_release(q);
		return 0;
	}
	xmpp_stanza_set_id(iq, id);
	xmpp_stanza_set_ns(q, NS_DISCO_INFO);
	xmpp_stanza_add_child_ex(iq, q, 0);
	if ((rv = bl_send_stanza(br->gw->bl, c->id, iq, 0)) == -1)
		log_debug("peercaps", "could not ask %s@%s what it is", c->nick,
		    c->address);
	xmpp_stanza_release(iq);
	return rv == 0 && c->was_gateway && hold(br, c);
}

void
peercaps_pipe_down(struct br_contact *c)
{
	if (c->caps_ev)
		evtimer_del(c->caps_ev);
	c->peer_gateway = 0;
	c->caps_probe = 0;
}

void
peercaps_forget(struct br_contact *c)
{
	if (c->caps_ev) {
		event_free(c->caps_ev);
		c->caps_ev = NULL;
	}
}

static xmpp_stanza_t *
disco_query(xmpp_stanza_t *iq)
{
	return xmpp_stanza_get_child_by_name_and_ns(iq, "query", NS_DISCO_INFO);
}

static void
answer(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	xmpp_stanza_t *reply, *q, *el;

	if ((reply = gw_iq_result(st)) == NULL)
		return;
	q = br_stanza("query", NULL, NULL, NULL);
	xmpp_stanza_set_ns(q, NS_DISCO_INFO);
	el = br_stanza("identity", NULL, NULL, NULL);
	xmpp_stanza_set_attribute(el, "category", "gateway");
	xmpp_stanza_set_attribute(el, "type", "barev");
	xmpp_stanza_add_child_ex(q, el, 0);
	for (size_t i = 0; i < sizeof(gw_features) / sizeof(gw_features[0]); i++) {
		el = br_stanza("feature", NULL, NULL, NULL);
		xmpp_stanza_set_attribute(el, "var", gw_features[i]);
		xmpp_stanza_add_child_ex(q, el, 0);
	}
	xmpp_stanza_add_child_ex(reply, q, 0);
	bl_send_stanza(br->gw->bl, c->id, reply, 0);
	xmpp_stanza_release(reply);
}

static int
has_feature(xmpp_stanza_t *q, const char *var)
{
	xmpp_stanza_t *el;
	const char *v;

	for (el = xmpp_stanza_get_children(q); el; el = xmpp_stanza_get_next(el)) {
		const char *name = xmpp_stanza_get_name(el);

		if (name && strcmp(name, "feature") == 0 &&
		    (v = xmpp_stanza_get_attribute(el, "var")) && strcmp(v, var) == 0)
			return 1;
	}
	return 0;
}

/* A disco#info iq from the peer: 1 when it was ours to handle. */
int
peercaps_peer_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	const char *type = xmpp_stanza_get_type(st), *id = xmpp_stanza_get_id(st);
	xmpp_stanza_t *q = disco_query(st);
	char want[40];

	if (type == NULL)
		return 0;
	if (strcmp(type, "get") == 0) {
		if (q == NULL)
			return 0;
		answer(br, c, st);
		return 1;
	}
	if (c->caps_probe == 0 || id == NULL)
		return 0;
	snprintf(want, sizeof(want), PROBE_PREFIX "%llu",
	    (unsigned long long)c->caps_probe);
	if (strcmp(id, want) != 0)
		return 0;
	c->caps_probe = 0;	/* one answer per question */
	if (strcmp(type, "result") == 0 && q && has_feature(q, PEERCAPS_FEATURE)) {
		c->peer_gateway = 1;
		remember(c, 1);
		log_info("peercaps", "%s@%s is a barev-gateway: receipts, corrections,"
		    " reactions, replies, retractions, markers and OMEMO pass through",
		    c->nick, c->address);
	} else {
		log_debug("peercaps", "%s@%s answered the disco#info without %s",
		    c->nick, c->address, PEERCAPS_FEATURE);
		remember(c, 0);
	}
	release(c);	/* what waited for the answer goes now */
	return 1;
}

/* The XMPP side's disco#info of a contact JID: what passes to this one
 * beyond what every contact lists (n of them; none for a Barev peer). */
const char *const *
peercaps_passed(const struct br_contact *c, size_t *n)
{
	/* [0] is ours and [1..2] every contact lists */
	*n = c->peer_gateway ? sizeof(gw_features) / sizeof(gw_features[0]) - 3 : 0;
	return gw_features + 3;
}
