/*
 * translate — presence, messages, chat states and roster items across the
 * bridge as pure functions (translate.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate.h"
#include "xmlstream.h"

#define NS_VCARD_UPDATE "vcard-temp:x:update"
#define NS_HINTS "urn:xmpp:hints"
#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_ROSTER "jabber:iq:roster"
#define NS_NICK "http://jabber.org/protocol/nick"

enum tr_show
tr_show_parse(const char *text)
{
	static const struct { const char *text; enum tr_show show; } map[] = {
		{ "chat", TR_SHOW_CHAT }, { "away", TR_SHOW_AWAY },
		{ "xa", TR_SHOW_XA }, { "dnd", TR_SHOW_DND },
	};

	for (size_t i = 0; text != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(text, map[i].text) == 0)
			return map[i].show;
	return TR_SHOW_NONE;
}

/* most available first */
static int
show_rank(enum tr_show show)
{
	switch (show) {
	case TR_SHOW_CHAT: return 5;
	case TR_SHOW_NONE: return 4;
	case TR_SHOW_AWAY: return 3;
	case TR_SHOW_XA: return 2;
	default: return 1;
	}
}

int
tr_resource_wins(const struct tr_resource *a, const struct tr_resource *b)
{
	if (b == NULL || a->priority != b->priority)
		return b == NULL || a->priority > b->priority;
	return show_rank(a->show) > show_rank(b->show);
}

const char *
tr_show_to_barev(enum tr_show show)
{
	switch (show) {
	case TR_SHOW_AWAY:
	case TR_SHOW_XA:
		return "away";
	case TR_SHOW_DND:
		return "dnd";
	default:
		return NULL;
	}
}

/*
 * The text of st's first child `name` (malloc'd by libstrophe's default
 * allocator: free() it), NULL when absent or empty.  libstrophe answers
 * NULL for "no text" and for "no memory" alike: both read as no text.
 */
static char *
child_text(xmpp_stanza_t *st, const char *name)
{
	xmpp_stanza_t *el = st ? xmpp_stanza_get_child_by_name(st, name) : NULL;

	return el ? xmpp_stanza_get_text(el) : NULL;
}

void
tr_peer_presence_read(xmpp_stanza_t *st, struct tr_peer_presence *out)
{
	const char *type = xmpp_stanza_get_type(st);
	xmpp_stanza_t *x;
	char *show = NULL;

	memset(out, 0, sizeof(*out));
	if (type != NULL && strcmp(type, "error") == 0) {
		out->ignore = 1;
		return;
	}
	out->available = type == NULL || strcmp(type, "unavailable") != 0;
	show = child_text(st, "show");
	out->status = child_text(st, "status");
	x = xmpp_stanza_get_child_by_name_and_ns(st, "x", NS_VCARD_UPDATE);
	out->avatar = x != NULL && out->available;
	out->photo = child_text(x, "photo");
	if (show != NULL) {
		if (strcmp(show, "offline") == 0)
			out->available = 0;	/* pascal's offline */
		else if (strcmp(show, "away") == 0 || strcmp(show, "xa") == 0 ||
		    strcmp(show, "dnd") == 0 || strcmp(show, "chat") == 0)
			snprintf(out->show, sizeof(out->show), "%s", show);
	}
	free(show);
}

void
tr_peer_presence_clear(struct tr_peer_presence *p)
{
	free(p->status);
	free(p->photo);
	p->status = p->photo = NULL;
}

xmpp_stanza_t *
tr_contact_presence(const char *from, const char *to, int available,
    const char *show, const char *status, const char *photo_hash)
{
	xmpp_stanza_t *st, *x;

	if ((st = xs_stanza("presence", available ? NULL : "unavailable", from,
	    to)) == NULL)
		return NULL;
	if (available && show != NULL && *show != '\0' &&
	    xs_add_text(st, "show", NULL, show) == NULL)
		goto fail;
	if (status != NULL && *status != '\0' &&
	    xs_add_text(st, "status", NULL, status) == NULL)
		goto fail;
	if (available) {
		/* XEP-0153: the hash of the image, whatever token the peer used */
		if ((x = xs_add_child(st, "x", NS_VCARD_UPDATE)) == NULL ||
		    xs_add_text(x, "photo", NULL, photo_hash) == NULL)
			goto fail;
	}
	return st;
fail:
	xmpp_stanza_release(st);
	return NULL;
}

