/*
 * iqtrack — pending iq requests toward the server, matched by id and by
 * sender: a reply counts only if it comes from the JID the request went
 * to, and ids carry random bits, so no other user the server routes to us
 * can answer in its place (a forged upload slot, a forged avatar).
 *
 * A short list: the gateway has few requests in flight at once (avatar
 * fetches, upload slots), so a linear search beats a table in clarity.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <event2/util.h>

#include "gw.h"
#include "iqtrack.h"
#include "log.h"

struct pending {
	LIST_ENTRY(pending) entry;
	char id[48];
	char *to;		/* the request's addressee: the only valid sender */
	struct gw *gw;
	struct event *timer;
	gw_iq_cb cb;
	void *arg;
};

static LIST_HEAD(, pending) pendings = LIST_HEAD_INITIALIZER(pendings);
static unsigned long long next_id;

static void
pending_finish(struct pending *p, xmpp_stanza_t *reply)
{
	LIST_REMOVE(p, entry);
	if (p->timer)
		event_free(p->timer);
	p->cb(p->gw, reply, p->arg);
	free(p->to);
	free(p);
}

static void
pending_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	log_debug("iqtrack", "request %s timed out", p->id);
	pending_finish(p, NULL);
}

int
gw_iq_request(struct gw *gw, xmpp_stanza_t *iq, unsigned timeout_ms,
    gw_iq_cb cb, void *arg)
{
	struct pending *p;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	const char *to = xmpp_stanza_get_to(iq);
	uint32_t rnd;

	if (to == NULL || (p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	evutil_secure_rng_get_bytes(&rnd, sizeof(rnd));
	snprintf(p->id, sizeof(p->id), "gw-%llu-%08x", ++next_id, (unsigned)rnd);
	p->gw = gw;
	p->cb = cb;
	p->arg = arg;
	if ((p->to = strdup(to)) == NULL ||
	    (p->timer = evtimer_new(gw->base, pending_timeout, p)) == NULL ||
	    evtimer_add(p->timer, &tv) == -1 ||
	    xmpp_stanza_set_id(iq, p->id) != XMPP_EOK || gw_send(gw, iq) != 0) {
		if (p->timer)
			event_free(p->timer);
		free(p->to);
		free(p);
		return -1;
	}
	LIST_INSERT_HEAD(&pendings, p, entry);
	return 0;
}

int
gw_iq_track_route(struct gw *gw, xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq), *id = xmpp_stanza_get_id(iq);
	const char *from = xmpp_stanza_get_from(iq);
	struct pending *p;

	(void)gw;
	if (type == NULL || id == NULL ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 0;
	LIST_FOREACH(p, &pendings, entry)
		if (strcmp(p->id, id) == 0) {
			if (from == NULL || strcasecmp(from, p->to) != 0) {
				log_warn("iqtrack", "ignoring a reply to %s from %s:"
				    " the request went to %s", id,
				    from ? from : "nobody", p->to);
				return 1;
			}
			pending_finish(p, iq);
			return 1;
		}
	return 0;
}

void
gw_iq_track_shutdown(struct gw *gw)
{
	struct pending *p, *next;

	for (p = LIST_FIRST(&pendings); p != NULL; p = next) {
		next = LIST_NEXT(p, entry);
		if (p->gw == gw)
			pending_finish(p, NULL);
	}
}
