/*
 * presence — both ways between a user's XMPP resources and her Barev
 * identity: the peers' presence as the contact's presence to her, her
 * resources aggregated (priority, then most available) into the one
 * presence her pipes show, and what becomes of both while the component
 * link is down, resyncing after it came back, or held through a server's
 * restart (docs/design.md "Presence across a server restart").
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

#define RESOURCE "barev"
#define RESYNC_GRACE_MS 3000	/* for probe answers after a reconnect */
#define NS_PRIV1 "urn:xmpp:privilege:1"
#define NS_PRIV2 "urn:xmpp:privilege:2"

/* ---- presence toward the user ---- */

void
br_contact_presence_send(struct bridge *br, struct br_contact *c, const char *to)
{
	char full[STORE_JID_MAX + 16];
	xmpp_stanza_t *st;

	snprintf(full, sizeof(full), "%s/%s", c->jid, RESOURCE);
	st = tr_contact_presence(full, to ? to : c->user->jid, c->available,
	    c->show, c->status, c->available ?
	    avatar_contact_hash(br->gw, c->id) : NULL);
	if (st == NULL) {
		log_error("bridge", "no memory for %s's presence", c->jid);
		return;
	}
	gw_send_release(br->gw, st);
}

/* A presence stanza from the peer (BAREV.md §3). */
void
br_peer_presence(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	struct tr_peer_presence p;

	tr_peer_presence_read(st, &p);
	if (p.ignore)
		return;
	if (p.avatar)
		avatar_peer_presence(br->gw, c->ident, c->id, p.photo);
	/* pascal sends every presence twice: forward only changes */
	if (c->available == p.available && strcmp(c->show, p.show) == 0 &&
	    ((c->status == NULL && p.status == NULL) ||
	    (c->status && p.status && strcmp(c->status, p.status) == 0))) {
		tr_peer_presence_clear(&p);
		return;
	}
	c->available = p.available;
	snprintf(c->show, sizeof(c->show), "%s", p.show);
	free(c->status);
	c->status = p.status;
	p.status = NULL;
	tr_peer_presence_clear(&p);
	br_contact_presence_send(br, c, NULL);
}

/* ---- the user's presence toward Barev ---- */

static struct tr_resource
tr_of(const struct br_resource *r)
{
	struct tr_resource t = { r->priority, r->show, r->status };

	return t;
}

void
br_user_publish(struct bridge *br, struct br_user *u)
{
	struct br_resource *r, *best = NULL;
	struct bl_presence p = { 0 };
	struct br_contact *c;
	int was_online = u->online;

	if (br->resyncing)
		return;		/* resync_done() publishes everybody */
	LIST_FOREACH(r, &u->resources, entry) {
		struct tr_resource a = tr_of(r), b;

		if (best != NULL)
			b = tr_of(best);
		if (tr_resource_wins(&a, best ? &b : NULL))
			best = r;
	}
	if (u->held) {
		if (best == NULL)
			return;		/* still held: her peers see what they saw */
		u->held = 0;		/* she is back: what she says now counts */
	}
	u->online = best != NULL;
	p.available = u->online;
	if (best) {
		p.show = tr_show_to_barev(best->show);
		p.status = best->status;
	}
	p.photo = avatar_identity_hash(br->gw, u->ident);
	bl_identity_set_presence(br->gw->bl, u->ident, &p);
	if (was_online != u->online) {
		log_info("bridge", "%s is %s", u->jid, u->online ? "online" : "offline");
		LIST_FOREACH(c, &u->contacts, user_entry)
			br_update_want(br, c);
	}
}

void
br_resource_free(struct br_resource *r)
{
	LIST_REMOVE(r, entry);
	free(r->resource);
	free(r->status);
	free(r);
}

