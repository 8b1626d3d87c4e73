/*
 * bridge — where XMPP and Barev meet: the bridge's start and stop, every
 * stanza from the user's server (presence, subscriptions, messages, iqs to
 * contact JIDs) and every barevlink event (pipes up and down, a peer's
 * stanzas), each handed to the part that knows it: presence.c, relay.c,
 * pep.c, peercaps.c, avatar.c, transfer.c; registry.c holds who exists.
 *
 * The roster is the allowlist (DESIGN.md "Flows"): a contact exists for an
 * identity exactly when it is in the store, and it is in the user's roster
 * as `escaped-nick@addr@component` with the nick as its name (roster.c
 * writes the items, and puts the gateway JID there too).
 */
#include <ctype.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "avatar.h"
#include "barevlink.h"
#include "bridge.h"
#include "bridge_int.h"
#include "component.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "transfer.h"
#include "xmlstream.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_GATEWAY "jabber:iq:gateway"

static void bl_ev_pipe_up(void *, int64_t, int64_t);
static void bl_ev_pipe_down(void *, int64_t, int64_t, const char *);
static void bl_ev_pipe_cut(void *, int64_t, int64_t);
static void bl_ev_stanza(void *, int64_t, int64_t, xmpp_stanza_t *);
static void bl_ev_sent(void *, int64_t, int64_t, uint64_t);
static void bl_ev_ping_done(void *, int64_t, int64_t, uint64_t, int);
static void bl_ev_listener(void *, const char *, uint16_t, int, const char *);

static const struct bl_events bridge_bl_events = {
	.pipe_up = bl_ev_pipe_up,
	.pipe_down = bl_ev_pipe_down,
	.pipe_cut = bl_ev_pipe_cut,
	.stanza = bl_ev_stanza,
	.sent = bl_ev_sent,
	.ping_done = bl_ev_ping_done,
	.listener = bl_ev_listener,
	.permit = br_permit,
};

/* ---- small helpers shared with relay.c ---- */

