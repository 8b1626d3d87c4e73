/*
 * transfer — files across the bridge (issue 4; DESIGN.md "Flows": Files;
 * BAREV.md §6): one transfer's life cycle, and the peer's iqs sent to the
 * direction that owns them.  The directions are transfer_in.c (Barev ->
 * XMPP) and transfer_out.c (XMPP -> Barev); the spool directory is
 * transfer_spool.c, HTTP transfer_http.c and transfer_serve.c; what they
 * share is transfer_int.h.
 *
 * The one idea: a transfer is one `struct xfer` walking a short list of
 * states, with exactly one owner of each fd and one place (xfer_end) that
 * reports, records, unlinks and frees.  Callbacks that may outlive it (iq
 * answers) find it again by serial number, never by pointer.
 */
#include <sys/queue.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <strophe.h>

#include "barevlink.h"
#include "addr.h"
#include "clock.h"
#include "gw.h"
#include "log.h"
#include "rng.h"
#include "socks5.h"
#include "spooldrop.h"
#include "store.h"
#include "xmlstream.h"
#include "transfer.h"
#include "transfer_int.h"

struct xfer_module *
xfer_module(struct gw *gw)
{
	if (gw->xfer == NULL && (gw->xfer = calloc(1, sizeof(*gw->xfer))) != NULL) {
		LIST_INIT(&gw->xfer->all);
		LIST_INIT(&gw->xfer->ended);
	}
	return gw->xfer;
}

/* what the module owes the bridge: the user hears it from the contact */
void
xfer_to_user(struct xfer *x, xmpp_stanza_t *st)
{
	struct xfer_module *m = x->gw->xfer;

	if (m->ev.to_user != NULL)
		m->ev.to_user(m->ev_arg, x->contact, st);
	else
		xmpp_stanza_release(st);
}


struct xfer *
xfer_by_serial(struct gw *gw, uint64_t serial)
{
	struct xfer *x;

	if (gw->xfer == NULL)
		return NULL;
	LIST_FOREACH(x, &gw->xfer->all, entry)
		if (x->serial == serial)
			return x;
	return NULL;
}

