/*
 * iqtrack — iq requests the gateway itself sends to the server (vCard of a
 * user, an XEP-0363 upload slot, a roster get) and the callback that gets
 * their answer.  Every request has a timeout: a server or a service that
 * never answers costs a log line, not a leak.
 */
#ifndef GW_IQTRACK_H
#define GW_IQTRACK_H

#include <strophe.h>

struct gw;

/*
 * Called once: with the result/error iq (borrowed), or with NULL when the
 * request timed out, could not be sent, or the gateway is stopping.
 */
typedef void (*gw_iq_cb)(struct gw *gw, xmpp_stanza_t *reply, void *arg);

/* Sets a fresh id on `iq`, sends it (does not take ownership); 0 or -1
 * (in which case cb is NOT called).  `iq` must have a `to`: only a reply
 * from that JID is taken as the answer. */
int gw_iq_request(struct gw *gw, xmpp_stanza_t *iq, unsigned timeout_ms,
    gw_iq_cb cb, void *arg);
/* route.c: a result/error iq; 1 if it carries one of our ids (a reply
 * from anyone but the addressee is then dropped with a log line) */
int gw_iq_track_route(struct gw *gw, xmpp_stanza_t *iq);
/* cancel everything (callbacks get NULL) */
void gw_iq_track_shutdown(struct gw *gw);

#endif
