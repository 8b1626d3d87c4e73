/*
 * iqtrack — pending iq requests toward the server, matched by id.
 *
 * A short list: the gateway has few requests in flight at once (avatar
 * fetches, upload slots), so a linear search beats a table in clarity.
 */
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gw.h"
#include "iqtrack.h"
#include "log.h"

struct pending {
	LIST_ENTRY(pending) entry;
	char id[40];
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

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	snprintf(p->id, sizeof(p->id), "gw-%llu", ++next_id);
	p->gw = gw;
	p->cb = cb;
	p->arg = arg;
	if ((p->timer = evtimer_new(gw->base, pending_timeout, p)) == NULL ||
	    evtimer_add(p->timer, &tv) == -1 ||
	    xmpp_stanza_set_id(iq, p->id) != XMPP_EOK || gw_send(gw, iq) != 0) {
		if (p->timer)
			event_free(p->timer);
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
	struct pending *p;

	(void)gw;
	if (type == NULL || id == NULL ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 0;
	LIST_FOREACH(p, &pendings, entry)
		if (strcmp(p->id, id) == 0) {
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