char *
br_bare(const char *jid)
{
	const char *slash = jid ? strchr(jid, '/') : NULL;
	size_t n = jid ? (slash ? (size_t)(slash - jid) : strlen(jid)) : 0;
	char *out;

	if (jid == NULL || (out = malloc(n + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)jid[i]);
	out[n] = '\0';
	return out;
}

char *
br_resource_of(const char *jid)
{
	const char *slash = jid ? strchr(jid, '/') : NULL;

	return slash ? strdup(slash + 1) : NULL;
}

xmpp_stanza_t *
br_stanza(const char *name, const char *type, const char *from, const char *to)
{
	return xs_stanza(name, type, from, to);
}

void
br_add_text_child(xmpp_stanza_t *parent, const char *name, const char *ns,
    const char *text)
{
	(void)xs_add_text(parent, name, ns, text);
}

/* gw_reply_error(), plus the body of a failed message echoed back so the
 * client can say which message it was */
void
br_error_reply(struct gw *gw, xmpp_stanza_t *st, const char *type,
    const char *cond, const char *text)
{
	const char *t = xmpp_stanza_get_type(st);
	xmpp_stanza_t *reply, *body;

	if ((t && strcmp(t, "error") == 0) || xmpp_stanza_get_from(st) == NULL)
		return;		/* never answer an error with an error */
	if ((reply = gw_error_reply(st, type, cond, text)) == NULL)
		return;
	if (strcmp(xmpp_stanza_get_name(st), "message") == 0 &&
	    (body = xmpp_stanza_get_child_by_name(st, "body")) != NULL)
		xmpp_stanza_add_child(reply, body);
	gw_send_release(gw, reply);
}

int
bridge_start(struct gw *gw)
{
	struct bridge *br;
	struct bl_config bc = { 0 };

	if ((br = calloc(1, sizeof(*br))) == NULL)
		return -1;
	br->gw = gw;
	LIST_INIT(&br->users);
	LIST_INIT(&br->contacts);
	gw->bridge = br;
	bc.header_timeout_ms = (unsigned)gw->cfg.barev_header_timeout_ms;
	bc.silent_initiator_ms = (unsigned)gw->cfg.barev_silent_initiator_ms;
	bc.ping_idle_ms = (unsigned)gw->cfg.barev_ping_idle_ms;
	bc.ping_timeout_ms = (unsigned)gw->cfg.barev_ping_timeout_ms;
	bc.backoff_min_ms = (unsigned)gw->cfg.barev_backoff_min_ms;
	bc.backoff_max_ms = (unsigned)gw->cfg.barev_backoff_max_ms;
	bc.max_dials = gw->cfg.max_concurrent_dials;
	if ((gw->bl = bl_new(gw->base, &bc, &bridge_bl_events, br)) == NULL)
		return -1;
	if (br_registry_load(br) == -1)
		return -1;
	br_policy_warn(br);
	if (avatar_start(gw, &br_avatar_events, br) == -1 ||
	    transfer_start(gw, &br_transfer_events, br) == -1 ||
	    pep_start(br) == -1)
		return -1;
	return relay_start(br);
}

void
bridge_shutdown(struct gw *gw)
{
	if (gw->bridge == NULL)
		return;
	/* the server does not say it for a component: the gateway goes
	 * offline in every roster */
	if (!gw->bridge->stopping) {
		struct br_user *u;

		LIST_FOREACH(u, &gw->bridge->users, entry)
			roster_gateway_presence(gw->bridge, u->jid, "unavailable");
	}
	gw->bridge->stopping = 1;
	relay_stop(gw->bridge);
	transfer_stop(gw);
	avatar_stop(gw);
	gw_iq_track_shutdown(gw);
	if (gw->bl)
		bl_shutdown(gw->bl);
}

void
bridge_free(struct gw *gw)
{
	struct bridge *br = gw->bridge;
	struct br_contact *c;
	struct br_user *u;

	if (br == NULL)
		return;
	br->stopping = 1;
	relay_stop(br);
	if (br->resync_ev)
		event_free(br->resync_ev);
	if (br->hold_ev)
		event_free(br->hold_ev);
	while ((c = LIST_FIRST(&br->contacts)) != NULL) {
		/* the loop is over: what barevlink never reported written
		 * was not delivered, so the next start sends it */
		relay_pipe_down(br, c);
		br_contact_free(br, c);
	}
	while ((u = LIST_FIRST(&br->users)) != NULL)
		br_user_free(br, u);
	/* a start that failed part way never ran bridge_shutdown() */
	avatar_stop(gw);
	pep_stop(br);
	if (gw->bl)
		bl_free(gw->bl);
	gw->bl = NULL;
	free(br->privileged_host);
	roster_sync_free(br);
	free(br->done_rows);
	free(br->acc);
	free(br);
	gw->bridge = NULL;
}

/* ---- stanzas from the server ---- */

/* ---- for admin/subscribe.c: the user's subscriptions ---- */

int
bridge_has_user(struct gw *gw, const char *bare)
{
	return gw->bridge != NULL && br_user_by_jid(gw->bridge, bare) != NULL;
}

/* the user's contact behind contact_jid, or NULL */
static struct br_contact *
contact_of(struct gw *gw, const char *user, const char *contact_jid)
{
	struct br_user *u;

	if (gw->bridge == NULL || (u = br_user_by_jid(gw->bridge, user)) == NULL)
		return NULL;
	return br_contact_for(u, contact_jid);
}

int
bridge_contact_of(struct gw *gw, const char *user, const char *contact_jid,
    char *text, size_t textlen, char *jid, size_t jidlen)
{
	struct br_contact *c = contact_of(gw, user, contact_jid);
	struct gw_baddr a;

	if (c == NULL)
		return -1;
	gw_baddr_set(&a, c->nick, c->address, c->port);
	if (gw_baddr_format(&a, text, textlen) == -1)
		return -1;
	snprintf(jid, jidlen, "%s", c->jid);
	return 0;
}

void
bridge_contact_presence(struct gw *gw, const char *user, const char *contact_jid)
{
	struct br_contact *c = contact_of(gw, user, contact_jid);

	if (c != NULL)
		br_contact_presence_send(gw->bridge, c, NULL);
}

int
bridge_handle_presence(struct gw *gw, xmpp_stanza_t *st)
{
	struct bridge *br = gw->bridge;
	const char *type = xmpp_stanza_get_type(st);
	const char *to = xmpp_stanza_get_to(st);
	char *from = br_bare(xmpp_stanza_get_from(st));
	struct br_user *u;
	struct br_contact *c;

	if (from == NULL || to == NULL)
		goto done;
	if (!strchr(to, '@') && roster_gateway_stanza(br, st, type, from))
		goto done;
	if ((u = br_user_by_jid(br, from)) == NULL)
		goto done;
	/* the user's own presence, which the server copies to each of her
	 * contact JIDs, does not name a contact: looked up only when used */
	if (type == NULL || strcmp(type, "unavailable") == 0) {
		br_user_presence(br, u, st, type == NULL);
	} else if (strcmp(type, "probe") == 0) {
		if (strchr(to, '@') && (c = br_contact_for(u, to)) != NULL)
			br_contact_presence_send(br, c, xmpp_stanza_get_from(st));
	}
	/* her subscriptions to contact JIDs: admin/subscribe.c, first */
done:
	free(from);
	return 1;
}

void
bridge_commit_accepted(struct gw *gw)
{
	if (gw->bridge)
		relay_commit_accepted(gw->bridge);
}

/* the transfer module's notes, links and errors for a user */
static void
transfer_to_user(void *arg, int64_t contact, xmpp_stanza_t *st)
{
	struct bridge *br = arg;

	relay_to_user(br, br_contact_by_id(br, contact), st, 1);
}

const struct transfer_events br_transfer_events = { transfer_to_user };

int
bridge_handle_message(struct gw *gw, xmpp_stanza_t *st)
{
	struct bridge *br = gw->bridge;
	const char *type = xmpp_stanza_get_type(st);
	char *from = br_bare(xmpp_stanza_get_from(st));
	struct br_user *u;
	struct br_contact *c;

	if (type && (strcmp(type, "error") == 0 || strcmp(type, "groupchat") == 0))
		goto done;
	if (from == NULL)
		goto done;
	if ((u = br_user_by_jid(br, from)) == NULL) {
		br_error_reply(gw, st, "auth", "registration-required",
		    "You have no Barev identity on this gateway yet, so nothing"
		    " was sent; ask an administrator for one.");
		goto done;
	}
	if ((c = br_contact_for(u, xmpp_stanza_get_to(st))) == NULL) {
		br_error_reply(gw, st, "auth", "forbidden",
		    "This Barev address is not among your contacts, so nothing was"
		    " sent. Add it to your roster (or send 'add NICK@ADDRESS' to"
		    " the gateway) first.");
		goto done;
	}
	relay_message_from_user(br, u, c, st);
done:
	free(from);
	return 1;
}

/* The result to `st` with `payload` (may be NULL) in it; `ok` 0: building
 * the payload ran out of memory, and the user is told so instead. */
static int
answer(struct gw *gw, xmpp_stanza_t *st, xmpp_stanza_t *payload, int ok)
{
	xmpp_stanza_t *reply = ok ? gw_iq_result(st) : NULL;

	if (reply == NULL) {
		if (payload)
			xmpp_stanza_release(payload);
		br_error_reply(gw, st, "wait", "internal-server-error",
		    "The gateway is out of memory.");
		return 1;
	}
	if (payload)
		xmpp_stanza_add_child_ex(reply, payload, 0);
	gw_send_release(gw, reply);
	return 1;
}

/* XEP-0100 §6.3 on the gateway's JID: what the user typed becomes a
 * contact JID (get: the prompt; set: the JID) */
static int
gateway_prompt(struct gw *gw, xmpp_stanza_t *st, xmpp_stanza_t *q,
    const char *type)
{
	xmpp_stanza_t *res = br_stanza("query", NULL, NULL, NULL), *el;
	char *typed;
	struct gw_baddr a;
	char err[256], jid[STORE_JID_MAX];

	if (res == NULL)
		return answer(gw, st, NULL, 0);
	xmpp_stanza_set_ns(res, NS_GATEWAY);
	if (strcmp(type, "get") == 0) {
		br_add_text_child(res, "desc", NULL, "Enter the Barev address"
		    " of your contact: nick@ADDRESS or nick@[ADDRESS]:PORT");
		br_add_text_child(res, "prompt", NULL, NULL);
		return answer(gw, st, res, 1);
	}
	typed = (el = xmpp_stanza_get_child_by_name(q, "prompt")) ?
	    xmpp_stanza_get_text(el) : NULL;
	if (typed == NULL || gw_baddr_parse(typed, &a, err, sizeof(err)) == -1) {
		br_error_reply(gw, st, "modify", "bad-request",
		    typed ? err : "Give a Barev address");
		free(typed);
		xmpp_stanza_release(res);
		return 1;
	}
	free(typed);
	if (gw_baddr_to_jid(&a, gw->cfg.component_jid, jid, sizeof(jid)) == 0)
		br_add_text_child(res, "jid", NULL, jid);
	return answer(gw, st, res, 1);
}

/* What a contact JID answers itself (translate.c builds it): disco#info,
 * vCard with the avatar, ping; PEP reads for OMEMO keys (pep.c). */
static int
contact_iq(struct gw *gw, struct br_contact *c, xmpp_stanza_t *st,
    const char *ns, const char *type)
{
	xmpp_stanza_t *res;
	const char *const *passed;
	size_t n;

	if (strcmp(ns, NS_PUBSUB) == 0)
		return pep_user_iq(gw->bridge, c, st);	/* OMEMO keys */
	if (strcmp(ns, NS_DISCO_INFO) == 0 && strcmp(type, "get") == 0) {
		passed = peercaps_passed(c, &n);
		res = tr_contact_disco(c->nick, passed, n);
		return answer(gw, st, res, res != NULL);
	}
	if (strcmp(ns, "vcard-temp") == 0 && strcmp(type, "get") == 0) {
		if ((res = tr_contact_vcard(c->nick, c->name)) != NULL)
			avatar_contact_vcard(gw, c->id, res);
		return answer(gw, st, res, res != NULL);
	}
	if (strcmp(ns, "urn:xmpp:ping") == 0)	/* answered for the peer: */
		return answer(gw, st, NULL, 1);	/* the gateway is reachable */
	br_error_reply(gw, st, "cancel", "service-unavailable", NULL);
	return 1;
}

/* iqs to a contact JID; jabber:iq:gateway on ours */
int
bridge_handle_iq(struct gw *gw, xmpp_stanza_t *st)
{
	const char *type = xmpp_stanza_get_type(st), *to = xmpp_stanza_get_to(st);
	xmpp_stanza_t *q = xmpp_stanza_get_children(st);
	const char *ns;
	char *from = br_bare(xmpp_stanza_get_from(st));
	struct br_user *u = from ? br_user_by_jid(gw->bridge, from) : NULL;
	struct br_contact *c = NULL;

	free(from);
	while (q && !xmpp_stanza_is_tag(q))
		q = xmpp_stanza_get_next(q);
	if (type == NULL || q == NULL || (strcmp(type, "get") && strcmp(type, "set")))
		return 0;
	if ((ns = xmpp_stanza_get_ns(q)) == NULL)
		return 0;
	if (to && !strchr(to, '@'))
		return strcmp(ns, NS_GATEWAY) == 0 ?
		    gateway_prompt(gw, st, q, type) : 0;
	if (u)
		c = br_contact_for(u, to);
	if (c == NULL) {
		br_error_reply(gw, st, "cancel", "item-not-found",
		    "No such Barev contact in your roster");
		return 1;
	}
	return contact_iq(gw, c, st, ns, type);
}

/* ---- barevlink events ---- */

static void
bl_ev_pipe_up(void *arg, int64_t ident, int64_t contact)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);

	(void)ident;
	if (c == NULL)
		return;
	log_info("bridge", "pipe up: %s <-> %s@%s", c->user->jid, c->nick, c->address);
	/* it asks what the peer is; only a peer that was a gateway before
	 * is waited for (its queue may hold what only a gateway reads) */
	if (peercaps_pipe_up(br, c))
		return;
	br_pipe_ready(br, c);
}

