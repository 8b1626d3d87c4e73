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
 * The top of gateway/: it sees every layer below (core's senders and
 * replies, bridge/, admin/) and none of them sees it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bridge.h"
#include "chatcmd.h"
#include "commands.h"
#include "register.h"
#include "gw.h"
#include "route.h"
#include "iqtrack.h"
#include "log.h"
#include "service.h"
#include "subscribe.h"
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
	/* her subscriptions to contact JIDs add and remove Barev peers */
	{ "presence", ROUTE_CONTACT, NULL, subscribe_handle_presence },
	/* the contacts: roster, presence, messages, their disco/vCard/ping */
	{ "presence", ROUTE_CONTACT | ROUTE_COMPONENT, NULL, bridge_handle_presence },
	{ "message", ROUTE_CONTACT, NULL, bridge_handle_message },
	{ "iq", ROUTE_CONTACT, NULL, bridge_handle_iq },
	/* disco, ping, version; answers every other get/set itself */
	{ "iq", ROUTE_COMPONENT, NULL, route_service_iq },
};

/* ---- classification ---- */

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