/* ---- messages and chat states ---- */

const char *
tr_chatstate_of(xmpp_stanza_t *st)
{
	static const char *const states[] = {
		"active", "composing", "paused", "inactive", "gone",
	};

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (xmpp_stanza_get_child_by_name_and_ns(st, states[i],
		    TR_NS_CHATSTATES))
			return states[i];
	return NULL;
}

enum tr_typing
tr_user_chatstate(const char *state, int was_typing)
{
	if (state == NULL)
		return TR_TYPING_NONE;
	if (strcmp(state, "composing") == 0)
		return TR_TYPING_COMPOSING;
	if (strcmp(state, "active") == 0 && !was_typing)
		return TR_TYPING_NONE;
	return TR_TYPING_STOP;
}

/* a message's body, NULL for none or an empty one (both say nothing) */
static char *
body_of(xmpp_stanza_t *st)
{
	char *body = child_text(st, "body");

	if (body != NULL && *body == '\0') {
		free(body);
		body = NULL;
	}
	return body;
}

void
tr_user_message_read(xmpp_stanza_t *st, struct tr_user_message *out)
{
	memset(out, 0, sizeof(*out));
	out->body = body_of(st);
	out->state = tr_chatstate_of(st);
	out->want_receipt = xmpp_stanza_get_child_by_name_and_ns(st, "request",
	    NS_RECEIPTS) != NULL;
}

void
tr_user_message_clear(struct tr_user_message *m)
{
	free(m->body);
	m->body = NULL;
}

enum tr_user_send
tr_user_send(const struct tr_user_message *m, int durable_extra)
{
	if (m->body != NULL || durable_extra)
		return TR_SEND_ROW;
	return m->state != NULL ? TR_SEND_STATE : TR_SEND_NOTHING;
}

void
tr_peer_message_read(xmpp_stanza_t *st, struct tr_peer_message *out)
{
	memset(out, 0, sizeof(*out));
	out->body = body_of(st);
	out->state = tr_chatstate_of(st);
}

void
tr_peer_message_clear(struct tr_peer_message *m)
{
	free(m->body);
	m->body = NULL;
}

/* <name xmlns=ns/> as st's last child; -1 on no memory */
static int
add_empty(xmpp_stanza_t *st, const char *name, const char *ns)
{
	return xs_add_child(st, name, ns) == NULL ? -1 : 0;
}

xmpp_stanza_t *
tr_user_message(const char *from, const char *to, const char *id,
    const struct tr_peer_message *m, int *durable)
{
	xmpp_stanza_t *st;

	*durable = 0;
	if (m->body == NULL && m->state == NULL)
		return NULL;
	if ((st = xs_stanza("message", "chat", from, to)) == NULL)
		return NULL;
	if (m->body != NULL) {
		if ((id != NULL && xmpp_stanza_set_id(st, id) != XMPP_EOK) ||
		    xs_add_text(st, "body", NULL, m->body) == NULL ||
		    (m->state != NULL &&
		    add_empty(st, m->state, TR_NS_CHATSTATES) == -1))
			goto fail;
		*durable = 1;
		return st;
	}
	if (add_empty(st, m->state, TR_NS_CHATSTATES) == -1 ||
	    add_empty(st, "no-store", NS_HINTS) == -1)
		goto fail;
	return st;
fail:
	xmpp_stanza_release(st);
	return NULL;
}

