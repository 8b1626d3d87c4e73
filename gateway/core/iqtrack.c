/*
 * iqtrack — pending iq requests toward the server, matched by id and by
 * sender: a reply counts only if it comes from the JID the request went
 * to (or, for a user's account, from her server's domain, which answers in
 * her place), and ids carry random bits, so no other user the server routes
 * to us can answer in their place (a forged upload slot, a forged avatar).
 *
 * Requests in flight are found by id in a tree: a start-up that checks
 * a thousand rosters has that many in flight.
 *
 * Failures are not left to each caller to mention: an error answer or a
 * timeout becomes the kind's current problem, logged at WARN when its
 * cause (condition and text) is new and only counted when it repeats, and
 * shown by `status` until a request of that kind gets a result.
 */
#include <sys/queue.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "rng.h"

struct gw_iq_pending {
	LIST_ENTRY(gw_iq_pending) entry;
	char id[48];
	char *to;		/* the request's addressee: the only valid sender */
	enum gw_iq_kind kind;
	unsigned timeout_ms;
	struct gw *gw;
	struct event *timer;
	gw_iq_cb cb;
	void *arg;
};

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(((const struct gw_iq_pending *)a)->id,
	    ((const struct gw_iq_pending *)b)->id);
}

static const char *const kind_names[GW_IQ_NKINDS] = {
	[GW_IQ_ROSTER] = "roster request (XEP-0356)",
	[GW_IQ_VCARD] = "vCard request",
	[GW_IQ_UPLOAD] = "upload slot request (XEP-0363)",
	[GW_IQ_DISCO] = "disco request",
	[GW_IQ_PING] = "ping",
	[GW_IQ_PEP] = "OMEMO key request (PEP)",
};

const char *
gw_iq_error_text(xmpp_stanza_t *reply, char *buf, size_t len)
{
	xmpp_stanza_t *err, *ch;
	const char *cond = NULL, *name;
	char *text = NULL;

	if (reply == NULL) {
		snprintf(buf, len, "no answer");
		return buf;
	}
	err = xmpp_stanza_get_child_by_name(reply, "error");
	for (ch = err ? xmpp_stanza_get_children(err) : NULL; ch;
	    ch = xmpp_stanza_get_next(ch)) {
		if (!xmpp_stanza_is_tag(ch) || (name = xmpp_stanza_get_name(ch)) == NULL)
			continue;
		if (strcmp(name, "text") == 0) {
			if (text == NULL)
				text = xmpp_stanza_get_text(ch);
		} else if (cond == NULL && xmpp_stanza_get_ns(ch) &&
		    strcmp(xmpp_stanza_get_ns(ch), NS_STANZAS) == 0) {
			cond = name;
		}
	}
	snprintf(buf, len, "%s%s%s%s", cond ? cond : "an error without a condition",
	    text && *text ? " (" : "", text && *text ? text : "", text && *text ? ")" : "");
	free(text);
	return buf;
}

static void
problem_failed(struct gw *gw, enum gw_iq_kind kind, const char *to,
    const char *cause)
{
	struct gw_iq_problem *pr = &gw->iq.problems[kind];
	time_t now = time(NULL);

	snprintf(pr->to, sizeof(pr->to), "%s", to);
	pr->last = now;
	if (strcmp(pr->cause, cause) == 0) {
		pr->count++;
		log_debug("iqtrack", "%s to %s failed again: %s (%u times)",
		    kind_names[kind], to, cause, pr->count);
		return;
	}
	snprintf(pr->cause, sizeof(pr->cause), "%s", cause);
	pr->count = 1;
	pr->since = now;
	log_warn("iqtrack", "%s to %s failed: %s", kind_names[kind], to, cause);
}

static void
problem_solved(struct gw *gw, enum gw_iq_kind kind, const char *to)
{
	struct gw_iq_problem *pr = &gw->iq.problems[kind];

	if (pr->cause[0] == '\0')
		return;
	log_info("iqtrack", "%s to %s works again (%u failure(s) before: %s)",
	    kind_names[kind], to, pr->count, pr->cause);
	memset(pr, 0, sizeof(*pr));
}

const char *
gw_iq_problem(struct gw *gw, enum gw_iq_kind kind, char *buf, size_t len)
{
	const struct gw_iq_problem *pr = &gw->iq.problems[kind];

	if (pr->cause[0] == '\0')
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s from %s", pr->cause, pr->to);
	return buf;
}

const char *
gw_iq_track_status(struct gw *gw, char *buf, size_t len)
{
	size_t used = 0;
	time_t now = time(NULL);
	int n;

	buf[0] = '\0';
	for (int k = 0; k < GW_IQ_NKINDS; k++) {
		const struct gw_iq_problem *pr = &gw->iq.problems[k];

		if (pr->cause[0] == '\0' || used >= len)
			continue;
		n = snprintf(buf + used, len - used, "Server refused: %s to %s: %s"
		    " (%u time(s), last %lds ago)\n", kind_names[k], pr->to,
		    pr->cause, pr->count, (long)(now - pr->last));
		used += n > 0 ? (size_t)n : 0;
	}
	if (used == 0)
		snprintf(buf, len, "Server requests: all answered\n");
	return buf;
}

