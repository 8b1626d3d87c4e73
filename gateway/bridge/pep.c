/*
 * pep — OMEMO keys between two gateways (XEP-0384 over a Barev pipe).
 *
 * OMEMO needs nothing from the gateway but two things: the encrypted
 * message passes untouched (passthru.c allows its namespaces), and each
 * side can read the other's device list and bundles, which a client reads
 * from its contact's PEP nodes.  A contact JID on the component has no PEP
 * of its own, so for a contact whose peer is another barev-gateway this
 * file answers those reads by asking across the pipe:
 *
 *   alice's client --items get--> contact bob%40…@barev.a      (side A)
 *   gateway A ----iq get pep-N---> gateway B                   (the pipe)
 *   gateway B --items get, from alice%40…@barev.b--> bob@b     (side B)
 *   … and the answer back the same way, checked at every step.
 *
 * Only the OMEMO nodes (both versions' device lists and bundles) are asked
 * for, only `items` reads, and only OMEMO, pubsub and pubsub#event
 * elements come back, bounded in depth and count: the other gateway is a
 * stranger's program.  Bob's client must publish with open access (what
 * Conversations, Gajim and Dino do by default), so his server answers the
 * contact JID that asks.  A device-list read also subscribes that contact
 * JID to the node, so the `+notify` events bob's server sends it when he
 * adds a device cross the pipe as headlines and reach alice from bob's
 * contact JID, the way PEP events from a real contact do.
 *
 * A Barev peer (purple, pascal) has no OMEMO: its contact JID answers
 * item-not-found at once and the peer never sees a pubsub stanza.
 */
#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "barevlink.h"
#include "bridge_int.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "xmlstream.h"

#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define NS_OLD "eu.siacs.conversations.axolotl"
#define NS_TWO "urn:xmpp:omemo:2"
#define OLD_DEVICES NS_OLD ".devicelist"
#define OLD_BUNDLES NS_OLD ".bundles:"
#define TWO_DEVICES NS_TWO ":devices"
#define TWO_BUNDLES NS_TWO ":bundles"

#define ID_PREFIX "pep-"
#define WAIT_MS 20000		/* alice waits for gateway B this long */
#define ASK_MS 15000		/* ... which waits for bob's server this long */
#define INFLIGHT_MAX 16		/* reads per contact each way */
#define DEPTH_MAX 8		/* pubsub/items/item/bundle/prekeys/pk = 6 */
#define ELEMENTS_MAX 512	/* a bundle has ~100 pre-keys */
#define ITEM_IDS_MAX 8		/* item ids named in one read */

/* alice's read, waiting for gateway B's answer */
struct pep_wait {
	LIST_ENTRY(pep_wait) entry;
	struct pep *pep;
	int64_t contact;
	uint64_t n;		/* its id on the pipe: ID_PREFIX n */
	char *user_full;	/* who asked (her full JID) */
	char *user_id;		/* ... and her iq's id */
	char *contact_jid;	/* whom she asked */
	struct event *timer;
};

struct pep {
	struct bridge *br;
	LIST_HEAD(, pep_wait) waits;
	void *by_n;		/* tsearch(3) tree of the waits by n: answers */
	uint64_t next;
};

/* gateway B's read for the peer, waiting for its user's server */
struct pep_ask {
	int64_t contact;
	char *peer_id;		/* the peer's iq id, echoed */
};

/* ---- what may cross ---- */

/* 0 none, 1 a device list (old), 2 a device list (omemo:2), 3 bundles */
static int
node_kind(const char *node)
{
	const char *p;

	if (node == NULL)
		return 0;
	if (strcmp(node, OLD_DEVICES) == 0)
		return 1;
	if (strcmp(node, TWO_DEVICES) == 0)
		return 2;
	if (strcmp(node, TWO_BUNDLES) == 0)
		return 3;
	if (strncmp(node, OLD_BUNDLES, strlen(OLD_BUNDLES)) != 0)
		return 0;
	p = node + strlen(OLD_BUNDLES);
	if (*p == '\0' || strlen(p) > 10 || strspn(p, "0123456789") != strlen(p))
		return 0;
	return 3;
}

