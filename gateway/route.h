/*
 * route — the component's stanza callback: where each stanza from the
 * server goes (route.c).
 */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include <strophe.h>

struct gw;

/* every stanza from the server, as the link hands it over */
void gw_route_stanza(struct gw *gw, xmpp_stanza_t *st);

#endif
