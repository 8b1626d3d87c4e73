/*
 * bridge — users, contacts, presence and roster between XMPP and Barev.
 *
 * The roster is the allowlist (DESIGN.md "Flows"): a contact exists for an
 * identity exactly when it is in the store, and it is in the user's roster
 * as `escaped-nick@addr@component` with the nick as its name (roster.c
 * writes the items, and puts the gateway JID there too).  A user's
 * resources are aggregated (priority, then most available) into the one
 * presence the identity shows on its pipes; while no resource is online the
 * identity only accepts (messages still reach the server's offline storage).
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
#include "provision.h"
#include "transfer.h"
#include "xmlstream.h"

#define NS_PRIV1 "urn:xmpp:privilege:1"
#define NS_PRIV2 "urn:xmpp:privilege:2"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_GATEWAY "jabber:iq:gateway"
#define RESOURCE "barev"
#define RESYNC_GRACE_MS 3000	/* for probe answers after a reconnect */

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

/*
 * The node (localpart) of a contact JID, lower-cased like the stored nicks;
 * NULL if there is none.  libstrophe splits the JID (xmpp_jid_node: resource
 * stripped first, RFC 7622 §3.2), so a '@' in a resource is not mistaken for
 * the node's end.  Free with xmpp_free(xs_ctx(), ...).
 */