void
xfer_human_size(uint64_t n, char *buf, size_t len)
{
	if (n < 1024)
		snprintf(buf, len, "%llu bytes", (unsigned long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, len, "%.1f KiB", n / 1024.0);
	else if (n < (uint64_t)1024 * 1024 * 1024)
		snprintf(buf, len, "%.1f MiB", n / (1024.0 * 1024));
	else
		snprintf(buf, len, "%.2f GiB", n / (1024.0 * 1024 * 1024));
}

/* ---- telling the user ----
 *
 * What the contact sent (a file's link) comes from the contact's JID; what
 * the gateway has to say about a transfer (progress, waiting, a file's
 * name) comes from the gateway JID, so it never looks like the contact
 * wrote it.  The outcome of a file she sent lands on the message that
 * carried its link: an XEP-0184 receipt, or a message error.
 */

xmpp_stanza_t *
xfer_user_message(struct xfer *x, const char *body, int from_gateway)
{
	xmpp_stanza_t *m = xmpp_stanza_new(xs_ctx());
	char from[STORE_JID_MAX + 16], id[64];

	if (m == NULL)
		return NULL;
	if (from_gateway)
		snprintf(from, sizeof(from), "%s", x->gw->cfg.component_jid);
	else
		snprintf(from, sizeof(from), "%s/barev", x->contact_jid);
	snprintf(id, sizeof(id), "xfer-%llu-%08x", (unsigned long long)x->serial,
	    (unsigned)cm_random_u32());
	xmpp_stanza_set_name(m, "message");
	xmpp_stanza_set_type(m, "chat");
	xmpp_stanza_set_from(m, from);
	xmpp_stanza_set_to(m, x->user_jid);
	xmpp_stanza_set_id(m, id);
	if (gw_add_text_child(m, "body", body) == -1) {
		xmpp_stanza_release(m);
		return NULL;
	}
	return m;
}

/* a note from the gateway JID */
void
xfer_tell(struct xfer *x, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	xmpp_stanza_t *m;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if ((m = xfer_user_message(x, text, 1)) == NULL) {
		log_warn("transfer", "could not tell %s: %s", x->user_jid, text);
		return;
	}
	xfer_to_user(x, m);	/* or the inbox, link down */
}

/* The peer has the file she sent: a receipt on her message if she asked
 * for one (XEP-0184 §5.2), else a note. */
void
xfer_tell_delivered(struct xfer *x)
{
	xmpp_stanza_t *m, *rc;
	char from[STORE_JID_MAX + 16], id[64], size[32];

	if (!x->want_receipt || x->msg_id == NULL || x->msg_from == NULL) {
		xfer_human_size(x->size, size, sizeof(size));
		xfer_tell(x, "“%s” (%s) delivered to %s.", x->name, size, x->peer_name);
		return;
	}
	snprintf(from, sizeof(from), "%s/barev", x->contact_jid);
	snprintf(id, sizeof(id), "xfer-rcpt-%llu", (unsigned long long)x->serial);
	if ((m = xmpp_stanza_new(xs_ctx())) == NULL ||
	    xmpp_stanza_set_name(m, "message") != XMPP_EOK ||
	    xmpp_stanza_set_from(m, from) != XMPP_EOK ||
	    xmpp_stanza_set_to(m, x->msg_from) != XMPP_EOK ||
	    xmpp_stanza_set_id(m, id) != XMPP_EOK ||
	    (rc = gw_add_child(m, "received", "urn:xmpp:receipts")) == NULL ||
	    xmpp_stanza_set_id(rc, x->msg_id) != XMPP_EOK) {
		if (m)
			xmpp_stanza_release(m);
		log_warn("transfer", "out of memory: no receipt for “%s” to %s",
		    x->name, x->msg_from);
		return;
	}
	xfer_to_user(x, m);
}

/* The file she sent did not reach the peer: an error on her message
 * (RFC 6120 §8.3, same id, from the contact), which clients show on it. */
static void
out_tell_failed(struct xfer *x, const char *text)
{
	xmpp_stanza_t *orig, *err = NULL;

	if (x->msg_id == NULL || x->msg_from == NULL) {
		xfer_tell(x, "%s", text);	/* nothing to hang an error on */
		return;
	}
	/* her message as it came, answered like any refused stanza */
	if ((orig = xmpp_stanza_new(xs_ctx())) != NULL &&
	    xmpp_stanza_set_name(orig, "message") == XMPP_EOK &&
	    xmpp_stanza_set_from(orig, x->msg_from) == XMPP_EOK &&
	    xmpp_stanza_set_to(orig, x->msg_to ? x->msg_to : x->contact_jid) == XMPP_EOK &&
	    xmpp_stanza_set_id(orig, x->msg_id) == XMPP_EOK)
		err = gw_error_reply(orig, "cancel", "not-acceptable", text);
	if (orig)
		xmpp_stanza_release(orig);
	if (err == NULL) {
		xfer_tell(x, "%s", text);
		return;
	}
	xfer_to_user(x, err);
}

/* ---- life cycle ---- */

/* No more callbacks for this transfer. */
static void
xfer_quiet(struct xfer *x)
{
	if (x->s5)
		s5_free(x->s5);
	if (x->http)
		xfer_http_free(x->http);
	if (x->timer)
		event_free(x->timer);
	if (x->tick)
		event_free(x->tick);
	x->s5 = NULL;
	x->http = NULL;
	x->timer = x->tick = NULL;
}

static void
xfer_release(struct xfer *x)
{
	xfer_quiet(x);
	spool_drop(x->gw, x->fd, x->path);	/* a long file: in steps */
	for (size_t i = 0; i < x->nsh; i++)
		free(x->sh_jid[i]);
	free(x->sh_jid);
	free(x->initiator);
	free(x->get_url);
	free(x->msg_from);
	free(x->msg_to);
	free(x->msg_id);
	free(x->name);
	free(x);
}

static void
reap(evutil_socket_t fd, short what, void *arg)
{
	struct xfer *x;

	struct xfer_module *m = arg;

	(void)fd;
	(void)what;
	while ((x = LIST_FIRST(&m->ended)) != NULL) {
		LIST_REMOVE(x, entry);
		xfer_release(x);
	}
}

/*
 * The one end of every transfer: record, tell the user (`why` NULL = the
 * caller already did), clean the spool, free.  The spool file goes on the
 * next loop turn, so the message that ended the transfer is written first
 * (a zero timer runs after the I/O its turn found ready), and a large one
 * in steps (spooldrop.c): freeing its blocks takes ~0.15-0.4 s per GiB.
 */
void
xfer_end(struct xfer *x, int ok, const char *why)
{
	static const struct timeval next_turn = { 0, 0 };
	struct xfer_module *m = x->gw->xfer;

	LIST_REMOVE(x, entry);
	if (x->row)
		store_transfer_set_state(x->gw->store, x->row, ok ? "done" : "failed",
		    NULL, ok ? NULL : (why ? why : "failed"), cm_wall_s());
	log_info("transfer", "%s %s “%s” %s %s: %s", x->out ? "to" : "from",
	    x->peer, x->name ? x->name : "?", x->out ? "from" : "for", x->user_jid,
	    ok ? "done" : (why ? why : "failed"));
	xfer_quiet(x);
	if (x->fd != -1 && (m->reaper ||
	    (m->reaper = evtimer_new(x->gw->base, reap, m)))) {
		LIST_INSERT_HEAD(&m->ended, x, entry);
		evtimer_add(m->reaper, &next_turn);
		return;
	}
	xfer_release(x);
}

void
xfer_fail(struct xfer *x, const char *fmt, ...)
{
	char why[512], size[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	xfer_human_size(x->size, size, sizeof(size));
	if (x->out) {
		char text[1024];

		snprintf(text, sizeof(text), "The file “%s”%s%s%s was not sent to"
		    " %s: %s.", x->name, x->size ? " (" : "", x->size ? size : "",
		    x->size ? ")" : "", x->peer_name, why);
		out_tell_failed(x, text);
	} else
		xfer_tell(x, "The file “%s” (%s) from %s could not be delivered to you: %s.",
		    x->name, size, x->peer_name, why);
	xfer_end(x, 0, why);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfer *x = arg;

	(void)fd;
	(void)what;
	switch (x->state) {
	case XS_IN_OFFERED:
		xfer_fail(x, "%s accepted nothing: the data connection never started",
		    x->peer_name);
		break;
	case XS_OUT_OFFERED:
		xfer_fail(x, "%s did not answer the offer in time", x->peer_name);
		break;
	case XS_OUT_WAITING:
		xfer_fail(x, "%s did not come online within a minute", x->peer_name);
		break;
	default:
		xfer_fail(x, "it timed out");
		break;
	}
}

int
xfer_s5_ended(struct xfer *x, int ok, const char *why)
{
	s5_free(x->s5);
	x->s5 = NULL;
	if (!ok)
		xfer_fail(x, "%s", why);
	return ok;
}

void
xfer_arm(struct xfer *x, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_add(x->timer, &tv);
}

uint64_t
xfer_bytes(struct xfer *x)
{
	if (x->s5)
		return s5_bytes(x->s5);
	if (x->http)
		return xfer_http_bytes(x->http);
	return 0;
}

/* Large transfers: one line per interval with real progress. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xfer *x = arg;
	uint64_t b = xfer_bytes(x);
	char done[32], all[32];
	const char *verb;

	(void)fd;
	(void)what;
	/* progress is for now: not held in the inbox like the other notes */
	if (!gw_link_is_up(x->gw) ||
	    b <= x->reported || x->size == 0 || b >= x->size)
		return;
	x->reported = b;
	xfer_human_size(b, done, sizeof(done));
	xfer_human_size(x->size, all, sizeof(all));
	switch (x->state) {
	case XS_IN_RECEIVING: verb = "receiving from"; break;
	case XS_IN_UPLOADING: verb = "uploading from"; break;
	case XS_OUT_DOWNLOADING: verb = "fetching for"; break;
	default: verb = "sending to"; break;
	}
	xfer_tell(x, "“%s”: %s %s, %d%% (%s of %s).", x->name, verb, x->peer_name,
	    (int)(b * 100 / x->size), done, all);
}

/* Read the identity and contact once; the transfer keeps copies. */
struct xfer *
xfer_new(struct gw *gw, int64_t contact, int out)
{
	struct store_contact c;
	struct store_identity id;
	struct xfer *x;
	struct timeval tv = { XFER_PROGRESS_MS / 1000, 0 };

	if (store_contact_get(gw->store, contact, &c) != STORE_OK ||
	    store_identity_get(gw->store, c.identity_id, &id) != STORE_OK)
		return NULL;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->gw = gw;
	x->fd = -1;
	x->serial = ++gw->xfer->next_serial;
	x->ident = id.id;
	x->contact = contact;
	x->out = out;
	snprintf(x->user_jid, sizeof(x->user_jid), "%s", id.jid);
	snprintf(x->peer_name, sizeof(x->peer_name), "%s", c.name[0] ? c.name : c.nick);
	snprintf(x->me, sizeof(x->me), "%s@%s", id.nick, id.address);
	snprintf(x->peer, sizeof(x->peer), "%s@%s", c.nick, c.address);
	snprintf(x->my_addr, sizeof(x->my_addr), "%s", id.address);
	snprintf(x->peer_addr, sizeof(x->peer_addr), "%s", c.address);
	if (gw_contact_jid(c.nick, c.address, c.port, gw->cfg.component_jid,
	    x->contact_jid, sizeof(x->contact_jid)) == -1 ||
	    (x->timer = evtimer_new(gw->base, timer_cb, x)) == NULL ||
	    (x->tick = event_new(gw->base, -1, EV_PERSIST, tick_cb, x)) == NULL) {
		xfer_release(x);
		return NULL;
	}
	event_add(x->tick, &tv);
	LIST_INSERT_HEAD(&gw->xfer->all, x, entry);
	return x;
}

/*
 * What Barev, HTTP and the user may see of a file name: no path, no control
 * bytes, and UTF-8 (a percent-decoded link or a peer's offer may hold any
 * bytes; ill-formed sequences become U+FFFD, issue 15).
 */
char *
xfer_clean_name(const char *in)
{
	const char *base = in;
	char *out, *o, *fixed;

	for (const char *p = in; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	if ((out = malloc(strlen(base) + 5)) == NULL)
		return NULL;
	for (o = out; *base; base++)
		if ((unsigned char)*base >= 0x20 && *base != 0x7f)
			*o++ = *base;
	*o = '\0';
	fixed = xs_utf8_repair(out);
	free(out);
	if (fixed == NULL)
		return NULL;
	if (strcmp(fixed, "") == 0 || strcmp(fixed, ".") == 0 ||
	    strcmp(fixed, "..") == 0) {
		free(fixed);
		return strdup("file");
	}
	return fixed;
}

uint64_t
xfer_max_size(struct gw *gw)
{
	uint64_t m = gw->cfg.max_file_size ? gw->cfg.max_file_size : 100u << 20;

	return m < XFER_PURPLE_MAX ? m : XFER_PURPLE_MAX - 1;
}

int
xfer_send_to_peer(struct xfer *x, xmpp_stanza_t *st)
{
	int rc = bl_send_stanza(x->gw->bl, x->contact, st, 0);

	xmpp_stanza_release(st);
	return rc;
}

/* The name in the link's last path segment, percent-decoded. */
char *
xfer_name_of_url(const char *url)
{
	const char *p = strstr(url, "://"), *slash, *end;
	char *raw, *dec, *out;

	p = p ? p + 3 : url;
	end = p + strcspn(p, "?#");
	slash = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '/')
			slash = q;
	if (slash == NULL || slash + 1 >= end)
		return strdup("file");
	raw = strndup(slash + 1, (size_t)(end - slash - 1));
	dec = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
	free(raw);
	if (dec == NULL)
		return NULL;
	out = xfer_clean_name(dec);
	free(dec);
	return out;
}

/* ======================= peer iqs ======================= */

static struct xfer *
find(struct gw *gw, int64_t contact, int out, const char *sid, const char *id)
{
	struct xfer *x;

	if (gw->xfer == NULL)
		return NULL;
	LIST_FOREACH(x, &gw->xfer->all, entry) {
		if (x->contact != contact || x->out != out)
			continue;
		if (sid && strcmp(x->sid, sid) == 0)
			return x;
		if (id && (strcmp(x->sid, id) == 0 || strcmp(x->bs_id, id) == 0))
			return x;
	}
	return NULL;
}

int
transfer_peer_iq(struct gw *gw, int64_t ident, int64_t contact, xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq), *id = xmpp_stanza_get_id(iq);
	xmpp_stanza_t *si = xmpp_stanza_get_child_by_name(iq, "si");
	xmpp_stanza_t *q = xmpp_stanza_get_child_by_name(iq, "query");
	struct xfer *x;

	(void)ident;
	if (type == NULL)
		return 0;
	if (q && !(xmpp_stanza_get_ns(q) && strcmp(xmpp_stanza_get_ns(q), NS_BS) == 0))
		q = NULL;
	if (strcmp(type, "set") == 0 && si)
		return xfer_in_offer(gw, contact, iq, si);
	if (strcmp(type, "set") == 0 && q) {
		if ((x = find(gw, contact, 0, xfer_attr_of(q, "sid"), NULL)) == NULL ||
		    x->state != XS_IN_OFFERED)
			return 0;	/* the bridge refuses it */
		return xfer_in_streamhosts(gw, x, iq, q);
	}
	if (strcmp(type, "result") != 0 && strcmp(type, "error") != 0)
		return 0;
	/* answers to our offer and to our streamhosts */
	if (id == NULL || (x = find(gw, contact, 1, NULL, id)) == NULL)
		return 0;
	if (x->state == XS_OUT_OFFERED && strcmp(id, x->sid) == 0) {
		if (strcmp(type, "error") == 0)
			xfer_fail(x, "%s declined it", x->peer_name);
		else
			xfer_out_accepted(x);
	} else if (x->state == XS_OUT_SENDING && strcmp(id, x->bs_id) == 0 &&
	    strcmp(type, "error") == 0) {
		xfer_fail(x, "%s could not connect to the gateway for the data", x->peer_name);
	}
	return 1;	/* streamhost-used: nothing to do, the bytes say it all */
}

