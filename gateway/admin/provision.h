/*
 * provision — the operations behind every way of provisioning: XEP-0050
 * ad-hoc commands, chat commands to the gateway JID, XEP-0077 registration
 * and roster subscriptions.  Each is one SQLite transaction plus its
 * immediate effects: a new identity's listener starts, a new contact is
 * allowlisted, pushed into the user's roster (XEP-0356 when granted, else a
 * subscription request) and dialled; removal reverses all of it.
 *
 * Errors come back as a sentence for the user plus the form field at fault,
 * so an ad-hoc form can keep the user's input and point at the field.
 */
#ifndef GW_PROVISION_H
#define GW_PROVISION_H

#include <stddef.h>

#include "store.h"

struct gw;

enum prov_field {
	PROV_F_NONE = 0,
	PROV_F_JID,
	PROV_F_NICK,
	PROV_F_ADDRESS,
	PROV_F_PORT,
	PROV_F_CONTACT,
	PROV_F_NAME,
};
const char *prov_field_var(enum prov_field f);	/* "jid", "nick", ... */

enum prov_err {
	PROV_OK = 0,
	PROV_BAD_INPUT,		/* -> bad-request / modify */
	PROV_CONFLICT,		/* nick taken, identity exists -> conflict */
	PROV_NOT_FOUND,		/* unknown JID or contact -> item-not-found */
	PROV_NOT_ALLOWED,	/* policy (registration = admin) -> not-allowed */
	PROV_INTERNAL,		/* store failure -> internal-server-error */
};

struct prov_result {
	enum prov_err err;
	enum prov_field field;	/* the field at fault, when there is one */
	char msg[512];		/* error sentence, or a success summary */
};

/*
 * Admin-side identity management.  `jid` is a bare JID (any case; a
 * resource is refused); `port_text` may be NULL/"" for 1337.
 */
int prov_identity_create(struct gw *gw, const char *jid, const char *nick,
    const char *addr, const char *port_text, struct prov_result *r);
/* removes contacts and queues, closes pipes, removes roster items */
int prov_identity_delete(struct gw *gw, const char *jid, struct prov_result *r);
int prov_identity_set_nick(struct gw *gw, const char *jid, const char *nick,
    struct prov_result *r);
/* Could `jid` take an identity itself now: registration = open, an address
 * to give out, and its domain allowed (registration_domains)? */
int prov_may_register(const struct gw *gw, const char *jid);
/* registration = open: an identity on barev_address for `jid` */
int prov_register(struct gw *gw, const char *jid, const char *nick,
    struct prov_result *r);

/* `contact` as typed: nick@ADDR or nick@[ADDR]:PORT; `name` optional */
int prov_contact_add(struct gw *gw, const char *jid, const char *contact,
    const char *name, struct prov_result *r);
int prov_contact_remove(struct gw *gw, const char *jid, const char *contact,
    struct prov_result *r);

/*
 * Text for listings, one line per entry, into buf (truncated with "…"
 * when it does not fit).  0, or -1 with r filled (unknown JID).
 */
int prov_identity_describe(struct gw *gw, const char *jid, char *buf,
    size_t len, struct prov_result *r);	/* "alice@example.org is bob@…, port …" */
int prov_list_identities(struct gw *gw, char *buf, size_t len);
int prov_list_contacts(struct gw *gw, const char *jid, char *buf, size_t len,
    struct prov_result *r);
int prov_status(struct gw *gw, char *buf, size_t len);

#endif
