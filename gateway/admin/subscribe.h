/*
 * subscribe — the user's subscriptions to contact JIDs (subscribe.c).
 */
#ifndef GW_SUBSCRIBE_H
#define GW_SUBSCRIBE_H

#include <strophe.h>

struct gw;

/* a presence of type (un)subscribe(d) from a user to a contact JID: 1 =
 * handled; 0 = another presence, for the bridge */
int subscribe_handle_presence(struct gw *gw, xmpp_stanza_t *st);

#endif