/* ======================= events from the bridge ======================= */

void
transfer_pipe_up(struct gw *gw, int64_t contact)
{
	struct xfer *x, *next;

	if (gw->xfer == NULL)
		return;
	for (x = LIST_FIRST(&gw->xfer->all); x; x = next) {
		next = LIST_NEXT(x, entry);
		if (x->contact == contact && x->state == XS_OUT_WAITING)
			xfer_out_offer(x);
	}
}

void
transfer_pipe_down(struct gw *gw, int64_t contact)
{
	struct xfer *x, *next;

	if (gw->xfer == NULL)
		return;
	/* negotiation needs the pipe; data connections stand on their own */
	for (x = LIST_FIRST(&gw->xfer->all); x; x = next) {
		next = LIST_NEXT(x, entry);
		if (x->contact == contact &&
		    (x->state == XS_IN_OFFERED || x->state == XS_OUT_OFFERED))
			xfer_fail(x, "the connection to %s dropped", x->peer_name);
	}
}

void
transfer_forget_contact(struct gw *gw, int64_t contact)
{
	struct xfer *x, *next;

	if (gw->xfer == NULL)
		return;
	for (x = LIST_FIRST(&gw->xfer->all); x; x = next) {
		next = LIST_NEXT(x, entry);
		if (x->contact == contact)
			xfer_end(x, 0, "the contact was removed");
	}
}