/* The pipe is ours to use: the queue goes out, transfers are offered. */
void
br_pipe_ready(struct bridge *br, struct br_contact *c)
{
	c->pipe_up = 1;
	relay_pipe_up(br, c);
	transfer_pipe_up(br->gw, c->id);
}

static void
bl_ev_pipe_down(void *arg, int64_t ident, int64_t contact, const char *why)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);

	(void)ident;
	if (c == NULL)
		return;
	log_info("bridge", "pipe down: %s <-> %s@%s: %s", c->user->jid, c->nick,
	    c->address, why ? why : "closed");
	c->pipe_up = 0;
	peercaps_pipe_down(c);
	pep_pipe_down(br, c);
	relay_pipe_down(br, c);
	transfer_pipe_down(br->gw, c->id);
	if (br->stopping)
		gw_stop_progress(br->gw);
	if (c->available) {
		c->available = 0;
		c->show[0] = '\0';
		br_contact_presence_send(br, c, NULL);
	}
}

static void
bl_ev_pipe_cut(void *arg, int64_t ident, int64_t contact)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);

	(void)ident;
	if (c)
		c->pipe_cut = 1;	/* relay_pipe_down() requeues the unread */
}

/* An iq from a peer nobody else took: decline file offers the way the
 * peers do (BAREV.md §6), refuse other requests, drop stray results. */
