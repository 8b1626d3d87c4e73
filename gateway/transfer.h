/*
 * transfer — files across the bridge (issue 4, DESIGN.md "Flows").
 *
 * Barev -> XMPP: SI offer from a peer -> SOCKS5 receive into the spool ->
 * XEP-0363 upload as the component (or the gateway's own HTTP listener) ->
 * a message to the user whose body is exactly the URL, plus jabber:x:oob.
 * XMPP -> Barev: a message whose OOB URL (or whole body) is an http(s) URL
 * on an allowed host -> download into the spool -> SI offer -> SOCKS5
 * serve to the peer's address only -> "delivered" or the reason, in chat.
 */
#ifndef GW_TRANSFER_H
#define GW_TRANSFER_H

#include <stdint.h>
#include <strophe.h>

struct gw;

int transfer_start(struct gw *gw);
/* fail every transfer in flight and tell the users */
void transfer_stop(struct gw *gw);

/* an iq from a peer (SI offer, bytestreams, results of our offers);
 * 1 = handled */
int transfer_peer_iq(struct gw *gw, int64_t ident, int64_t contact,
    xmpp_stanza_t *iq);
/* a message from the user to a contact; 1 = it was a file link and the
 * transfer took it over (nothing else is sent) */
int transfer_user_message(struct gw *gw, int64_t contact, xmpp_stanza_t *msg);
/* the contact's pipe went down / the contact was removed */
void transfer_pipe_down(struct gw *gw, int64_t contact);
void transfer_forget_contact(struct gw *gw, int64_t contact);

#endif
