/*
 * iqtrack — iq requests the gateway itself sends to the server (a roster
 * push, the vCard of a user, an XEP-0363 upload slot) and the callback that
 * gets their answer.  Every request has a timeout: a server or a service
 * that never answers costs a log line, not a leak.
 *
 * No silent failures: an error answer or a timeout is logged at WARN once
 * per cause (kind, condition and text; a repeat is counted, not logged
 * again) and stays in `status` until a request of that kind succeeds.
 */
#ifndef GW_IQTRACK_H
#define GW_IQTRACK_H

#include <sys/queue.h>
#include <stddef.h>
#include <time.h>
#include <strophe.h>

struct gw;

/* what a request is for: each kind has its own problem in `status` */
enum gw_iq_kind {
	GW_IQ_ROSTER = 0,	/* XEP-0356 roster push or get */
	GW_IQ_VCARD,		/* a user's vCard (her avatar) */
	GW_IQ_UPLOAD,		/* an XEP-0363 upload slot */
	GW_IQ_DISCO,		/* disco#info/items */
	GW_IQ_PING,		/* XEP-0199 */
	GW_IQ_PEP,		/* a user's OMEMO keys for another gateway */
	GW_IQ_NKINDS
};

/* a kind's last failure, until one of its requests succeeds */
struct gw_iq_problem {
	char cause[256];	/* "" = none */
	char to[128];		/* where the last failed request went */
	unsigned count;
	time_t since, last;
};

/* iqtrack's state, a member of struct gw (all zero: nothing pending) */
struct gw_iqtrack {
	LIST_HEAD(, gw_iq_pending) pendings;
	void *by_id;		/* tsearch(3) tree of the pendings, by id */
	unsigned long long next_id;
	struct gw_iq_problem problems[GW_IQ_NKINDS];
	int closing;		/* in gw_iq_track_shutdown: no new requests */
};

/*
 * Called once: with the result/error iq (borrowed), or with NULL when the
 * request timed out, could not be sent, or the gateway is stopping.
 */
typedef void (*gw_iq_cb)(struct gw *gw, xmpp_stanza_t *reply, void *arg);

/* Sets a fresh id on `iq`, sends it (does not take ownership); 0 or -1
 * (in which case cb is NOT called).  `iq` must have a `to`: only a reply
 * from that JID (or from its server's domain, which answers for a user's
 * account) is taken as the answer. */
int gw_iq_request(struct gw *gw, xmpp_stanza_t *iq, enum gw_iq_kind kind,
    unsigned timeout_ms, gw_iq_cb cb, void *arg);
/* the router (route.c) asks first: a result/error iq; 1 if it carries one of our ids (a reply
 * from anyone but the addressee is then dropped with a log line) */
int gw_iq_track_route(struct gw *gw, xmpp_stanza_t *iq);
/* cancel everything (callbacks get NULL) */
void gw_iq_track_shutdown(struct gw *gw);

/*
 * An error iq as a short text: "internal-server-error (its text)", the
 * condition alone when there is no text, "no answer" for NULL.  Into buf;
 * returns buf.
 */
const char *gw_iq_error_text(xmpp_stanza_t *reply, char *buf, size_t len);
/* a kind's unresolved problem ("" when it works), e.g. "internal-server-
 * error (module_not_loaded) from example.org"; returns buf */
const char *gw_iq_problem(struct gw *gw, enum gw_iq_kind kind, char *buf,
    size_t len);
/* the `status` lines: one per kind with a problem, or "all answered";
 * each line ends in '\n'.  Returns buf. */
const char *gw_iq_track_status(struct gw *gw, char *buf, size_t len);
/* forget every recorded problem (tests; a fresh start) */
void gw_iq_track_reset(struct gw *gw);

#endif