static int
ns_ok(const char *ns)
{
	return ns == NULL || strcmp(ns, NS_PUBSUB) == 0 ||
	    strcmp(ns, NS_PUBSUB_EVENT) == 0 || strcmp(ns, NS_OLD) == 0 ||
	    strcmp(ns, NS_TWO) == 0;
}

/* every element's namespace allowed, within depth and count */
static int
tree_ok(xmpp_stanza_t *el, int depth, size_t *count)
{
	xmpp_stanza_t *ch;

	if (depth > DEPTH_MAX || ++*count > ELEMENTS_MAX ||
	    !ns_ok(xmpp_stanza_get_ns(el)))
		return 0;
	for (ch = xmpp_stanza_get_children(el); ch; ch = xmpp_stanza_get_next(ch))
		if (xmpp_stanza_is_tag(ch) && !tree_ok(ch, depth + 1, count))
			return 0;
	return 1;
}

/* items of an OMEMO node, to pass on: `wrap` (pubsub or pubsub#event)
 * holds one <items node=…> and nothing else worth keeping.  A copy of
 * wrap without the items' `publisher` (a JID of the far side), or NULL. */
static xmpp_stanza_t *
omemo_items(xmpp_stanza_t *wrap)
{
	xmpp_stanza_t *items, *cp, *it;
	size_t count = 0;

	if (wrap == NULL || !tree_ok(wrap, 1, &count))
		return NULL;
	items = xmpp_stanza_get_child_by_name(wrap, "items");
	if (items == NULL ||
	    node_kind(xmpp_stanza_get_attribute(items, "node")) == 0)
		return NULL;
	if ((cp = xmpp_stanza_copy(wrap)) == NULL)
		return NULL;
	items = xmpp_stanza_get_child_by_name(cp, "items");
	for (it = xmpp_stanza_get_children(items); it; it = xmpp_stanza_get_next(it))
		if (xmpp_stanza_is_tag(it))
			xmpp_stanza_del_attribute(it, "publisher");
	return cp;
}

/*
 * A read as it goes on: <pubsub><items node [max_items]><item id/>…
 * rebuilt from what was asked (nothing else of it passes); NULL if it is
 * not an items read of an OMEMO node.  *kind: node_kind().
 */
static xmpp_stanza_t *
read_request(xmpp_stanza_t *pubsub, int *kind)
{
	xmpp_stanza_t *items, *ps, *out, *it, *el;
	const char *node, *max, *id;
	size_t n = 0;

	items = xmpp_stanza_get_child_by_name(pubsub, "items");
	node = items ? xmpp_stanza_get_attribute(items, "node") : NULL;
	if ((*kind = node_kind(node)) == 0)
		return NULL;
	if ((ps = xs_stanza("pubsub", NULL, NULL, NULL)) == NULL)
		return NULL;
	xmpp_stanza_set_ns(ps, NS_PUBSUB);
	if ((out = xs_add_child(ps, "items", NULL)) == NULL) {
		xmpp_stanza_release(ps);
		return NULL;
	}
	xmpp_stanza_set_attribute(out, "node", node);
	max = xmpp_stanza_get_attribute(items, "max_items");
	if (max && *max && strlen(max) < 6 && strspn(max, "0123456789") == strlen(max))
		xmpp_stanza_set_attribute(out, "max_items", max);
	for (it = xmpp_stanza_get_children(items); it && n < ITEM_IDS_MAX;
	    it = xmpp_stanza_get_next(it)) {
		const char *name = xmpp_stanza_get_name(it);

		if (!xmpp_stanza_is_tag(it) || name == NULL ||
		    strcmp(name, "item") != 0 ||
		    (id = xmpp_stanza_get_attribute(it, "id")) == NULL ||
		    strlen(id) > 64 || (el = xs_add_child(out, "item", NULL)) == NULL)
			continue;
		xmpp_stanza_set_attribute(el, "id", id);
		n++;
	}
	return ps;
}

