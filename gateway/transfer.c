/*
 * transfer — placeholder until issue 4's file work lands: peers' file
 * offers are declined (BAREV.md §6 decline) by the bridge's default, and
 * file links from users travel as ordinary messages.
 */
#include "transfer.h"

int transfer_start(struct gw *gw) { (void)gw; return 0; }
void transfer_stop(struct gw *gw) { (void)gw; }
int
transfer_peer_iq(struct gw *gw, int64_t ident, int64_t contact, xmpp_stanza_t *iq)
{
	(void)gw; (void)ident; (void)contact; (void)iq;
	return 0;
}
int
transfer_user_message(struct gw *gw, int64_t contact, xmpp_stanza_t *msg)
{
	(void)gw; (void)contact; (void)msg;
	return 0;
}
void transfer_pipe_down(struct gw *gw, int64_t contact) { (void)gw; (void)contact; }
void transfer_forget_contact(struct gw *gw, int64_t contact) { (void)gw; (void)contact; }
