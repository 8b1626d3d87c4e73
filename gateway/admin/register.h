/*
 * register — XEP-0077 in-band registration with the gateway, which is what
 * a client's "Register" button on a service sends: with registration = open
 * a user picks a nick and gets a Barev identity on barev_address; with
 * registration = admin they are told to ask an administrator.  Unregistering
 * (<remove/>) deletes the identity, its contacts and queues.
 */
#ifndef GW_REGISTER_H
#define GW_REGISTER_H

#include <strophe.h>

struct gw;

#define REGISTER_NS "jabber:iq:register"

/* An iq with <query xmlns=REGISTER_NS> to the component JID: 1 when
 * handled (and answered), 0 when it is not a registration iq. */
int register_handle_iq(struct gw *gw, xmpp_stanza_t *iq);

#endif