/* an error's condition and type, from a small known set */
static void
error_of(xmpp_stanza_t *iq, const char **type, const char **cond)
{
	static const char *const conds[] = {
		"item-not-found", "forbidden", "not-authorized",
		"feature-not-implemented", "service-unavailable",
		"remote-server-timeout", "internal-server-error",
		"resource-constraint", "recipient-unavailable", "not-allowed",
	};
	static const char *const types[] = { "cancel", "wait", "modify", "auth" };
	xmpp_stanza_t *err = iq ? xmpp_stanza_get_child_by_name(iq, "error") : NULL;
	xmpp_stanza_t *ch;
	const char *t = err ? xmpp_stanza_get_attribute(err, "type") : NULL;

	*type = "cancel";
	*cond = "undefined-condition";
	for (size_t i = 0; t && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i]) == 0)
			*type = types[i];
	for (ch = err ? xmpp_stanza_get_children(err) : NULL; ch;
	    ch = xmpp_stanza_get_next(ch)) {
		const char *name = xmpp_stanza_get_name(ch);

		if (!xmpp_stanza_is_tag(ch) || name == NULL)
			continue;
		for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++)
			if (strcmp(name, conds[i]) == 0) {
				*cond = conds[i];
				return;
			}
	}
}

/* ---- side A: the user's read of a contact JID ---- */

static int
wait_cmp(const void *a, const void *b)
{
	const struct pep_wait *x = a, *y = b;

	return x->n < y->n ? -1 : x->n > y->n;
}

static void
wait_free(struct pep_wait *w)
{
	struct br_contact *c = br_contact_by_id(w->pep->br, w->contact);

	if (c && c->pep_waiting > 0)
		c->pep_waiting--;
	LIST_REMOVE(w, entry);
	tdelete(w, &w->pep->by_n, wait_cmp);
	if (w->timer)
		event_free(w->timer);
	free(w->user_full);
	free(w->user_id);
	free(w->contact_jid);
	free(w);
}

/* an error to the user's read, as if answered from the contact JID */
static void
wait_error(struct pep_wait *w, const char *type, const char *cond,
    const char *text)
{
	xmpp_stanza_t *req = xs_stanza("iq", "get", w->user_full, w->contact_jid);

	if (req == NULL)
		return;
	xmpp_stanza_set_id(req, w->user_id);
	br_error_reply(w->pep->br->gw, req, type, cond, text);
	xmpp_stanza_release(req);
}

static void
wait_expired(evutil_socket_t fd, short what, void *arg)
{
	struct pep_wait *w = arg;

	(void)fd;
	(void)what;
	log_info("pep", "%s: no OMEMO keys from %s's gateway in time",
	    w->user_full, w->contact_jid);
	wait_error(w, "wait", "remote-server-timeout",
	    "The contact's gateway did not answer in time.");
	wait_free(w);
}

static struct pep_wait *
wait_new(struct pep *pep, struct br_contact *c, xmpp_stanza_t *st)
{
	struct pep_wait *w;
	struct timeval tv = { WAIT_MS / 1000, (WAIT_MS % 1000) * 1000 };

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->pep = pep;
	w->contact = c->id;
	w->n = ++pep->next;
	w->user_full = strdup(xmpp_stanza_get_from(st));
	w->user_id = strdup(xmpp_stanza_get_id(st) ? xmpp_stanza_get_id(st) : "");
	w->contact_jid = strdup(xmpp_stanza_get_to(st));
	LIST_INSERT_HEAD(&pep->waits, w, entry);
	c->pep_waiting++;
	if (tsearch(w, &pep->by_n, wait_cmp) == NULL || w->user_full == NULL ||
	    w->user_id == NULL || w->contact_jid == NULL ||
	    (w->timer = evtimer_new(pep->br->gw->base, wait_expired, w)) == NULL ||
	    evtimer_add(w->timer, &tv) == -1) {
		wait_free(w);
		return NULL;
	}
	return w;
}

/* our read of the contact's keys, over the pipe */
static int
ask_peer(struct bridge *br, struct br_contact *c, struct pep_wait *w,
    xmpp_stanza_t *req)
{
	xmpp_stanza_t *iq = xs_stanza("iq", "get", NULL, NULL);
	char id[32];
	int rc;

	if (iq == NULL)
		return -1;
	snprintf(id, sizeof(id), ID_PREFIX "%" PRIu64, w->n);
	xmpp_stanza_set_id(iq, id);
	xmpp_stanza_add_child(iq, req);
	rc = bl_send_stanza(br->gw->bl, c->id, iq, 0);
	xmpp_stanza_release(iq);
	return rc;
}

