/*
 * subscribe — the user's own subscriptions to contact JIDs: her roster is
 * the allowlist, so subscribing to a contact JID adds that Barev peer (a
 * provisioning change, through provision.c like the commands), and
 * unsubscribing removes it.  Subscriptions to the gateway JID itself are
 * the bridge's (roster.c); every other presence goes on to the bridge.
 */
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "addr.h"
#include "bridge.h"
#include "gw.h"
#include "log.h"
#include "provision.h"
#include "store.h"
#include "subscribe.h"
#include "xmlstream.h"

/* <presence type=TYPE from=FROM to=TO/>, sent */
static void
tell(struct gw *gw, const char *type, const char *from, const char *to)
{
	(void)gw_send_release(gw, xs_stanza("presence", type, from, to));
}

/* subscribe: the peer is added unless she has it; either way the contact
 * JID approves, and an existing contact shows its presence (a new one's
 * went out as it was added) */
static void
subscribe(struct gw *gw, const char *user, const char *to)
{
	struct prov_result r = { .msg = "not a Barev address" };
	char text[GW_NICK_MAX + GW_ADDR_TEXT + 16];
	char jid[STORE_JID_MAX];
	struct gw_baddr a;
	int added = 0;

	if (bridge_contact_of(gw, user, to, text, sizeof(text), jid, sizeof(jid)) == -1) {
		/* the roster is the allowlist: her JID's address is the peer */
		if (gw_baddr_from_jid(to, &a) == 0 &&
		    gw_baddr_format(&a, text, sizeof(text)) == 0 &&
		    prov_contact_add(gw, user, text, NULL, &r) == 0)
			added = bridge_contact_of(gw, user, to, text, sizeof(text),
			    jid, sizeof(jid)) == 0;
		if (!added) {
			log_info("bridge", "%s subscribed to %s: %s", user, to, r.msg);
			tell(gw, "unsubscribed", to, user);
			return;
		}
	}
	tell(gw, "subscribed", jid, user);
	if (!added)
		bridge_contact_presence(gw, user, to);
}

int
subscribe_handle_presence(struct gw *gw, xmpp_stanza_t *st)
{
	const char *type = xmpp_stanza_get_type(st);
	const char *to = xmpp_stanza_get_to(st);
	const char *from = xmpp_stanza_get_from(st);
	char text[GW_NICK_MAX + GW_ADDR_TEXT + 16], jid[STORE_JID_MAX];
	struct prov_result r = { .msg = "" };
	char *user;

	if (type == NULL || to == NULL || from == NULL || strchr(to, '@') == NULL ||
	    (strcmp(type, "subscribe") != 0 && strcmp(type, "unsubscribe") != 0 &&
	    strcmp(type, "subscribed") != 0 && strcmp(type, "unsubscribed") != 0))
		return 0;
	if ((user = xmpp_jid_bare(xs_ctx(), from)) == NULL)
		return 1;
	if (!bridge_has_user(gw, user)) {
		/* no identity: a subscription attempt deserves an explanation */
		if (strcmp(type, "subscribe") == 0)
			gw_reply_error(gw, st, "auth", "registration-required",
			    "You have no Barev identity on this gateway yet; ask an"
			    " administrator for one (or send 'help' to the gateway).");
	} else if (strcmp(type, "subscribe") == 0) {
		subscribe(gw, user, to);
	} else if (bridge_contact_of(gw, user, to, text, sizeof(text), jid,
	    sizeof(jid)) == -1) {
		/* not her contact: nothing to remove or approve */
	} else if (strcmp(type, "subscribed") != 0) {
		if (prov_contact_remove(gw, user, text, &r) == -1)
			log_warn("bridge", "%s unsubscribed from %s: %s", user, text, r.msg);
	} else {
		/* she approved our request (no XEP-0356 push): her presence
		 * can be asked for now, and the contact's shown */
		tell(gw, "probe", jid, user);
		bridge_contact_presence(gw, user, to);
	}
	xmpp_free(xs_ctx(), user);
	return 1;
}