xmpp_stanza_t *
tr_receipt(const char *from, const char *to, const char *id,
    const char *xmpp_id)
{
	xmpp_stanza_t *st, *rc;

	if ((st = xs_stanza("message", NULL, from, to)) == NULL)
		return NULL;
	if (xmpp_stanza_set_id(st, id) != XMPP_EOK ||
	    (rc = xs_add_child(st, "received", NS_RECEIPTS)) == NULL ||
	    xmpp_stanza_set_id(rc, xmpp_id) != XMPP_EOK) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

/* ---- roster items ---- */

const char *
tr_contact_name(const char *name, const char *nick)
{
	return name != NULL && *name != '\0' ? name : nick;
}

xmpp_stanza_t *
tr_roster_push(const char *from, const char *user, const char *item,
    const char *name, int remove)
{
	xmpp_stanza_t *st, *q, *el;

	if ((st = xs_stanza("iq", "set", from, user)) == NULL)
		return NULL;
	q = xs_add_child(st, "query", NS_ROSTER);
	el = q ? xs_add_child(q, "item", NULL) : NULL;
	if (el == NULL || xmpp_stanza_set_attribute(el, "jid", item) != XMPP_EOK)
		goto fail;
	if (remove) {
		if (xmpp_stanza_set_attribute(el, "subscription", "remove") !=
		    XMPP_EOK)
			goto fail;
		return st;
	}
	if (xmpp_stanza_set_attribute(el, "name", name) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(el, "subscription", "both") != XMPP_EOK ||
	    xs_add_text(el, "group", NULL, TR_ROSTER_GROUP) == NULL)
		goto fail;
	return st;
fail:
	xmpp_stanza_release(st);
	return NULL;
}

xmpp_stanza_t *
tr_roster_request(const char *item, const char *user, const char *name)
{
	xmpp_stanza_t *st;

	if ((st = xs_stanza("presence", "subscribe", item, user)) == NULL)
		return NULL;
	if (xs_add_text(st, "nick", NS_NICK, name) == NULL) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

int
tr_roster_item_right(xmpp_stanza_t *el, const char *name)
{
	const char *sub = xmpp_stanza_get_attribute(el, "subscription");
	const char *have = xmpp_stanza_get_attribute(el, "name");
	xmpp_stanza_t *g;
	int groups = 0, barev = 0;

	if (sub == NULL || strcmp(sub, "both") != 0 ||
	    xmpp_stanza_get_attribute(el, "ask") != NULL ||
	    strcmp(have ? have : "", name) != 0)
		return 0;
	for (g = xmpp_stanza_get_children(el); g; g = xmpp_stanza_get_next(g)) {
		const char *gn = xmpp_stanza_get_name(g);
		char *text;

		if (gn == NULL || strcmp(gn, "group") != 0)
			continue;
		groups++;
		if ((text = xmpp_stanza_get_text(g)) != NULL) {
			barev |= strcmp(text, TR_ROSTER_GROUP) == 0;
			xmpp_free(xmpp_stanza_get_context(g), text);
		}
	}
	return groups == 1 && barev;
}

/* <feature var=…/> under q; -1 on no memory */
static int
add_feature(xmpp_stanza_t *q, const char *var)
{
	xmpp_stanza_t *el = xs_add_child(q, "feature", NULL);

	if (el == NULL)
		return -1;
	xmpp_stanza_set_attribute(el, "var", var);
	return 0;
}

xmpp_stanza_t *
tr_contact_disco(const char *nick, const char *const *extra, size_t n)
{
	static const char *const features[] = {
		"http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/chatstates",
		"urn:xmpp:receipts", "urn:xmpp:ping", "vcard-temp",
	};
	xmpp_stanza_t *q = xs_stanza("query", NULL, NULL, NULL), *id;
	int rc = 0;

	if (q == NULL)
		return NULL;
	xmpp_stanza_set_ns(q, "http://jabber.org/protocol/disco#info");
	if ((id = xs_add_child(q, "identity", NULL)) == NULL)
		rc = -1;
	else {
		xmpp_stanza_set_attribute(id, "category", "client");
		xmpp_stanza_set_attribute(id, "type", "pc");
		xmpp_stanza_set_attribute(id, "name", nick);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(features) / sizeof(features[0]); i++)
		rc = add_feature(q, features[i]);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = add_feature(q, extra[i]);
	if (rc == -1) {
		xmpp_stanza_release(q);
		return NULL;
	}
	return q;
}

xmpp_stanza_t *
tr_contact_vcard(const char *nick, const char *name)
{
	xmpp_stanza_t *v = xs_stanza("vCard", NULL, NULL, NULL);

	if (v == NULL)
		return NULL;
	xmpp_stanza_set_ns(v, "vcard-temp");
	if (xs_add_text(v, "NICKNAME", NULL, nick) == NULL ||
	    xs_add_text(v, "FN", NULL, tr_contact_name(name, nick)) == NULL) {
		xmpp_stanza_release(v);
		return NULL;
	}
	return v;
}