/* A pubsub iq from a user to a contact JID: 1 when handled (always). */
int
pep_user_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	xmpp_stanza_t *ps = xmpp_stanza_get_child_by_name_and_ns(st, "pubsub",
	    NS_PUBSUB), *req;
	const char *type = xmpp_stanza_get_type(st);
	struct pep_wait *w;
	int kind;

	if (ps == NULL || type == NULL || strcmp(type, "get") != 0 ||
	    (req = read_request(ps, &kind)) == NULL) {
		br_error_reply(br->gw, st, "cancel", "feature-not-implemented",
		    "A Barev contact has only OMEMO keys to read, and only when"
		    " it is a user of another gateway.");
		return 1;
	}
	if (!c->peer_gateway) {
		xmpp_stanza_release(req);
		if (c->was_gateway && !c->pipe_up)
			br_error_reply(br->gw, st, "wait", "recipient-unavailable",
			    "The contact's gateway is not connected now.");
		else
			br_error_reply(br->gw, st, "cancel", "item-not-found",
			    "This Barev contact has no OMEMO keys.");
		return 1;
	}
	if (c->pep_waiting >= INFLIGHT_MAX) {
		xmpp_stanza_release(req);
		br_error_reply(br->gw, st, "wait", "resource-constraint",
		    "Too many key requests to this contact at once.");
		return 1;
	}
	if ((w = wait_new(br->pep, c, st)) == NULL) {
		xmpp_stanza_release(req);
		br_error_reply(br->gw, st, "wait", "internal-server-error",
		    "The gateway is out of memory.");
		return 1;
	}
	if (ask_peer(br, c, w, req) == -1) {
		wait_error(w, "wait", "recipient-unavailable",
		    "The contact's gateway is not connected now.");
		wait_free(w);
	}
	xmpp_stanza_release(req);
	return 1;
}

static struct pep_wait *
wait_find(struct pep *pep, int64_t contact, const char *id)
{
	struct pep_wait key, *w;
	void **p;
	char *end;

	if (id == NULL || strncmp(id, ID_PREFIX, strlen(ID_PREFIX)) != 0)
		return NULL;
	key.n = strtoull(id + strlen(ID_PREFIX), &end, 10);
	if (*end != '\0' || (p = tfind(&key, &pep->by_n, wait_cmp)) == NULL)
		return NULL;
	w = *p;
	return w->contact == contact ? w : NULL;
}

/* gateway B's answer to our read: to the user who asked */
static void
peer_answer(struct bridge *br, struct pep_wait *w, xmpp_stanza_t *st,
    const char *type)
{
	xmpp_stanza_t *res, *ps;
	const char *etype, *cond;

	if (strcmp(type, "result") != 0) {
		error_of(st, &etype, &cond);
		wait_error(w, etype, cond, NULL);
		return;
	}
	ps = omemo_items(xmpp_stanza_get_child_by_name_and_ns(st, "pubsub",
	    NS_PUBSUB));
	if (ps == NULL) {
		log_info("pep", "%s's gateway answered a key request with something"
		    " that is not OMEMO keys; refused", w->contact_jid);
		wait_error(w, "cancel", "undefined-condition",
		    "The contact's gateway answered with something else.");
		return;
	}
	if ((res = xs_stanza("iq", "result", w->contact_jid, w->user_full)) == NULL) {
		xmpp_stanza_release(ps);
		return;
	}
	xmpp_stanza_set_id(res, w->user_id);
	xmpp_stanza_add_child_ex(res, ps, 0);
	gw_send_release(br->gw, res);
}

/* ---- side B: the peer gateway's read of our user's keys ---- */

/* <iq type='error'><error type><COND/></error></iq>: the condition only,
 * never the text of our user's server, goes back over the pipe */
static xmpp_stanza_t *
pipe_error(const char *type, const char *cond)
{
	xmpp_stanza_t *iq = xs_stanza("iq", "error", NULL, NULL), *err;

	if (iq == NULL)
		return NULL;
	if ((err = xs_add_child(iq, "error", NULL)) == NULL ||
	    xs_add_child(err, cond, NS_STANZAS) == NULL) {
		xmpp_stanza_release(iq);
		return NULL;
	}
	xmpp_stanza_set_attribute(err, "type", type);
	return iq;
}