static char *
br_node(const char *jid)
{
	char *node = jid != NULL ? xmpp_jid_node(xs_ctx(), jid) : NULL;

	for (char *p = node; p != NULL && *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return node;
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

int
br_send(struct gw *gw, xmpp_stanza_t *st)
{
	int rc;

	if (st == NULL)
		return -1;
	rc = gw_send(gw, st);
	xmpp_stanza_release(st);
	return rc;
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
	br_send(gw, reply);
}

/* ---- lookups ---- */

static int
cmp_ident(const void *a, const void *b)
{
	const struct br_user *x = a, *y = b;

	return x->ident < y->ident ? -1 : x->ident > y->ident;
}

static int
cmp_jid(const void *a, const void *b)
{
	return strcmp(((const struct br_user *)a)->jid,
	    ((const struct br_user *)b)->jid);
}

static int
cmp_contact_id(const void *a, const void *b)
{
	const struct br_contact *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* (identity, nick without case, address): the store's UNIQUE key of a
 * contact (schema/001_init.sql), so no two contacts share a node */
static int
cmp_contact_addr(const void *a, const void *b)
{
	const struct br_contact *x = a, *y = b;
	int d;

	if (x->ident != y->ident)
		return x->ident < y->ident ? -1 : 1;
	if ((d = strcasecmp(x->nick, y->nick)) != 0)
		return d;
	return strcmp(x->address, y->address);
}

static void *
found(void **node)
{
	return node != NULL ? *node : NULL;
}

struct br_user *
br_user_by_ident(struct bridge *br, int64_t ident)
{
	struct br_user key;

	key.ident = ident;
	return found(tfind(&key, &br->users_by_ident, cmp_ident));
}

struct br_user *
br_user_by_jid(struct bridge *br, const char *bare)
{
	struct br_user key;

	if (strlen(bare) >= sizeof(key.jid))
		return NULL;
	strcpy(key.jid, bare);
	return found(tfind(&key, &br->users_by_jid, cmp_jid));
}

struct br_contact *
br_contact_by_id(struct bridge *br, int64_t id)
{
	struct br_contact key;

	key.id = id;
	return found(tfind(&key, &br->contacts_by_id, cmp_contact_id));
}

struct br_contact *
br_contact_by_addr(struct bridge *br, int64_t ident, const char *nick,
    const char *address)
{
	struct br_contact key;

	key.ident = ident;
	key.nick = (char *)nick;
	key.address = (char *)address;
	return found(tfind(&key, &br->contacts_by_addr, cmp_contact_addr));
}

struct br_contact *
br_contact_for(struct br_user *u, const char *to)
{
	struct gw_baddr a;
	char *node = br_node(to);
	int rc;

	if (node == NULL)
		return NULL;
	rc = gw_baddr_from_localpart(node, &a);
	xmpp_free(xs_ctx(), node);
	if (rc == -1)
		return NULL;
	/* contacts of one user only: her identity is part of the key */
	return br_contact_by_addr(u->br, u->ident, a.nick, a.addr);
}

/* ---- presence toward the user ---- */

static void
contact_presence_send(struct bridge *br, struct br_contact *c, const char *to)
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
	br_send(br->gw, st);
}

/* A presence stanza from the peer (BAREV.md §3). */
static void
peer_presence(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
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
	contact_presence_send(br, c, NULL);
}

/* ---- the user's presence toward Barev ---- */

static struct tr_resource
tr_of(const struct br_resource *r)
{
	struct tr_resource t = { r->priority, r->show, r->status };

	return t;
}

static void
user_publish(struct bridge *br, struct br_user *u)
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

static void
resource_free(struct br_resource *r)
{
	LIST_REMOVE(r, entry);
	free(r->resource);
	free(r->status);
	free(r);
}

/* available/unavailable presence from one of the user's resources */
static void
user_presence(struct bridge *br, struct br_user *u, xmpp_stanza_t *st, int avail)
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
			resource_free(LIST_FIRST(&u->resources));
			changed = 1;
		}
		free(res);
		goto out;
	}
	if (!avail) {
		if (r) {
			resource_free(r);
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
		user_publish(br, u);
}

/* ---- contacts and users in memory ---- */

void
br_update_want(struct bridge *br, struct br_contact *c)
{
	if (br->stopping)
		return;		/* no new dials while we go */
	bl_contact_want(br->gw->bl, c->id, c->user->online || c->outbox_queued > 0);
}

static struct br_user *
user_add(struct bridge *br, const struct store_identity *id)
{
	struct br_user *u = br_user_by_ident(br, id->id);

	if (u == NULL) {
		if ((u = calloc(1, sizeof(*u))) == NULL)
			return NULL;
		LIST_INIT(&u->resources);
		LIST_INIT(&u->contacts);
		u->ident = id->id;
		u->br = br;
		snprintf(u->jid, sizeof(u->jid), "%s", id->jid);
		if (tsearch(u, &br->users_by_ident, cmp_ident) == NULL ||
		    tsearch(u, &br->users_by_jid, cmp_jid) == NULL) {
			tdelete(u, &br->users_by_ident, cmp_ident);
			free(u);
			return NULL;
		}
		LIST_INSERT_HEAD(&br->users, u, entry);
	}
	snprintf(u->nick, sizeof(u->nick), "%s", id->nick);
	snprintf(u->address, sizeof(u->address), "%s", id->address);
	u->port = id->port;
	if (bl_identity_add(br->gw->bl, id->id, id->nick, id->address,
	    (uint16_t)id->port) == -1)
		log_error("bridge", "cannot start Barev identity %s@%s for %s",
		    id->nick, id->address, id->jid);
	/* until the user's server tells us otherwise, they are offline */
	user_publish(br, u);
	return u;
}

/*
 * The contact's nick, address, name and JID in one block sized to them,
 * with the same bounds the fixed buffers they replace had (GW_NICK_MAX,
 * GW_ADDR_TEXT, STORE_NAME_MAX, STORE_JID_MAX): the block is c->nick.
 */
static int
contact_strings(struct bridge *br, struct br_contact *c,
    const struct store_contact *sc)
{
	char jid[STORE_JID_MAX];
	const char *src[4];
	size_t len[4], max[4] = { GW_NICK_MAX, GW_ADDR_TEXT - 1,
	    STORE_NAME_MAX, STORE_JID_MAX - 1 }, total = 0;
	char *blk, *p, **dst[4];

	jid[0] = '\0';
	if (prov_contact_jid(br->gw, sc, jid, sizeof(jid)) == -1)
		log_warn("bridge", "contact %s@%s has no JID that fits", sc->nick, sc->address);
	src[0] = sc->nick;
	src[1] = sc->address;
	src[2] = sc->name;
	src[3] = jid;
	for (int i = 0; i < 4; i++) {
		len[i] = strnlen(src[i], max[i]);
		total += len[i] + 1;
	}
	if ((blk = malloc(total)) == NULL) {
		log_error("bridge", "out of memory for contact %s@%s", sc->nick,
		    sc->address);
		return -1;
	}
	dst[0] = &c->nick;
	dst[1] = &c->address;
	dst[2] = &c->name;
	dst[3] = &c->jid;
	free(c->nick);		/* the previous block, if any */
	p = blk;
	for (int i = 0; i < 4; i++) {
		memcpy(p, src[i], len[i]);
		p[len[i]] = '\0';
		*dst[i] = p;
		p += len[i] + 1;
	}
	return 0;
}

static struct br_contact *
contact_add(struct bridge *br, const struct store_contact *sc)
{
	struct br_user *u = br_user_by_ident(br, sc->identity_id);
	struct br_contact *c;

	if (u == NULL)
		return NULL;
	if ((c = br_contact_by_id(br, sc->id)) == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return NULL;
		TAILQ_INIT(&c->inflight);
		TAILQ_INIT(&c->unread);
		c->id = sc->id;
		c->ident = sc->identity_id;
		c->was_gateway = sc->was_gateway;	/* peercaps.c */
		if (contact_strings(br, c, sc) == -1) {
			free(c);
			return NULL;
		}
		if (tsearch(c, &br->contacts_by_id, cmp_contact_id) == NULL) {
			free(c->nick);
			free(c);
			return NULL;
		}
		if (tsearch(c, &br->contacts_by_addr, cmp_contact_addr) == NULL) {
			tdelete(c, &br->contacts_by_id, cmp_contact_id);
			free(c->nick);
			free(c);
			return NULL;
		}
		LIST_INSERT_HEAD(&br->contacts, c, entry);
		LIST_INSERT_HEAD(&u->contacts, c, user_entry);
	} else {
		/* re-keyed: out of the address index while its key changes */
		tdelete(c, &br->contacts_by_addr, cmp_contact_addr);
		if (contact_strings(br, c, sc) == -1)
			log_error("bridge", "contact %s@%s keeps its old names",
			    sc->nick, sc->address);
		if (tsearch(c, &br->contacts_by_addr, cmp_contact_addr) == NULL)
			log_error("bridge", "contact %s@%s: out of memory for its"
			    " index; messages to it are refused", sc->nick,
			    sc->address);
	}
	/* a contact belongs to one identity for life (store schema) */
	c->br = br;
	c->ident = sc->identity_id;
	c->user = u;
	c->port = sc->port;
	if (bl_contact_add(br->gw->bl, sc->identity_id, sc->id, sc->nick,
	    sc->address, (uint16_t)sc->port) == -1)
		log_error("bridge", "cannot allowlist %s@%s", sc->nick, sc->address);
	br_update_want(br, c);
	return c;
}

static void
contact_free(struct bridge *br, struct br_contact *c)
{
	relay_contact_forget(br, c);
	peercaps_forget(c);
	avatar_forget_contact(br->gw, c->id);
	transfer_forget_contact(br->gw, c->id);
	tdelete(c, &br->contacts_by_id, cmp_contact_id);
	/* absent if its index node could not be made (contact_add) */
	if (found(tfind(c, &br->contacts_by_addr, cmp_contact_addr)) == c)
		tdelete(c, &br->contacts_by_addr, cmp_contact_addr);
	LIST_REMOVE(c, entry);
	LIST_REMOVE(c, user_entry);
	free(c->status);
	free(c->nick);
	free(c);
}

/* its contacts are gone already */
static void
user_free(struct bridge *br, struct br_user *u)
{
	while (!LIST_EMPTY(&u->resources))
		resource_free(LIST_FIRST(&u->resources));
	tdelete(u, &br->users_by_ident, cmp_ident);
	tdelete(u, &br->users_by_jid, cmp_jid);
	LIST_REMOVE(u, entry);
	free(u);
}

static void
load_identity(void *arg, const struct store_identity *id)
{
	user_add(arg, id);
}

static void
load_contact(void *arg, const struct store_contact *c)
{
	contact_add(arg, c);
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
	if (store_identity_foreach(gw->store, load_identity, br) != STORE_OK ||
	    store_contact_foreach(gw->store, 0, load_contact, br) != STORE_OK)
		return -1;
	br_policy_warn(br);
	if (avatar_start(gw) == -1 || transfer_start(gw) == -1 ||
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
		contact_free(br, c);
	}
	while ((u = LIST_FIRST(&br->users)) != NULL)
		user_free(br, u);
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

/* ---- provisioning effects ---- */

void
bridge_identity_added(struct gw *gw, const struct store_identity *id)
{
	struct br_user *u = user_add(gw->bridge, id);
	struct br_contact *c;

	/* learn at once whether the user is online: probe from any contact */
	if (u == NULL)
		return;
	roster_gateway_join(gw->bridge, u);
	if ((c = LIST_FIRST(&u->contacts)) != NULL)
		br_send(gw, br_stanza("presence", "probe", c->jid, u->jid));
}

void
bridge_identity_nick_changed(struct gw *gw, const struct store_identity *id)
{
	struct br_user *u = br_user_by_ident(gw->bridge, id->id);

	if (u)
		snprintf(u->nick, sizeof(u->nick), "%s", id->nick);
	bl_identity_set_nick(gw->bl, id->id, id->nick);
}

void
bridge_identity_removed(struct gw *gw, const struct store_identity *id)
{
	struct br_user *u = br_user_by_ident(gw->bridge, id->id);
	struct br_contact *c;

	if (u == NULL)
		return;
	while ((c = LIST_FIRST(&u->contacts)) != NULL)
		contact_free(gw->bridge, c);
	bl_identity_remove(gw->bl, id->id);
	avatar_forget_identity(gw, id->id);
	user_free(gw->bridge, u);
}

void
bridge_contact_added(struct gw *gw, const struct store_identity *id,
    const struct store_contact *sc)
{
	struct br_contact *c = contact_add(gw->bridge, sc);

	(void)id;
	if (c == NULL)
		return;
	/* the user's presence is probed from the contact once it is in her
	 * roster (the push's answer, or her approval of our request): then
	 * the new contact is dialled at once if she is online */
	roster_contact(gw->bridge, c, 0, 1);
	/* the peer's current state: offline until its pipe says otherwise */
	contact_presence_send(gw->bridge, c, NULL);
}

void
bridge_contact_removed(struct gw *gw, const struct store_identity *id,
    const struct store_contact *sc)
{
	struct br_contact *c = br_contact_by_id(gw->bridge, sc->id);

	(void)id;
	if (c == NULL)
		return;
	c->available = 0;
	free(c->status);
	c->status = NULL;
	contact_presence_send(gw->bridge, c, NULL);
	roster_contact(gw->bridge, c, 1, 0);
	bl_contact_remove(gw->bl, c->id);
	contact_free(gw->bridge, c);
}

void
bridge_get_stats(struct gw *gw, struct bridge_stats *st)
{
	struct br_user *u;
	struct br_contact *c;

	memset(st, 0, sizeof(*st));
	if (gw->bridge == NULL)
		return;
	LIST_FOREACH(u, &gw->bridge->users, entry) {
		st->identities++;
		st->users_online += u->online != 0;
		st->users_held += u->held != 0;
	}
	LIST_FOREACH(c, &gw->bridge->contacts, entry)
		st->contacts++;
	st->privileged_roster = gw->bridge->privileged_host != NULL;
	snprintf(st->privileged_host, sizeof(st->privileged_host), "%s",
	    st->privileged_roster ? gw->bridge->privileged_host : "");
	st->roster_refused = gw->bridge->roster_refused;
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
		user_publish(br, u);
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
		user_publish(br, u);
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
			resource_free(LIST_FIRST(&u->resources));
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
			br_send(gw, br_stanza("presence", "probe", c->jid, u->jid));
	}
	LIST_FOREACH(c, &br->contacts, entry)
		if (c->available)
			contact_presence_send(br, c, NULL);
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

/* ---- stanzas from the server ---- */

/* A subscription change from the user toward a contact JID. */
static void
user_subscription(struct gw *gw, struct br_user *u, struct br_contact *c,
    const char *type, xmpp_stanza_t *st)
{
	struct prov_result r = { .msg = "not a Barev address" };
	const char *to = xmpp_stanza_get_to(st);
	char *node = br_node(to);
	int added = 0;

	if (strcmp(type, "subscribe") == 0) {
		if (c == NULL && node != NULL) {
			struct gw_baddr a;
			char text[GW_NICK_MAX + GW_ADDR_TEXT + 16];

			/* the roster is the allowlist: subscribing adds the peer */
			if (gw_baddr_from_localpart(node, &a) == 0 &&
			    gw_baddr_format(&a, text, sizeof(text)) == 0 &&
			    prov_contact_add(gw, u->jid, text, NULL, &r) == 0)
				added = (c = br_contact_for(u, to)) != NULL;
			if (c == NULL) {
				log_info("bridge", "%s subscribed to %s: %s", u->jid,
				    to, r.msg);
				br_send(gw, br_stanza("presence", "unsubscribed", to, u->jid));
				goto out;
			}
		}
		if (c == NULL)
			goto out;
		br_send(gw, br_stanza("presence", "subscribed", c->jid, u->jid));
		/* a new contact's presence went out with it (bridge_contact_added) */
		if (!added)
			contact_presence_send(gw->bridge, c, NULL);
	} else if (strcmp(type, "unsubscribe") == 0 || strcmp(type, "unsubscribed") == 0) {
		if (c == NULL)
			goto out;
		char text[GW_NICK_MAX + GW_ADDR_TEXT + 16];
		struct gw_baddr a;

		gw_baddr_set(&a, c->nick, c->address, c->port);
		gw_baddr_format(&a, text, sizeof(text));
		if (prov_contact_remove(gw, u->jid, text, &r) == -1)
			log_warn("bridge", "%s unsubscribed from %s: %s", u->jid, text, r.msg);
	} else if (strcmp(type, "subscribed") == 0 && c != NULL) {
		/* she approved our request (no XEP-0356 push): her presence
		 * can be asked for now, and the contact's shown */
		br_send(gw, br_stanza("presence", "probe", c->jid, u->jid));
		contact_presence_send(gw->bridge, c, NULL);
	}
out:
	if (node != NULL)
		xmpp_free(xs_ctx(), node);
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
	if ((u = br_user_by_jid(br, from)) == NULL) {
		/* no identity: a subscription attempt deserves an explanation */
		if (type && strcmp(type, "subscribe") == 0 && strchr(to, '@'))
			br_error_reply(gw, st, "auth", "registration-required",
			    "You have no Barev identity on this gateway yet; ask an"
			    " administrator for one (or send 'help' to the gateway).");
		goto done;
	}
	/* the user's own presence, which the server copies to each of her
	 * contact JIDs, does not name a contact: looked up only when used */
	if (type == NULL || strcmp(type, "unavailable") == 0) {
		user_presence(br, u, st, type == NULL);
	} else if (strcmp(type, "probe") == 0) {
		if (strchr(to, '@') && (c = br_contact_for(u, to)) != NULL)
			contact_presence_send(br, c, xmpp_stanza_get_from(st));
	} else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0 ||
	    strcmp(type, "subscribed") == 0 || strcmp(type, "unsubscribed") == 0) {
		if (strchr(to, '@'))
			user_subscription(gw, u, br_contact_for(u, to), type, st);
	}
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

void
bridge_to_user(struct gw *gw, int64_t contact, xmpp_stanza_t *st)
{
	struct bridge *br = gw->bridge;

	if (br == NULL) {
		xmpp_stanza_release(st);
		return;
	}
	relay_to_user(br, br_contact_by_id(br, contact), st, 1);
}

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

/* XEP-0100 §6.3 on the gateway's JID: what the user typed becomes a
 * contact JID (get: the prompt; set: the JID) */
static int
gateway_prompt(struct gw *gw, xmpp_stanza_t *st, xmpp_stanza_t *q,
    const char *type)
{
	xmpp_stanza_t *reply = gw_iq_result(st), *res, *el;
	char *typed;
	struct gw_baddr a;
	char err[256], jid[STORE_JID_MAX];

	res = br_stanza("query", NULL, NULL, NULL);
	if (reply == NULL || res == NULL)
		goto oom;
	xmpp_stanza_set_ns(res, NS_GATEWAY);
	if (strcmp(type, "get") == 0) {
		br_add_text_child(res, "desc", NULL, "Enter the Barev address"
		    " of your contact: nick@ADDRESS or nick@[ADDRESS]:PORT");
		br_add_text_child(res, "prompt", NULL, NULL);
	} else {
		typed = (el = xmpp_stanza_get_child_by_name(q, "prompt")) ?
		    xmpp_stanza_get_text(el) : NULL;
		if (typed == NULL || gw_baddr_parse(typed, &a, err, sizeof(err)) == -1) {
			br_error_reply(gw, st, "modify", "bad-request",
			    typed ? err : "Give a Barev address");
			free(typed);
			xmpp_stanza_release(res);
			xmpp_stanza_release(reply);
			return 1;
		}
		free(typed);
		if (gw_baddr_to_jid(&a, gw->cfg.component_jid, jid, sizeof(jid)) == 0)
			br_add_text_child(res, "jid", NULL, jid);
	}
	xmpp_stanza_add_child_ex(reply, res, 0);
	br_send(gw, reply);
	return 1;
oom:
	if (res)
		xmpp_stanza_release(res);
	if (reply)
		xmpp_stanza_release(reply);
	br_error_reply(gw, st, "wait", "internal-server-error",
	    "The gateway is out of memory.");
	return 1;
}

/* What a contact JID answers itself (translate.c builds it): disco#info,
 * vCard with the avatar, ping; PEP reads for OMEMO keys (pep.c). */
static int
contact_iq(struct gw *gw, struct br_contact *c, xmpp_stanza_t *st,
    const char *ns, const char *type)
{
	xmpp_stanza_t *reply, *res = NULL;
	const char *const *passed;
	size_t n;

	if (strcmp(ns, NS_PUBSUB) == 0)
		return pep_user_iq(gw->bridge, c, st);	/* OMEMO keys */
	if (strcmp(ns, NS_DISCO_INFO) == 0 && strcmp(type, "get") == 0) {
		passed = peercaps_passed(c, &n);
		if ((res = tr_contact_disco(c->nick, passed, n)) == NULL)
			goto oom;
	} else if (strcmp(ns, "vcard-temp") == 0 && strcmp(type, "get") == 0) {
		if ((res = tr_contact_vcard(c->nick, c->name)) == NULL)
			goto oom;
		avatar_contact_vcard(gw, c->id, res);
	} else if (strcmp(ns, "urn:xmpp:ping") != 0) {
		br_error_reply(gw, st, "cancel", "service-unavailable", NULL);
		return 1;
	}	/* a ping is answered for the peer: the gateway is reachable */
	if ((reply = gw_iq_result(st)) == NULL)
		goto oom;
	if (res)
		xmpp_stanza_add_child_ex(reply, res, 0);
	br_send(gw, reply);
	return 1;
oom:
	if (res)
		xmpp_stanza_release(res);
	br_error_reply(gw, st, "wait", "internal-server-error",
	    "The gateway is out of memory.");
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
		contact_presence_send(br, c, NULL);
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
		peer_presence(br, c, st);
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

/* ---- for the avatar module: something users or peers see changed ---- */

void
bridge_contact_presence_refresh(struct gw *gw, int64_t contact)
{
	struct br_contact *c = gw->bridge ? br_contact_by_id(gw->bridge, contact) : NULL;

	if (c && c->available)
		contact_presence_send(gw->bridge, c, NULL);
}

void
bridge_identity_presence_refresh(struct gw *gw, int64_t ident)
{
	struct br_user *u = gw->bridge ? br_user_by_ident(gw->bridge, ident) : NULL;

	if (u)
		user_publish(gw->bridge, u);
}