void
gw_iq_track_reset(struct gw *gw)
{
	memset(gw->iq.problems, 0, sizeof(gw->iq.problems));
}

static void
pending_finish(struct gw_iq_pending *p, xmpp_stanza_t *reply)
{
	LIST_REMOVE(p, entry);
	tdelete(p, &p->gw->iq.by_id, cmp_id);
	if (p->timer)
		event_free(p->timer);
	p->cb(p->gw, reply, p->arg);
	free(p->to);
	free(p);
}

static void
pending_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct gw_iq_pending *p = arg;
	char cause[64];

	(void)fd;
	(void)what;
	snprintf(cause, sizeof(cause), "no answer within %us",
	    (p->timeout_ms + 999) / 1000);
	problem_failed(p->gw, p->kind, p->to, cause);
	pending_finish(p, NULL);
}

int
gw_iq_request(struct gw *gw, xmpp_stanza_t *iq, enum gw_iq_kind kind,
    unsigned timeout_ms, gw_iq_cb cb, void *arg)
{
	struct gw_iq_pending *p;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	const char *to = xmpp_stanza_get_to(iq);

	/* a callback finished by the shutdown may ask again: refused, or the
	 * shutdown would never end */
	if (gw->iq.closing || to == NULL || kind >= GW_IQ_NKINDS ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	snprintf(p->id, sizeof(p->id), "gw-%llu-%08x", ++gw->iq.next_id,
	    (unsigned)cm_random_u32());
	p->gw = gw;
	p->kind = kind;
	p->timeout_ms = timeout_ms;
	p->cb = cb;
	p->arg = arg;
	if ((p->to = strdup(to)) == NULL ||
	    (p->timer = evtimer_new(gw->base, pending_timeout, p)) == NULL ||
	    evtimer_add(p->timer, &tv) == -1 ||
	    tsearch(p, &gw->iq.by_id, cmp_id) == NULL) {
		if (p->timer)
			event_free(p->timer);
		free(p->to);
		free(p);
		return -1;
	}
	LIST_INSERT_HEAD(&gw->iq.pendings, p, entry);
	/* registered before it goes: a test's send_fn may answer at once */
	if (xmpp_stanza_set_id(iq, p->id) != XMPP_EOK || gw_send(gw, iq) != 0) {
		LIST_REMOVE(p, entry);
		tdelete(p, &gw->iq.by_id, cmp_id);
		event_free(p->timer);
		free(p->to);
		free(p);
		return -1;
	}
	return 0;
}

/* an answer that is not a failure of the server: a user without OMEMO
 * keys has no node to read (item-not-found) */
static int
expected_error(const struct gw_iq_pending *p, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(iq, "error");

	return p->kind == GW_IQ_PEP && err != NULL &&
	    xmpp_stanza_get_child_by_name(err, "item-not-found") != NULL;
}

/* the addressee itself, or the domain of a user's JID (bare) */
static int
valid_sender(const struct gw_iq_pending *p, const char *from)
{
	const char *at = strchr(p->to, '@');
	size_t n;

	if (from == NULL)
		return 0;
	if (strcasecmp(from, p->to) == 0)
		return 1;
	if (at == NULL)
		return 0;
	n = strcspn(at + 1, "/");
	return strlen(from) == n && strncasecmp(from, at + 1, n) == 0;
}

int
gw_iq_track_route(struct gw *gw, xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq), *id = xmpp_stanza_get_id(iq);
	const char *from = xmpp_stanza_get_from(iq);
	struct gw_iq_pending key, *p;
	void *node;
	char cause[256];

	if (type == NULL || id == NULL || strlen(id) >= sizeof(key.id) ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return 0;
	strcpy(key.id, id);
	if ((node = tfind(&key, &gw->iq.by_id, cmp_id)) == NULL)
		return 0;
	p = *(struct gw_iq_pending **)node;
	if (!valid_sender(p, from)) {
		log_warn("iqtrack", "ignoring a reply to %s from %s: the request"
		    " went to %s", id, from ? from : "nobody", p->to);
		return 1;
	}
	if (strcmp(type, "error") == 0) {
		if (!expected_error(p, iq))
			problem_failed(gw, p->kind, p->to,
			    gw_iq_error_text(iq, cause, sizeof(cause)));
	} else
		problem_solved(gw, p->kind, p->to);
	pending_finish(p, iq);
	return 1;
}

void
gw_iq_track_shutdown(struct gw *gw)
{
	struct gw_iq_pending *p;

	/* a callback may ask again: refused meanwhile (gw_iq_request) */
	gw->iq.closing = 1;
	while ((p = LIST_FIRST(&gw->iq.pendings)) != NULL)
		pending_finish(p, NULL);
	gw->iq.closing = 0;	/* a new bridge on this gw may ask again */
}
