/*
 * avatar — placeholder until issue 4's avatar work lands: no avatars are
 * exchanged, every hook is a no-op (presences carry an empty <photo/>).
 */
#include <stddef.h>

#include "avatar.h"

int avatar_start(struct gw *gw) { (void)gw; return 0; }
void avatar_stop(struct gw *gw) { (void)gw; }
void
avatar_peer_presence(struct gw *gw, int64_t ident, int64_t contact, const char *token)
{
	(void)gw; (void)ident; (void)contact; (void)token;
}
int
avatar_peer_iq(struct gw *gw, int64_t ident, int64_t contact, xmpp_stanza_t *iq)
{
	(void)gw; (void)ident; (void)contact; (void)iq;
	return 0;
}
const char *avatar_contact_hash(struct gw *gw, int64_t contact) { (void)gw; (void)contact; return NULL; }
int
avatar_contact_vcard(struct gw *gw, int64_t contact, xmpp_stanza_t *vcard)
{
	(void)gw; (void)contact; (void)vcard;
	return 0;
}
void avatar_user_presence(struct gw *gw, int64_t ident, xmpp_stanza_t *st) { (void)gw; (void)ident; (void)st; }
const char *avatar_identity_hash(struct gw *gw, int64_t ident) { (void)gw; (void)ident; return NULL; }
void avatar_forget_contact(struct gw *gw, int64_t contact) { (void)gw; (void)contact; }
void avatar_forget_identity(struct gw *gw, int64_t ident) { (void)gw; (void)ident; }
