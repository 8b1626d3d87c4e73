/*
 * bridge — roster, presence, messages, chat states and receipts between
 * XMPP users and their Barev contacts (DESIGN.md "Flows", "Failure
 * model"): the one part of the gateway that knows both links.
 *
 * It owns the barevlink instance (gw->bl) and receives its events, and
 * drives the avatar and transfer modules below it; the router hands it
 * every stanza addressed to a contact JID on the component and every
 * presence/roster matter; admin/ (provision.c, subscribe.c) tells it
 * about identities and contacts that appear or vanish.  This header is
 * all that layers above see of it.
 */
#ifndef GW_BRIDGE_H
#define GW_BRIDGE_H

#include <stdint.h>
#include <strophe.h>

#include "store.h"

struct gw;

/* creates gw->bl and loads every identity and contact from the store */
int bridge_start(struct gw *gw);
/* orderly stop: unavailable to peers, pipes closed, nothing lost */
void bridge_shutdown(struct gw *gw);
void bridge_free(struct gw *gw);

/* component link events */
void bridge_component_up(struct gw *gw);
void bridge_component_down(struct gw *gw);

/* stanzas from the server; 1 = handled (answered when needed) */
int bridge_handle_presence(struct gw *gw, xmpp_stanza_t *st);
int bridge_handle_message(struct gw *gw, xmpp_stanza_t *st);
/* Messages to contacts are committed per read of the server link; any
 * other stanza first commits them, so none of its effects overtakes them. */
void bridge_commit_accepted(struct gw *gw);
int bridge_handle_iq(struct gw *gw, xmpp_stanza_t *st);
/* XEP-0356 advertisement (a <message> with <privilege/>); 1 = it was one */
int bridge_handle_privilege(struct gw *gw, xmpp_stanza_t *st);

/*
 * For the front ends above (admin/subscribe.c): does `bare` have a Barev
 * identity; her contact behind `contact_jid` as provisioning names it
 * (nick@address[:port]) and its JID as the gateway writes it (0, or -1:
 * no such contact); and that contact's presence sent to her now.
 */
int bridge_has_user(struct gw *gw, const char *bare);
int bridge_contact_of(struct gw *gw, const char *user, const char *contact_jid,
    char *text, size_t textlen, char *jid, size_t jidlen);
void bridge_contact_presence(struct gw *gw, const char *user, const char *contact_jid);

/* provisioning effects (after the store transaction committed) */
void bridge_identity_added(struct gw *gw, const struct store_identity *id);
void bridge_identity_nick_changed(struct gw *gw, const struct store_identity *id);
/* contacts: pass them in before the rows are deleted */
void bridge_identity_removed(struct gw *gw, const struct store_identity *id);
void bridge_contact_added(struct gw *gw, const struct store_identity *id,
    const struct store_contact *c);
void bridge_contact_removed(struct gw *gw, const struct store_identity *id,
    const struct store_contact *c);


/* refuse_outside_yggdrasil changed on SIGHUP (policy.c) */
void bridge_policy_changed(struct gw *gw);

/* for the status command */
struct bridge_stats {
	unsigned identities, contacts, users_online;
	unsigned users_held;	/* online at peers through a server crash */
	int privileged_roster;	/* granted (XEP-0356) */
	char privileged_host[256];	/* who granted it; "" if none */
	int roster_refused;	/* granted, but the server refuses pushes */
};
void bridge_get_stats(struct gw *gw, struct bridge_stats *st);

#endif