static void
peer_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	const char *type = xmpp_stanza_get_type(st);
	xmpp_stanza_t *reply;

	if (peercaps_peer_iq(br, c, st) || pep_peer_iq(br, c, st) ||
	    avatar_peer_iq(br->gw, c->ident, c->id, st) ||
	    transfer_peer_iq(br->gw, c->ident, c->id, st))
		return;
	if (type == NULL || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
		return;
	if (xmpp_stanza_get_child_by_name(st, "si") != NULL)
		reply = gw_error_reply(st, "cancel", "forbidden", NULL);
	else
		reply = gw_error_reply(st, "cancel", "service-unavailable", NULL);
	if (reply == NULL)
		return;
	if (xmpp_stanza_get_child_by_name(st, "si") != NULL) {
		xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(reply, "error");

		if (err)
			xmpp_stanza_set_attribute(err, "code", "403");
	}
	bl_send_stanza(br->gw->bl, c->id, reply, 0);
	xmpp_stanza_release(reply);
}

static void
bl_ev_stanza(void *arg, int64_t ident, int64_t contact, xmpp_stanza_t *st)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);
	const char *name = xmpp_stanza_get_name(st);

	(void)ident;
	if (c == NULL || name == NULL)
		return;
	if (strcmp(name, "presence") == 0)
		br_peer_presence(br, c, st);
	else if (strcmp(name, "message") == 0)
		relay_message_from_peer(br, c, st);
	else if (strcmp(name, "iq") == 0)
		peer_iq(br, c, st);
	else
		log_debug("bridge", "ignored <%s/> from %s@%s", name, c->nick, c->address);
}

static void
bl_ev_sent(void *arg, int64_t ident, int64_t contact, uint64_t token)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);

	(void)ident;
	if (c)
		relay_sent(br, c, token);
}

static void
bl_ev_ping_done(void *arg, int64_t ident, int64_t contact, uint64_t cookie, int ok)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);

	(void)ident;
	if (c)
		relay_ping_done(br, c, cookie, ok);
}

static void
bl_ev_listener(void *arg, const char *addr, uint16_t port, int ok, const char *err)
{
	(void)arg;
	if (ok)
		log_info("bridge", "listening for Barev peers on [%s]:%u", addr, port);
	else
		log_error("bridge", "cannot listen on [%s]:%u: %s", addr, port,
		    err ? err : "unknown error");
}