/* available/unavailable presence from one of the user's resources */
void
br_user_presence(struct bridge *br, struct br_user *u, xmpp_stanza_t *st, int avail)
{
	char *res = br_resource_of(xmpp_stanza_get_from(st)), *txt;
	struct br_resource *r;
	xmpp_stanza_t *el;
	int changed = 0;

	if (res == NULL)
		res = strdup("");
	if (res == NULL)
		return;
	LIST_FOREACH(r, &u->resources, entry)
		if (strcmp(r->resource, res) == 0)
			break;
	if (!avail && *res == '\0') {
		/* from the bare JID (a probe's answer): no resource is online */
		while (!LIST_EMPTY(&u->resources)) {
			br_resource_free(LIST_FIRST(&u->resources));
			changed = 1;
		}
		free(res);
		goto out;
	}
	if (!avail) {
		if (r) {
			br_resource_free(r);
			changed = 1;
		}
		free(res);
		goto out;
	}
	avatar_user_presence(br->gw, u->ident, st);
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			free(res);
			return;
		}
		r->resource = res;
		LIST_INSERT_HEAD(&u->resources, r, entry);
		changed = 1;
	} else {
		free(res);
	}
	/* the server sends the same presence to every contact: dedup */
	txt = (el = xmpp_stanza_get_child_by_name(st, "show")) ? xmpp_stanza_get_text(el) : NULL;
	if (tr_show_parse(txt) != r->show) {
		r->show = tr_show_parse(txt);
		changed = 1;
	}
	free(txt);
	txt = (el = xmpp_stanza_get_child_by_name(st, "priority")) ? xmpp_stanza_get_text(el) : NULL;
	if ((txt ? atoi(txt) : 0) != r->priority) {
		r->priority = txt ? atoi(txt) : 0;
		changed = 1;
	}
	free(txt);
	txt = (el = xmpp_stanza_get_child_by_name(st, "status")) ? xmpp_stanza_get_text(el) : NULL;
	if ((txt == NULL) != (r->status == NULL) || (txt && strcmp(txt, r->status) != 0)) {
		free(r->status);
		r->status = txt;
		txt = NULL;
		changed = 1;
	}
	free(txt);
out:
	if (changed)
		br_user_publish(br, u);
}

/* ---- component link ---- */

/* The server-restart hold is over: who is not back is offline now. */
static void
hold_done(evutil_socket_t fd, short what, void *arg)
{
	struct bridge *br = arg;
	struct br_user *u;
	unsigned n = 0;

	(void)fd;
	(void)what;
	LIST_FOREACH(u, &br->users, entry) {
		if (!u->held)
			continue;
		u->held = 0;
		n++;
		br_user_publish(br, u);
	}
	if (n > 0)
		log_info("bridge", "%u user(s) did not log back in within %llu s "
		    "of the server link's return: offline at their peers now", n,
		    (unsigned long long)(br->gw->cfg.server_restart_hold_ms / 1000));
}

/*
 * After a reconnect, a user who was online when the link dropped and has
 * no resource now most likely went down with her server (a crash or a
 * restart says nothing to us) and is logging back in.  Closing her pipes
 * now and dialling them again when she returns is a storm of goodbyes and
 * re-dials (all of a server's users at once) for a state that lasts
 * seconds: she is held online at her peers instead, as federated XMPP
 * servers keep showing a crashed server's users, until she is back or
 * server_restart_hold passes.  What peers send meanwhile reaches her
 * bare JID (her server keeps it offline) or the inbox, as always.
 */
static void
hold_start(struct bridge *br)
{
	uint64_t ms = br->gw->cfg.server_restart_hold_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	struct br_user *u;
	unsigned n = 0, still = 0;

	if (ms == 0)
		return;
	LIST_FOREACH(u, &br->users, entry) {
		still += u->held != 0;
		if (!u->online || !LIST_EMPTY(&u->resources))
			continue;
		u->held = 1;
		n++;
	}
	if (n == 0)
		return;
	if (br->hold_ev == NULL &&
	    (br->hold_ev = evtimer_new(br->gw->base, hold_done, br)) == NULL) {
		LIST_FOREACH(u, &br->users, entry)
			u->held = 0;	/* cannot time it: no hold */
		return;
	}
	/* a link lost again during a hold does not make it longer for those
	 * still held from the first loss */
	if (still == 0 || !evtimer_pending(br->hold_ev, NULL))
		evtimer_add(br->hold_ev, &tv);
	log_info("bridge", "%u user(s) online before the server link dropped are "
	    "not back yet: held online at their peers for up to %llu s", n,
	    (unsigned long long)(ms / 1000));
}

static void
resync_done(evutil_socket_t fd, short what, void *arg)
{
	struct bridge *br = arg;
	struct br_user *u;

	(void)fd;
	(void)what;
	br->resyncing = 0;
	hold_start(br);
	LIST_FOREACH(u, &br->users, entry) {
		br_user_publish(br, u);
		/* the grant came with the link or not at all: without it, the
		 * gateway asks to be in her roster (answered by her server if
		 * it is already) */
		if (!roster_granted_for(br, u->jid))
			roster_gateway_add(br, u);
	}
}


