/*
 * route — where each stanza from the server goes.
 *
 * A stanza is classified by its element (iq, message, presence) and by its
 * target: the gateway JID itself, or a contact JID on the gateway
 * (localpart = escaped Barev address).  `route_rules` is walked in order;
 * the first handler that returns 1 has dealt with the stanza.  Whatever no
 * rule takes gets the answer RFC 6120 asks for: iq get/set and messages get
 * service-unavailable, presence gets nothing, and no error is ever answered
 * with an error.  New modules add a row to the table.
 *
 * Also here: the small reply builders every handler uses (gw.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "barevlink.h"
#include "bridge.h"
#include "chatcmd.h"
#include "commands.h"
#include "register.h"
#include "component.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "service.h"
#include "xmlstream.h"

enum route_target {
	ROUTE_COMPONENT = 1 << 0,	/* barev.example.org[/res] */
	ROUTE_CONTACT = 1 << 1,		/* escaped-contact@barev.example.org */
	ROUTE_OTHER = 1 << 2,		/* not ours: the server misrouted it */
};

struct route_rule {
	const char *stanza;		/* "iq", "message", "presence" */
	unsigned targets;		/* ROUTE_* mask */
	const char *xmlns;		/* a child in this namespace; NULL = any */
	/* 1 = handled (and answered where an answer is due), 0 = not mine */
	int (*fn)(struct gw *gw, xmpp_stanza_t *st);
};

static int route_service_iq(struct gw *, xmpp_stanza_t *);

/* First match wins.  Keep specific rows (with xmlns) above catch-alls. */
static const struct route_rule route_rules[] = {
	/* answers to the gateway's own requests (vCards, upload slots) */
	{ "iq", ROUTE_COMPONENT | ROUTE_CONTACT, NULL, gw_iq_track_route },
	/* XEP-0356: the server tells us what we may do for its users */
	{ "message", ROUTE_COMPONENT, "urn:xmpp:privilege:2", bridge_handle_privilege },
	{ "message", ROUTE_COMPONENT, "urn:xmpp:privilege:1", bridge_handle_privilege },
	/* XEP-0050 ad-hoc commands; XEP-0100 address translation */
	{ "iq", ROUTE_COMPONENT, "http://jabber.org/protocol/commands", commands_handle_iq },
	{ "iq", ROUTE_COMPONENT, "jabber:iq:gateway", bridge_handle_iq },
	/* XEP-0077, and the same commands as chat for Conversations and Dino */
	{ "iq", ROUTE_COMPONENT, "jabber:iq:register", register_handle_iq },
	{ "message", ROUTE_COMPONENT, NULL, chatcmd_handle_message },
	/* the contacts: roster, presence, messages, their disco/vCard/ping */
	{ "presence", ROUTE_CONTACT | ROUTE_COMPONENT, NULL, bridge_handle_presence },
	{ "message", ROUTE_CONTACT, NULL, bridge_handle_message },
	{ "iq", ROUTE_CONTACT, NULL, bridge_handle_iq },
	/* disco, ping, version; answers every other get/set itself */
	{ "iq", ROUTE_COMPONENT, NULL, route_service_iq },
};

/* ---- reply builders (gw.h) ---- */

xmpp_stanza_t *
gw_add_child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	return xs_add_child(parent, name, ns);
}

int
gw_add_text_child(xmpp_stanza_t *parent, const char *name, const char *text)
{
	return xs_add_text(parent, name, NULL, text) != NULL ? 0 : -1;
}

/* <NAME type=TYPE id=ID to=FROM from=TO/> */
static xmpp_stanza_t *
route_reply_skeleton(xmpp_stanza_t *st, const char *type)
{
	xmpp_stanza_t *r;
	const char *name = xmpp_stanza_get_name(st);
	const char *id = xmpp_stanza_get_id(st);
	const char *from = xmpp_stanza_get_from(st);
	const char *to = xmpp_stanza_get_to(st);

	if ((r = xmpp_stanza_new(xs_ctx())) == NULL)
		return NULL;
	if (xmpp_stanza_set_name(r, name != NULL ? name : "iq") != XMPP_EOK ||
	    xmpp_stanza_set_type(r, type) != XMPP_EOK ||
	    (id != NULL && xmpp_stanza_set_id(r, id) != XMPP_EOK) ||
	    (from != NULL && xmpp_stanza_set_to(r, from) != XMPP_EOK) ||
	    (to != NULL && xmpp_stanza_set_from(r, to) != XMPP_EOK)) {
		xmpp_stanza_release(r);
		return NULL;
	}
	return r;
}

xmpp_stanza_t *
gw_iq_result(xmpp_stanza_t *iq)
{
	return route_reply_skeleton(iq, "result");
}

