/*
 * registry — the bridge's users and contacts in memory: loaded from the
 * store at start, changed by provisioning as it commits, and found by
 * every stanza and Barev event through tsearch(3) indexes (by identity,
 * by user JID, by contact id, by identity + nick + address), so no event
 * walks a list (issue 13).
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

/* (identity, bare JID without case): a key may carry a /resource */
static int
cmp_contact_jid(const void *a, const void *b)
{
	const struct br_contact *x = a, *y = b;
	size_t lx, ly;
	int d;

	if (x->ident != y->ident)
		return x->ident < y->ident ? -1 : 1;
	lx = strcspn(x->jid, "/");
	ly = strcspn(y->jid, "/");
	if ((d = strncasecmp(x->jid, y->jid, lx < ly ? lx : ly)) != 0)
		return d;
	return (lx > ly) - (lx < ly);
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
	struct br_contact key, *c;
	struct gw_baddr a;

	if (to == NULL)
		return NULL;
	/* the JID as the gateway wrote it: no parsing */
	key.ident = u->ident;
	key.jid = (char *)to;
	if ((c = found(tfind(&key, &u->br->contacts_by_jid, cmp_contact_jid))) != NULL)
		return c;
	/* any other spelling of a contact's address (case, zeros, escapes) */
	if (gw_baddr_from_jid(to, &a) == -1)
		return NULL;
	/* contacts of one user only: her identity is part of the key */
	return br_contact_by_addr(u->br, u->ident, a.nick, a.addr);
}

/* ---- contacts and users in memory ---- */

/* in the JID index, when its JID fit; without memory for it, it is
 * found by parsing its JID instead, as before the index */
static void
jid_index_add(struct bridge *br, struct br_contact *c)
{
	if (c->jid[0] != '\0' &&
	    tsearch(c, &br->contacts_by_jid, cmp_contact_jid) == NULL)
		log_warn("bridge", "contact %s@%s: no memory for its JID index",
		    c->nick, c->address);
}

static void
jid_index_remove(struct bridge *br, struct br_contact *c)
{
	if (c->jid != NULL && c->jid[0] != '\0' &&
	    found(tfind(c, &br->contacts_by_jid, cmp_contact_jid)) == c)
		tdelete(c, &br->contacts_by_jid, cmp_contact_jid);
}

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
	br_user_publish(br, u);
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
	if (gw_contact_jid(sc->nick, sc->address, sc->port,
	    br->gw->cfg.component_jid, jid, sizeof(jid)) == -1)
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
		jid_index_add(br, c);
	} else {
		/* re-keyed: out of the indexes while its keys change */
		jid_index_remove(br, c);
		tdelete(c, &br->contacts_by_addr, cmp_contact_addr);
		if (contact_strings(br, c, sc) == -1)
			log_error("bridge", "contact %s@%s keeps its old names",
			    sc->nick, sc->address);
		if (tsearch(c, &br->contacts_by_addr, cmp_contact_addr) == NULL)
			log_error("bridge", "contact %s@%s: out of memory for its"
			    " index; messages to it are refused", sc->nick,
			    sc->address);
		else
			jid_index_add(br, c);
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

void
br_contact_free(struct bridge *br, struct br_contact *c)
{
	relay_contact_forget(br, c);
	peercaps_forget(c);
	avatar_forget_contact(br->gw, c->id);
	transfer_forget_contact(br->gw, c->id);
	tdelete(c, &br->contacts_by_id, cmp_contact_id);
	jid_index_remove(br, c);
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
void
br_user_free(struct bridge *br, struct br_user *u)
{
	while (!LIST_EMPTY(&u->resources))
		br_resource_free(LIST_FIRST(&u->resources));
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

/* everyone in the store, at start */
int
br_registry_load(struct bridge *br)
{
	if (store_identity_foreach(br->gw->store, load_identity, br) != STORE_OK ||
	    store_contact_foreach(br->gw->store, 0, load_contact, br) != STORE_OK)
		return -1;
	return 0;
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
		gw_send_release(gw, br_stanza("presence", "probe", c->jid, u->jid));
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
		br_contact_free(gw->bridge, c);
	bl_identity_remove(gw->bl, id->id);
	avatar_forget_identity(gw, id->id);
	br_user_free(gw->bridge, u);
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
	br_contact_presence_send(gw->bridge, c, NULL);
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
	br_contact_presence_send(gw->bridge, c, NULL);
	roster_contact(gw->bridge, c, 1, 0);
	bl_contact_remove(gw->bl, c->id);
	br_contact_free(gw->bridge, c);
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