static void
ask_done(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	struct pep_ask *a = arg;
	struct br_contact *c = gw->bridge ? br_contact_by_id(gw->bridge, a->contact)
	    : NULL;
	xmpp_stanza_t *out = NULL, *ps;
	const char *type = reply ? xmpp_stanza_get_type(reply) : NULL;
	const char *etype = "wait", *cond = "remote-server-timeout";

	if (c && c->pep_asking > 0)
		c->pep_asking--;
	if (c == NULL || !c->pipe_up || gw->bridge->stopping)
		goto done;
	if (type && strcmp(type, "result") == 0 &&
	    (ps = omemo_items(xmpp_stanza_get_child_by_name_and_ns(reply,
	    "pubsub", NS_PUBSUB))) != NULL) {
		if ((out = xs_stanza("iq", "result", NULL, NULL)) != NULL)
			xmpp_stanza_add_child_ex(out, ps, 0);
		else
			xmpp_stanza_release(ps);
	} else {
		if (reply)
			error_of(reply, &etype, &cond);
		if (type && strcmp(type, "result") == 0) {
			etype = "cancel";
			cond = "item-not-found";	/* nothing OMEMO in it */
		}
		out = pipe_error(etype, cond);
	}
	if (out != NULL) {
		xmpp_stanza_set_id(out, a->peer_id);
		bl_send_stanza(gw->bl, c->id, out, 0);
		xmpp_stanza_release(out);
	}
done:
	free(a->peer_id);
	free(a);
}

/* subscribe the contact JID to the user's device list: her server's
 * events for it cross the pipe (pep_user_message) */
static void
subscribed(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	char buf[256];

	(void)arg;
	if (reply && strcmp(xmpp_stanza_get_type(reply), "result") != 0)
		log_info("pep", "a device-list subscription was refused: %s",
		    gw_iq_error_text(reply, buf, sizeof(buf)));
	(void)gw;
}

static void
subscribe(struct bridge *br, struct br_contact *c, const char *node,
    unsigned bit)
{
	xmpp_stanza_t *iq, *ps, *sub;

	if (c->pep_subscribed & bit)
		return;
	if ((iq = xs_stanza("iq", "set", c->jid, c->user->jid)) == NULL)
		return;
	if ((ps = xs_add_child(iq, "pubsub", NS_PUBSUB)) == NULL ||
	    (sub = xs_add_child(ps, "subscribe", NULL)) == NULL) {
		xmpp_stanza_release(iq);
		return;
	}
	xmpp_stanza_set_attribute(sub, "node", node);
	xmpp_stanza_set_attribute(sub, "jid", c->jid);
	if (gw_iq_request(br->gw, iq, GW_IQ_PEP, ASK_MS, subscribed, NULL) == 0)
		c->pep_subscribed |= bit;
	xmpp_stanza_release(iq);
}

/* the peer's read: asked of our user's account, from the contact JID */
static void
peer_read(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st,
    int get)
{
	xmpp_stanza_t *ps = xmpp_stanza_get_child_by_name_and_ns(st, "pubsub",
	    NS_PUBSUB), *req = NULL, *iq = NULL, *err;
	struct pep_ask *a = NULL;
	const char *id = xmpp_stanza_get_id(st), *cond = "feature-not-implemented";
	const char *etype = "cancel";
	int kind = 0;

	if (!get || ps == NULL || (req = read_request(ps, &kind)) == NULL)
		goto refuse;
	etype = "wait";
	cond = "resource-constraint";
	if (c->pep_asking >= INFLIGHT_MAX)
		goto refuse;
	cond = "internal-server-error";
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->peer_id = strdup(id ? id : "")) == NULL ||
	    (iq = xs_stanza("iq", "get", c->jid, c->user->jid)) == NULL)
		goto refuse;
	a->contact = c->id;
	xmpp_stanza_add_child_ex(iq, req, 0);
	req = NULL;
	if (gw_iq_request(br->gw, iq, GW_IQ_PEP, ASK_MS, ask_done, a) == -1)
		goto refuse;
	c->pep_asking++;
	xmpp_stanza_release(iq);
	if (kind == 1)
		subscribe(br, c, OLD_DEVICES, 1);
	else if (kind == 2)
		subscribe(br, c, TWO_DEVICES, 2);
	return;