void
bridge_component_up(struct gw *gw)
{
	struct bridge *br = gw->bridge;
	struct br_user *u;
	struct br_contact *c;

	relay_flush_inbox(br);
	/*
	 * Re-learn who is online: forget the resources quietly, probe, and
	 * publish what the answers say only after a short grace period, so
	 * pipes of users who stayed online are not closed and re-opened.
	 */
	LIST_FOREACH(u, &br->users, entry)
		while (!LIST_EMPTY(&u->resources))
			br_resource_free(LIST_FIRST(&u->resources));
	br->resyncing = 1;
	if (br->resync_ev == NULL)
		br->resync_ev = evtimer_new(gw->base, resync_done, br);
	if (br->resync_ev) {
		struct timeval tv = { RESYNC_GRACE_MS / 1000, (RESYNC_GRACE_MS % 1000) * 1000 };

		evtimer_add(br->resync_ev, &tv);
	} else {
		br->resyncing = 0;
	}
	LIST_FOREACH(u, &br->users, entry) {
		roster_gateway_presence(br, u->jid, NULL);
		if ((c = LIST_FIRST(&u->contacts)) != NULL)
			gw_send_release(gw, br_stanza("presence", "probe", c->jid, u->jid));
	}
	LIST_FOREACH(c, &br->contacts, entry)
		if (c->available)
			br_contact_presence_send(br, c, NULL);
}

void
bridge_component_down(struct gw *gw)
{
	/*
	 * Keep every user's presence as it was: a server restart must not
	 * drop the Barev pipes.  bridge_component_up() re-learns it.
	 */
	(void)gw;
}

int
bridge_handle_privilege(struct gw *gw, xmpp_stanza_t *st)
{
	struct bridge *br = gw->bridge;
	xmpp_stanza_t *priv, *perm;
	const char *from = xmpp_stanza_get_from(st);

	priv = xmpp_stanza_get_child_by_name_and_ns(st, "privilege", NS_PRIV2);
	if (priv == NULL)
		priv = xmpp_stanza_get_child_by_name_and_ns(st, "privilege", NS_PRIV1);
	if (priv == NULL || from == NULL || strchr(from, '@') || strchr(from, '/'))
		return 0;
	/*
	 * Any domain the server routes for (another component, a remote server)
	 * can address us: only our own server may grant, or the one granted
	 * would be replaced and users' rosters left to whoever asked (issue 15).
	 */
	if (!gw_config_is_server_domain(&gw->cfg, from)) {
		log_warn("bridge", "ignored XEP-0356 privileges from %s: only the"
		    " server the component belongs to (or one of"
		    " registration_domains) may grant them", from);
		return 1;
	}
	for (perm = xmpp_stanza_get_children(priv); perm; perm = xmpp_stanza_get_next(perm)) {
		const char *access = xmpp_stanza_get_attribute(perm, "access");
		const char *type = xmpp_stanza_get_attribute(perm, "type");

		if (access && type && strcmp(access, "roster") == 0 &&
		    (strcmp(type, "both") == 0 || strcmp(type, "set") == 0)) {
			free(br->privileged_host);
			br->privileged_host = strdup(from);
			br->roster_refused = 0;		/* a new grant: try it */
			log_info("bridge", "%s granted roster privilege (XEP-0356):"
			    " contacts go straight into users' rosters", from);
			/* make every roster right: where the grant reads too,
			 * pushing only what differs (rostersync.c) */
			roster_sync_start(br, strcmp(type, "both") == 0);
			return 1;
		}
	}
	log_info("bridge", "%s sent privileges without roster set: using"
	    " subscription requests", from);
	return 1;
}

/* ---- the avatar module's events: something users or peers see changed ---- */

static void
avatar_contact_changed(void *arg, int64_t contact)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact);

	if (c && c->available)
		br_contact_presence_send(br, c, NULL);
}

static void
avatar_identity_changed(void *arg, int64_t ident)
{
	struct bridge *br = arg;
	struct br_user *u = br_user_by_ident(br, ident);

	if (u)
		br_user_publish(br, u);
}

const struct avatar_events br_avatar_events = {
	avatar_contact_changed, avatar_identity_changed,
};
