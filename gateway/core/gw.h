/*
 * gw — the daemon context and the few functions every module shares:
 * sending through the component link and building replies (core/gw.c).
 *
 * One `struct gw` per process, created by main.c; modules get it as their
 * first argument and read the configuration from gw->cfg.  It lives in
 * gateway/core/, below every module that keeps state in it: a module's
 * state is a pointer to a struct only that module defines.
 */
#ifndef GW_GW_H
#define GW_GW_H

#include <time.h>
#include <strophe.h>

#include "config.h"
#include "iqtrack.h"
#include "service.h"

struct event;
struct event_base;
struct evhttp;
struct comp;
struct store;
struct bl;
struct bridge;
struct spool_drops;
struct av_state;
struct cmd_sessions;
struct xfer_module;

#define NS_STANZAS	"urn:ietf:params:xml:ns:xmpp-stanzas"

/* bumped by bridge/ (outbox.c, inbox.c): bodies handed to a pipe / sent to the user */
struct gw_counters {
	unsigned long long msgs_to_barev, bytes_to_barev;
	unsigned long long msgs_to_xmpp, bytes_to_xmpp;
};

struct gw {
	struct gw_config cfg;		/* current; SIGHUP swaps safe keys */
	struct event_base *base;
	struct comp *comp;		/* the XEP-0114 link */
	time_t started_at;
	int link_ever_up;
	int stopping;
	int link_closed;		/* comp reported `closed` while stopping */

	/* ---- store and Barev side (gateway/store/, bridge.c) ---- */
	struct store *store;
	struct bl *bl;			/* owned by bridge.c */
	struct bridge *bridge;		/* bridge.c's state */
	struct gw_iqtrack iq;		/* iqtrack.c: requests to the server */

	/*
	 * ---- module state: one gateway's, not the process's (issue 11);
	 * zero is the start state of each ----
	 */
	struct gw_counters counters;	/* metrics.h: messages and bytes */
	struct evhttp *metrics_http;	/* admin/metrics.c: serves metrics_path */
	unsigned roster_push_ms;	/* roster.c: 0 = the default; tests */
	struct gw_service service;	/* service.c: features, disco hooks */
	struct cmd_sessions *cmd;	/* admin/cmdsession.c: open XEP-0050 forms */
	struct spool_drops *drops;	/* transfer/spooldrop.c: files being freed */
	struct av_state *avatar;	/* avatar/: owners, fetches, images */
	struct xfer_module *xfer;	/* transfer/: transfers, spool, HTTP */

	/* ---- main.c's own events ---- */
	struct event *ev_term;
	struct event *ev_int;
	struct event *ev_hup;
	struct event *ev_watchdog;
	struct event *ev_upkeep;	/* upkeep.c: the hourly prune */

	/*
	 * Test seam: when set, gw_send() hands stanzas here instead of to the
	 * component, so routing and replies are testable without sockets.
	 */
	int (*send_fn)(struct gw *, xmpp_stanza_t *);
};

/* a graceful stop may be able to end now (link closed, pipes
 * drained); harmless to call at any time */
void gw_stop_progress(struct gw *gw);

/* send through the link; comp_send()'s result (-1 link down,
 * -2 too large), logged at debug when it fails */
int gw_send(struct gw *gw, xmpp_stanza_t *st);

/* gw_send(), then release `st`; NULL (a builder out of memory) is -1 */
int gw_send_release(struct gw *gw, xmpp_stanza_t *st);

/* the component link is up (stanzas sent now reach the server) */
int gw_link_is_up(const struct gw *gw);

/* `jid` is the component itself (no localpart; any resource) */
int gw_is_component_jid(const struct gw *gw, const char *jid);

/*
 * Replies.  Each swaps to/from and keeps the id; `st` is not modified.
 * gw_error_reply(): <error type=TYPE><COND xmlns=NS_STANZAS/>[<text>]</error>
 * (type: cancel|modify|auth|wait).  NULL on allocation failure.
 */
xmpp_stanza_t *gw_iq_result(xmpp_stanza_t *iq);
xmpp_stanza_t *gw_error_reply(xmpp_stanza_t *st, const char *type,
    const char *cond, const char *text);
/* build and send an error reply, unless `st` is itself an error (never
 * answer an error with an error) or has no `from` */
void gw_reply_error(struct gw *gw, xmpp_stanza_t *st, const char *type,
    const char *cond, const char *text);

/* a new child element <name xmlns=ns/> (ns may be NULL) appended to
 * parent; returns it (borrowed), NULL on allocation failure */
xmpp_stanza_t *gw_add_child(xmpp_stanza_t *parent, const char *name,
    const char *ns);
/* <name>text</name> appended to parent; 0 or -1 */
int gw_add_text_child(xmpp_stanza_t *parent, const char *name,
    const char *text);

#endif