refuse:
	if (a) {
		free(a->peer_id);
		free(a);
	}
	if (iq)
		xmpp_stanza_release(iq);
	if (req)
		xmpp_stanza_release(req);
	if ((err = pipe_error(etype, cond)) != NULL) {
		xmpp_stanza_set_id(err, id ? id : "");
		bl_send_stanza(br->gw->bl, c->id, err, 0);
		xmpp_stanza_release(err);
	}
}

/* An iq from the peer: 1 when it was a key read or an answer to ours. */
int
pep_peer_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	const char *type = xmpp_stanza_get_type(st);
	struct pep_wait *w;

	if (!c->peer_gateway || type == NULL || br->pep == NULL)
		return 0;
	if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
		if (xmpp_stanza_get_child_by_name_and_ns(st, "pubsub", NS_PUBSUB) == NULL)
			return 0;
		peer_read(br, c, st, strcmp(type, "get") == 0);
		return 1;
	}
	if ((w = wait_find(br->pep, c->id, xmpp_stanza_get_id(st))) == NULL)
		return 0;
	peer_answer(br, w, st, type);
	wait_free(w);
	return 1;
}

/* ---- +notify: device-list events ---- */

static xmpp_stanza_t *
event_of(xmpp_stanza_t *msg)
{
	return xmpp_stanza_get_child_by_name_and_ns(msg, "event", NS_PUBSUB_EVENT);
}

/* A message from the user's server to a contact JID: 1 if it was a PEP
 * event (never a message for a Barev peer); an OMEMO node's event goes to
 * a gateway peer as a headline. */
int
pep_user_message(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	xmpp_stanza_t *ev = event_of(st), *cp, *out;

	if (ev == NULL)
		return 0;
	if (!c->peer_gateway || (cp = omemo_items(ev)) == NULL)
		return 1;
	if ((out = xs_stanza("message", "headline", NULL, NULL)) == NULL) {
		xmpp_stanza_release(cp);
		return 1;
	}
	xmpp_stanza_add_child_ex(out, cp, 0);
	bl_send_stanza(br->gw->bl, c->id, out, 0);
	xmpp_stanza_release(out);
	return 1;
}

/* A message from a gateway peer: 1 if it was a PEP event, delivered to
 * the user from the contact's bare JID (transient, like PEP itself). */
int
pep_peer_message(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st)
{
	xmpp_stanza_t *ev = event_of(st), *cp, *out;

	if (ev == NULL || !c->peer_gateway)
		return 0;
	if ((cp = omemo_items(ev)) == NULL) {
		log_debug("pep", "dropped an event from %s@%s that is not OMEMO"
		    " keys", c->nick, c->address);
		return 1;
	}
	if ((out = xs_stanza("message", "headline", c->jid, c->user->jid)) == NULL) {
		xmpp_stanza_release(cp);
		return 1;
	}
	xmpp_stanza_add_child_ex(out, cp, 0);
	relay_to_user(br, c, out, 0);
	return 1;
}

/* ---- life cycle ---- */

/* the pipe is gone: reads waiting on it are answered now */
void
pep_pipe_down(struct bridge *br, struct br_contact *c)
{
	struct pep_wait *w, *next;

	c->pep_subscribed = 0;
	if (br->pep == NULL || c->pep_waiting == 0)
		return;
	for (w = LIST_FIRST(&br->pep->waits); w; w = next) {
		next = LIST_NEXT(w, entry);
		if (w->contact != c->id)
			continue;
		wait_error(w, "wait", "recipient-unavailable",
		    "The contact's gateway went away before it answered.");
		wait_free(w);
	}
}

int
pep_start(struct bridge *br)
{
	if ((br->pep = calloc(1, sizeof(*br->pep))) == NULL)
		return -1;
	br->pep->br = br;
	LIST_INIT(&br->pep->waits);
	return 0;
}

void
pep_stop(struct bridge *br)
{
	if (br->pep == NULL)
		return;
	while (!LIST_EMPTY(&br->pep->waits))
		wait_free(LIST_FIRST(&br->pep->waits));
	free(br->pep);
	br->pep = NULL;
}
