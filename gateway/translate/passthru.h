/*
 * passthru — what passes between two barev-gateways besides the body:
 * allow-listed children, checked to the last descendant, with the JIDs
 * among them renamed across the pipe (docs/design.md "Gateway peers").
 * Pure: part of the translation core.
 */
#ifndef GW_PASSTHRU_H
#define GW_PASSTHRU_H

#include <strophe.h>

/* who is who across one pipe: our user and the contact standing for the
 * peer (bare JIDs), and the Barev identities of both */
struct tr_pair {
	const char *user_jid, *user_nick, *user_addr;
	const char *contact_jid, *contact_nick, *contact_addr;
};

/* the children of a user's message that pass, serialized (*extra NULL if
 * none); *durable: one is worth a message without a body; -1 out of memory */
int passthru_extract(const struct tr_pair *p, xmpp_stanza_t *st, char **extra,
    int *durable);
xmpp_stanza_t *passthru_parse(const char *extra);	/* <x>extra</x> */
int passthru_has(const char *extra, const char *name, const char *ns);
/* the stanza for a gateway peer (barevlink sets from/to) */
xmpp_stanza_t *passthru_wire(const char *id, const char *body,
    const char *extra);
/* copy the peer's allowed children into `out`; 1 if one is durable */
int passthru_import(const struct tr_pair *p, xmpp_stanza_t *peer,
    xmpp_stanza_t *out);
int passthru_id_ok(const char *id);	/* usable as our stanza id */

#endif