/* ======================= start / stop ======================= */

int
transfer_start(struct gw *gw, const struct transfer_events *ev, void *arg)
{
	struct xfer_module *m = xfer_module(gw);
	int failed = 0;

	if (m == NULL)
		return -1;
	m->ev = *ev;
	m->ev_arg = arg;

	xfer_spool_prepare(gw);
	if (store_transfer_fail_unfinished(gw->store, "the gateway restarted", cm_wall_s(),
	    &failed) == STORE_OK && failed)
		log_info("transfer", "%d transfer(s) cut by the last stop marked failed", failed);
	if (xfer_http_tls_init(gw) == -1)
		return -1;
	if (gw->cfg.upload_service[0] == '\0' && gw->cfg.http_listen[0])
		return xfer_serve_start(gw) == -1 || xfer_spool_sweep_start(gw) == -1 ? -1 : 0;
	return 0;
}

void
transfer_stop(struct gw *gw)
{
	struct xfer_module *m = gw->xfer;

	if (m != NULL) {
		while (!LIST_EMPTY(&m->all))
			xfer_fail(LIST_FIRST(&m->all), "the gateway is shutting down");
		reap(-1, 0, m);
		if (m->reaper) {
			event_free(m->reaper);
			m->reaper = NULL;
		}
		xfer_spool_stop(gw);
		xfer_serve_stop(gw);
		xfer_http_shutdown(gw);
		/* nothing names the bridge once it stops */
		memset(&m->ev, 0, sizeof(m->ev));
		m->ev_arg = NULL;
	}
	spool_drops_stop(gw);
}

void
transfer_free(struct gw *gw)
{
	if (gw->xfer == NULL)
		return;
	transfer_stop(gw);
	gw->xfer->keep_tls = 0;
	xfer_http_shutdown(gw);
	free(gw->xfer);
	gw->xfer = NULL;
}
