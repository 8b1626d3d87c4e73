/*
 * policy — who the gateway's Barev identities may talk to beyond the
 * allowlist: with `refuse_outside_yggdrasil` (the default) only Yggdrasil's
 * 200::/7, on both ends, at every dial and every accept.
 *
 * Why at dial and accept and not only when a contact is added: a contact
 * or identity stored before the switch was turned on (or before it became
 * the default) would otherwise still make the gateway connect to, say, a
 * loopback service, and the contact's connected / not connected state
 * would tell the user whether that port is open.  barevlink asks us
 * through its permit() event, so it keeps knowing nothing of policy.
 */
#include "barevlink.h"
#include "bridge.h"
#include "bridge_int.h"
#include "gw.h"
#include "log.h"

int
br_permit(void *arg, const char *local, const char *remote)
{
	struct bridge *br = arg;

	if (!br->gw->cfg.refuse_outside_yggdrasil)
		return 1;
	return gw_addr_is_yggdrasil(local) && gw_addr_is_yggdrasil(remote);
}

/* one WARN per identity and contact the switch now keeps silent */
void
br_policy_warn(struct bridge *br)
{
	struct br_user *u;
	struct br_contact *c;

	if (!br->gw->cfg.refuse_outside_yggdrasil)
		return;
	LIST_FOREACH(u, &br->users, entry) {
		if (!gw_addr_is_yggdrasil(u->address))
			log_warn("policy", "identity %s@%s of %s is outside"
			    " Yggdrasil's 200::/7: none of its contacts is"
			    " dialled or accepted while refuse_outside_yggdrasil"
			    " = true", u->nick, u->address, u->jid);
	}
	LIST_FOREACH(c, &br->contacts, entry) {
		if (!gw_addr_is_yggdrasil(c->address))
			log_warn("policy", "contact %s@%s of %s is outside"
			    " Yggdrasil's 200::/7: not dialled or accepted while"
			    " refuse_outside_yggdrasil = true", c->nick,
			    c->address, c->user->jid);
	}
}

void
bridge_policy_changed(struct gw *gw)
{
	struct bridge *br = gw->bridge;
	struct br_contact *c;

	if (br == NULL)
		return;
	log_info("policy", "refuse_outside_yggdrasil is now %s",
	    gw->cfg.refuse_outside_yggdrasil ? "true" : "false");
	br_policy_warn(br);
	/* dials refused before are not retried by barevlink: ask again */
	LIST_FOREACH(c, &br->contacts, entry)
		br_update_want(br, c);
}