xmpp_stanza_t *
gw_error_reply(xmpp_stanza_t *st, const char *type, const char *cond,
    const char *text)
{
	xmpp_stanza_t *r, *err, *t;

	if ((r = route_reply_skeleton(st, "error")) == NULL)
		return NULL;
	if ((err = gw_add_child(r, "error", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(err, "type", type) != XMPP_EOK ||
	    gw_add_child(err, cond, NS_STANZAS) == NULL)
		goto fail;
	if (text != NULL) {
		if (gw_add_text_child(err, "text", text) == -1 ||
		    (t = xmpp_stanza_get_child_by_name(err, "text")) == NULL ||
		    xmpp_stanza_set_ns(t, NS_STANZAS) != XMPP_EOK)
			goto fail;
	}
	return r;
fail:
	xmpp_stanza_release(r);
	return NULL;
}

void
gw_reply_error(struct gw *gw, xmpp_stanza_t *st, const char *type,
    const char *cond, const char *text)
{
	xmpp_stanza_t *r;
	const char *stype = xmpp_stanza_get_type(st);

	if (stype != NULL && strcmp(stype, "error") == 0)
		return;
	if (xmpp_stanza_get_from(st) == NULL)
		return;		/* nobody to tell */
	if ((r = gw_error_reply(st, type, cond, text)) == NULL) {
		log_error("route", "cannot build a %s error (out of memory)",
		    cond);
		return;
	}
	(void)gw_send(gw, r);
	xmpp_stanza_release(r);
}

int
gw_send(struct gw *gw, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	const char *to = xmpp_stanza_get_to(st);
	int rc;

	if (gw->send_fn != NULL)
		return gw->send_fn(gw, st);
	if (gw->comp == NULL)
		return -1;
	rc = comp_send(gw->comp, st);
	if (rc < 0)
		log_debug("route", "cannot send <%s> to %s: %s",
		    name != NULL ? name : "?", to != NULL ? to : "?",
		    rc == -2 ? "too large" : "component link down");
	return rc;
}

/*
 * A graceful stop ends once the link is closed and no Barev pipe is still
 * draining (barevlink keeps reading what peers wrote before our goodbye),
 * or at GW_STOP_BOUND_MS, whichever comes first.
 */
void
gw_stop_progress(struct gw *gw)
{
	struct timeval tv = { 0, 100 * 1000 };
	struct bl_stats bs;

	if (!gw->stopping || !gw->link_closed)
		return;
	if (gw->bl != NULL) {
		bl_get_stats(gw->bl, &bs);
		if (bs.pipes_up > 0)
			return;
	}
	event_base_loopexit(gw->base, &tv);
}

/* ---- classification ---- */

int
gw_is_component_jid(const struct gw *gw, const char *jid)
{
	const char *slash;
	size_t len;

	if (jid == NULL || gw->cfg.component_jid == NULL)
		return 0;
	slash = strchr(jid, '/');
	len = slash != NULL ? (size_t)(slash - jid) : strlen(jid);
	return len == strlen(gw->cfg.component_jid) &&
	    strncasecmp(jid, gw->cfg.component_jid, len) == 0;
}

static enum route_target
route_target(const struct gw *gw, const char *to)
{
	const char *slash, *at;
	size_t len;

	if (to == NULL)
		return ROUTE_OTHER;
	if (gw_is_component_jid(gw, to))
		return ROUTE_COMPONENT;
	slash = strchr(to, '/');
	len = slash != NULL ? (size_t)(slash - to) : strlen(to);
	at = memchr(to, '@', len);
	if (at == NULL || at == to)
		return ROUTE_OTHER;
	len -= (size_t)(at + 1 - to);
	if (len == strlen(gw->cfg.component_jid) &&
	    strncasecmp(at + 1, gw->cfg.component_jid, len) == 0)
		return ROUTE_CONTACT;
	return ROUTE_OTHER;
}

static int
route_has_ns(xmpp_stanza_t *st, const char *xmlns)
{
	xmpp_stanza_t *ch;
	const char *ns;

	for (ch = xmpp_stanza_get_children(st); ch != NULL;
	    ch = xmpp_stanza_get_next(ch)) {
		if (xmpp_stanza_is_tag(ch) &&
		    (ns = xmpp_stanza_get_ns(ch)) != NULL &&
		    strcmp(ns, xmlns) == 0)
			return 1;
	}
	return 0;
}

static int
route_service_iq(struct gw *gw, xmpp_stanza_t *st)
{
	gw_service_handle_iq(gw, st);
	return 1;
}

/* what nobody took: answer as RFC 6120 §8.3 and §10 ask */
static void
route_default(struct gw *gw, xmpp_stanza_t *st, const char *name,
    const char *type)
{
	if (strcmp(name, "iq") == 0) {
		if (type == NULL || (strcmp(type, "get") != 0 &&
		    strcmp(type, "set") != 0)) {
			/* not an answer to one of ours (iqtrack had it first) */
			log_debug("route", "dropping an iq %s from %s",
			    type != NULL ? type : "without type",
			    xmpp_stanza_get_from(st) != NULL ?
			    xmpp_stanza_get_from(st) : "?");
			return;
		}
		gw_reply_error(gw, st, "cancel", "service-unavailable", NULL);
	} else if (strcmp(name, "message") == 0) {
		gw_reply_error(gw, st, "cancel", "service-unavailable", NULL);
	}
	/* presence: never answered with an error; other elements: ignored */
}

void
gw_route_stanza(struct gw *gw, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	const char *type = xmpp_stanza_get_type(st);
	enum route_target target;
	size_t i;

	if (name == NULL)
		return;
	if (strcmp(name, "iq") != 0 && strcmp(name, "message") != 0 &&
	    strcmp(name, "presence") != 0) {
		log_debug("route", "ignoring <%s> from the server", name);
		return;
	}
	target = route_target(gw, xmpp_stanza_get_to(st));
	if (target != ROUTE_CONTACT || strcmp(name, "message") != 0)
		bridge_commit_accepted(gw);
	for (i = 0; i < sizeof route_rules / sizeof route_rules[0]; i++) {
		const struct route_rule *r = &route_rules[i];

		if (strcmp(r->stanza, name) != 0 || !(r->targets & target))
			continue;
		if (r->xmlns != NULL && !route_has_ns(st, r->xmlns))
			continue;
		if (r->fn(gw, st) == 1)
			return;
	}
	route_default(gw, st, name, type);
}
