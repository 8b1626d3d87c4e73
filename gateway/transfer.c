/*
 * transfer — files across the bridge (issue 4; DESIGN.md "Flows": Files;
 * BAREV.md §6).
 *
 * Barev -> XMPP: a peer's SI offer is accepted (size cap, a spool file),
 * its streamhosts are tried (barevlink/socks5.c) until exactly `size` bytes
 * are on disk; meanwhile the upload slot is asked for at once (name and size
 * are in the offer) and the PUT follows the spool file as it grows, so the
 * upload overlaps the receive.  When both are done the user gets a message
 * whose body is the URL, plus jabber:x:oob with the file name.  Without an
 * upload service the whole file moves into the gateway's own HTTP spool.
 * XMPP -> Barev: a message whose OOB URL (or whole body) is an http(s) URL
 * on an allowed host is downloaded into the spool, offered to the peer
 * with its real name and size, and served on 50000-50049 to the peer's
 * address only; the user hears "delivered" or why not.
 *
 * The one idea: a transfer is one `struct xfer` walking a short list of
 * states, with exactly one owner of each fd and one place (xfer_end) that
 * reports, records, unlinks and frees.  Callbacks that may outlive it (iq
 * answers) find it again by serial number, never by pointer.  An incoming
 * file runs two things side by side: the receive (`state`) and the upload
 * (`up`); the spool file between them is what makes it robust — an upload
 * that fails before the end is tried once more from the complete file.
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "bridge.h"
#include "clock.h"
#include "component.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "provision.h"
#include "rng.h"
#include "socks5.h"
#include "spooldrop.h"
#include "store.h"
#include "xmlstream.h"
#include "transfer.h"
#include "transfer_limits.h"

#define NS_SI		"http://jabber.org/protocol/si"
#define NS_SI_FT	"http://jabber.org/protocol/si/profile/file-transfer"
#define NS_FNEG		"http://jabber.org/protocol/feature-neg"
#define NS_XDATA	"jabber:x:data"
#define NS_BS		"http://jabber.org/protocol/bytestreams"
#define NS_OOB		"jabber:x:oob"
#define NS_UPLOAD	"urn:xmpp:http:upload:0"

#define XFER_PURPLE_MAX		((uint64_t)2 << 30)	/* >= 2 GiB breaks purple (§6.6) */
#define XFER_STREAMHOSTS_MS	60000	/* accepted offer -> streamhosts */
#define XFER_ANSWER_MS		300000	/* our offer -> accept/decline (a human clicks) */
#define XFER_SLOT_MS		30000
#define XFER_PIPE_WAIT_MS	60000	/* fetched, the peer's pipe still down */
#define XFER_PROGRESS_MS	30000	/* large transfers: a line this often */
#define XFER_REFUSAL_NOTE_MS	60000	/* offers over a limit: a note per contact+reason */

enum xfer_state {
	XS_IN_OFFERED,		/* we accepted; waiting for streamhosts */
	XS_IN_RECEIVING,	/* SOCKS5 into the spool (the upload runs alongside) */
	XS_IN_SLOT,		/* all received; XEP-0363 slot request in flight */
	XS_IN_UPLOADING,	/* all received; the PUT sends the rest */
	XS_OUT_DOWNLOADING,	/* GET into the spool */
	XS_OUT_WAITING,		/* fetched; waiting for the peer's pipe */
	XS_OUT_OFFERED,		/* SI offer sent; waiting for the answer */
	XS_OUT_SENDING,		/* SOCKS5 from the spool */
};

/* Barev -> XMPP: the upload, alongside the receive */
enum xfer_up {
	XU_IDLE,		/* nothing in flight (not asked yet, or failed early) */
	XU_SLOT,		/* slot request in flight */
	XU_PUT,			/* PUT running, fed from the spool as bytes land */
	XU_DONE,		/* the server has every byte */
};

struct xfer {
	LIST_ENTRY(xfer) entry;
	struct gw *gw;
	uint64_t serial;
	int64_t row, ident, contact;
	int out;			/* XMPP -> Barev */
	enum xfer_state state;
	enum xfer_up up;
	int received;			/* every byte is in the spool */
	int last_try;			/* the upload after the receive: failures are final */
	char sid[72];
	char bs_id[96];			/* the bytestreams iq's id */
	char *name;
	uint64_t size;
	char path[PATH_MAX];		/* spool file; "" once gone */
	int fd;
	char user_jid[STORE_JID_MAX];	/* alice@example.org */
	char contact_jid[STORE_JID_MAX];	/* bob\40…@barev.example.org */
	char peer_name[STORE_NAME_MAX + 1];	/* how the user knows the peer */
	char me[STORE_NICK_MAX + STORE_ADDR_MAX + 2];	/* alice@201:1::1 */
	char peer[STORE_NICK_MAX + STORE_ADDR_MAX + 2];	/* bob@201:2::2 */
	char my_addr[STORE_ADDR_MAX], peer_addr[STORE_ADDR_MAX];
	char *initiator;		/* the offer's from, for the SOCKS5 hash */
	char *get_url;			/* the slot's GET url while the PUT runs */
	/* XMPP -> Barev: the message that carried the link, for its outcome
	 * (XEP-0184 receipt or a message error on it) */
	char *msg_from;			/* her full JID */
	char *msg_to;			/* the contact JID as she wrote it */
	char *msg_id;			/* NULL: the message had no id */
	int want_receipt;
	char **sh_jid;			/* streamhost jids, by index */
	size_t nsh;
	struct s5 *s5;
	struct xfer_http *http;
	struct event *timer;		/* the current phase's deadline */
	struct event *tick;		/* progress */
	uint64_t reported;
};

static LIST_HEAD(, xfer) xfers = LIST_HEAD_INITIALIZER(xfers);
static uint64_t next_serial;
/* ended, their spool files still to remove (xfer_end) */
static LIST_HEAD(, xfer) ended = LIST_HEAD_INITIALIZER(ended);
static struct event *reaper;
static struct event *sweeper;		/* expires served files */
/* bytes in SPOOL/served: counted at start and by each sweep, grown by
 * in_serve(); they count against spool_quota */
static uint64_t served_bytes;
/* offers refused over a limit: when each contact's user was last told */
static struct xl_notes refusal_notes;

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static struct xfer *
xfer_by_serial(uint64_t serial)
{
	struct xfer *x;

	LIST_FOREACH(x, &xfers, entry)
		if (x->serial == serial)
			return x;
	return NULL;
}

static void
human_size(uint64_t n, char *buf, size_t len)
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

static xmpp_stanza_t *
user_message(struct xfer *x, const char *body, int from_gateway)
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
static void
tell(struct xfer *x, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	xmpp_stanza_t *m;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if ((m = user_message(x, text, 1)) == NULL) {
		log_warn("transfer", "could not tell %s: %s", x->user_jid, text);
		return;
	}
	bridge_to_user(x->gw, x->contact, m);	/* or the inbox, link down */
}

/* The peer has the file she sent: a receipt on her message if she asked
 * for one (XEP-0184 §5.2), else a note. */
static void
out_tell_delivered(struct xfer *x)
{
	xmpp_stanza_t *m, *rc;
	char from[STORE_JID_MAX + 16], id[64], size[32];

	if (!x->want_receipt || x->msg_id == NULL || x->msg_from == NULL) {
		human_size(x->size, size, sizeof(size));
		tell(x, "“%s” (%s) delivered to %s.", x->name, size, x->peer_name);
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
	bridge_to_user(x->gw, x->contact, m);
}

/* The file she sent did not reach the peer: an error on her message
 * (RFC 6120 §8.3, same id, from the contact), which clients show on it. */
static void
out_tell_failed(struct xfer *x, const char *text)
{
	xmpp_stanza_t *orig, *err = NULL;

	if (x->msg_id == NULL || x->msg_from == NULL) {
		tell(x, "%s", text);	/* nothing to hang an error on */
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
		tell(x, "%s", text);
		return;
	}
	bridge_to_user(x->gw, x->contact, err);
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

	(void)fd;
	(void)what;
	(void)arg;
	while ((x = LIST_FIRST(&ended)) != NULL) {
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
static void
xfer_end(struct xfer *x, int ok, const char *why)
{
	static const struct timeval next_turn = { 0, 0 };

	LIST_REMOVE(x, entry);
	if (x->row)
		store_transfer_set_state(x->gw->store, x->row, ok ? "done" : "failed",
		    NULL, ok ? NULL : (why ? why : "failed"), now_s());
	log_info("transfer", "%s %s “%s” %s %s: %s", x->out ? "to" : "from",
	    x->peer, x->name ? x->name : "?", x->out ? "from" : "for", x->user_jid,
	    ok ? "done" : (why ? why : "failed"));
	xfer_quiet(x);
	if (x->fd != -1 && (reaper || (reaper = evtimer_new(x->gw->base, reap, NULL)))) {
		LIST_INSERT_HEAD(&ended, x, entry);
		evtimer_add(reaper, &next_turn);
		return;
	}
	xfer_release(x);
}

static void
xfer_fail(struct xfer *x, const char *fmt, ...)
{
	char why[512], size[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	human_size(x->size, size, sizeof(size));
	if (x->out) {
		char text[1024];

		snprintf(text, sizeof(text), "The file “%s”%s%s%s was not sent to"
		    " %s: %s.", x->name, x->size ? " (" : "", x->size ? size : "",
		    x->size ? ")" : "", x->peer_name, why);
		out_tell_failed(x, text);
	} else
		tell(x, "The file “%s” (%s) from %s could not be delivered to you: %s.",
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

static void
arm(struct xfer *x, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_add(x->timer, &tv);
}

static uint64_t
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
	if (comp_state(x->gw->comp) != COMP_UP ||
	    b <= x->reported || x->size == 0 || b >= x->size)
		return;
	x->reported = b;
	human_size(b, done, sizeof(done));
	human_size(x->size, all, sizeof(all));
	switch (x->state) {
	case XS_IN_RECEIVING: verb = "receiving from"; break;
	case XS_IN_UPLOADING: verb = "uploading from"; break;
	case XS_OUT_DOWNLOADING: verb = "fetching for"; break;
	default: verb = "sending to"; break;
	}
	tell(x, "“%s”: %s %s, %d%% (%s of %s).", x->name, verb, x->peer_name,
	    (int)(b * 100 / x->size), done, all);
}

/* Read the identity and contact once; the transfer keeps copies. */
static struct xfer *
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
	x->serial = ++next_serial;
	x->ident = id.id;
	x->contact = contact;
	x->out = out;
	snprintf(x->user_jid, sizeof(x->user_jid), "%s", id.jid);
	snprintf(x->peer_name, sizeof(x->peer_name), "%s", c.name[0] ? c.name : c.nick);
	snprintf(x->me, sizeof(x->me), "%s@%s", id.nick, id.address);
	snprintf(x->peer, sizeof(x->peer), "%s@%s", c.nick, c.address);
	snprintf(x->my_addr, sizeof(x->my_addr), "%s", id.address);
	snprintf(x->peer_addr, sizeof(x->peer_addr), "%s", c.address);
	if (prov_contact_jid(gw, &c, x->contact_jid, sizeof(x->contact_jid)) == -1 ||
	    (x->timer = evtimer_new(gw->base, timer_cb, x)) == NULL ||
	    (x->tick = event_new(gw->base, -1, EV_PERSIST, tick_cb, x)) == NULL) {
		xfer_release(x);
		return NULL;
	}
	event_add(x->tick, &tv);
	LIST_INSERT_HEAD(&xfers, x, entry);
	return x;
}

/* A fresh spool file under SPOOL/tmp, opened read-write. */
static int
spool_create(struct xfer *x)
{
	snprintf(x->path, sizeof(x->path), "%s/tmp/%s-%llu-XXXXXX",
	    x->gw->cfg.spool_dir, x->out ? "out" : "in", (unsigned long long)x->serial);
	if ((x->fd = mkostemp(x->path, O_CLOEXEC)) == -1) {
		log_error("transfer", "cannot create a spool file in %s/tmp: %s",
		    x->gw->cfg.spool_dir, strerror(errno));
		x->path[0] = '\0';
		return -1;
	}
	return 0;
}

/*
 * What Barev, HTTP and the user may see of a file name: no path, no control
 * bytes, and UTF-8 (a percent-decoded link or a peer's offer may hold any
 * bytes; ill-formed sequences become U+FFFD, issue 15).
 */
static char *
clean_name(const char *in)
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

static uint64_t
max_size(struct gw *gw)
{
	uint64_t m = gw->cfg.max_file_size ? gw->cfg.max_file_size : 100u << 20;

	return m < XFER_PURPLE_MAX ? m : XFER_PURPLE_MAX - 1;
}

static int
send_to_peer(struct xfer *x, xmpp_stanza_t *st)
{
	int rc = bl_send_stanza(x->gw->bl, x->contact, st, 0);

	xmpp_stanza_release(st);
	return rc;
}

/* ======================= Barev -> XMPP ======================= */

static void in_slot(struct gw *gw, xmpp_stanza_t *reply, void *arg);
static char *name_of_url(const char *url);

/* The URL is ready: the message the user's client turns into a file. */
static void
in_deliver(struct xfer *x, const char *url)
{
	xmpp_stanza_t *m = user_message(x, url, 0), *oob;
	char *shown, size[32];

	if (m && (oob = gw_add_child(m, "x", NS_OOB)) != NULL) {
		gw_add_text_child(oob, "url", url);
		gw_add_text_child(oob, "desc", x->name);
	}
	if (m == NULL)
		log_warn("transfer", "could not send the link for “%s” to %s", x->name,
		    x->user_jid);
	else
		bridge_to_user(x->gw, x->contact, m);	/* or the inbox, link down */
	/* clients that show only the link: its name, when the link lacks it */
	if ((shown = name_of_url(url)) != NULL && strcmp(shown, x->name) != 0) {
		human_size(x->size, size, sizeof(size));
		tell(x, "%s sent you “%s” (%s): the link above.", x->peer_name,
		    x->name, size);
	}
	free(shown);
	store_transfer_set_state(x->gw->store, x->row, "done", url, NULL, now_s());
	xfer_end(x, 1, NULL);
}

/* Received and uploaded: the slot's GET url goes to the user. */
static void
in_deliver_upload(struct xfer *x)
{
	char *url = x->get_url;

	x->get_url = NULL;
	in_deliver(x, url);
	free(url);
}

static const char *
attr_of(xmpp_stanza_t *st, const char *name)
{
	return st ? xmpp_stanza_get_attribute(st, name) : NULL;
}

/* XEP-0363 §4: a slot for the offer's name and size, asked as the component. */
static int
in_request_slot(struct xfer *x)
{
	struct gw *gw = x->gw;
	xmpp_stanza_t *iq, *req;
	char size[32];

	if ((iq = xmpp_stanza_new(xs_ctx())) == NULL)
		return -1;
	xmpp_stanza_set_name(iq, "iq");
	xmpp_stanza_set_type(iq, "get");
	xmpp_stanza_set_from(iq, gw->cfg.component_jid);
	xmpp_stanza_set_to(iq, gw->cfg.upload_service);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)x->size);
	if ((req = gw_add_child(iq, "request", NS_UPLOAD)) == NULL ||
	    xmpp_stanza_set_attribute(req, "filename", x->name) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(req, "size", size) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(req, "content-type", "application/octet-stream") != XMPP_EOK ||
	    gw_iq_request(gw, iq, GW_IQ_UPLOAD, XFER_SLOT_MS, in_slot,
	    (void *)(uintptr_t)x->serial) == -1) {
		xmpp_stanza_release(iq);
		return -1;
	}
	xmpp_stanza_release(iq);
	x->up = XU_SLOT;
	return 0;
}

/* The last try: every byte is in the spool; its failures are final. */
static void
in_upload_last(struct xfer *x)
{
	x->last_try = 1;
	x->state = XS_IN_SLOT;
	if (in_request_slot(x) == -1)
		xfer_fail(x, "the gateway could not ask your server for an upload slot");
}

/*
 * The upload failed; `fmt` says why, for the user.  The try that started
 * with the offer gets a second chance from the complete spool file (now,
 * or when the receive ends); the last try's failure ends the transfer.
 */
static void
in_upload_failed(struct xfer *x, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);	/* before `why` args are freed */
	va_end(ap);
	if (x->http) {
		xfer_http_free(x->http);
		x->http = NULL;
	}
	free(x->get_url);
	x->get_url = NULL;
	x->up = XU_IDLE;
	if (x->last_try) {
		log_warn("transfer", "“%s” from %s for %s: %s", x->name, x->peer,
		    x->user_jid, why);
		xfer_fail(x, "%s", why);
		return;
	}
	log_warn("transfer", "“%s” from %s for %s: %s; it is uploaded again once "
	    "it is all in the spool", x->name, x->peer, x->user_jid, why);
	if (x->received)
		in_upload_last(x);
}

static void
in_uploaded(void *arg, int ok, const char *why)
{
	struct xfer *x = arg;

	if (!ok) {
		in_upload_failed(x, "the upload to your server failed (%s)", why);
		return;
	}
	xfer_http_free(x->http);
	x->http = NULL;
	x->up = XU_DONE;
	/* a 2xx comes only after the last byte, so the receive has ended;
	 * if not, in_received() delivers */
	if (x->received)
		in_deliver_upload(x);
}

static void
in_slot(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	struct xfer *x = xfer_by_serial((uint64_t)(uintptr_t)arg);
	xmpp_stanza_t *slot, *put, *get, *h;
	const char *hdrs[16];
	char *vals[6] = { 0 };
	size_t nh = 0, nv = 0;
	const char *type;
	uint64_t on_disk;

	(void)gw;
	if (x == NULL || x->up != XU_SLOT)
		return;		/* ended meanwhile */
	if (reply == NULL) {
		in_upload_failed(x, "your server's upload service did not answer");
		return;
	}
	/* a refusal or a useless answer will not change: end it now, even
	 * while the receive runs (the peer sees the data connection close) */
	type = xmpp_stanza_get_type(reply);
	if (type && strcmp(type, "error") == 0) {
		char cause[256];

		/* iqtrack logged the cause at WARN; status shows it */
		xfer_fail(x, "your server's upload service refused it: %s",
		    gw_iq_error_text(reply, cause, sizeof(cause)));
		return;
	}
	slot = xmpp_stanza_get_child_by_name(reply, "slot");
	put = slot ? xmpp_stanza_get_child_by_name(slot, "put") : NULL;
	get = slot ? xmpp_stanza_get_child_by_name(slot, "get") : NULL;
	if (attr_of(put, "url") == NULL || attr_of(get, "url") == NULL) {
		xfer_fail(x, "your server's upload service sent no usable slot");
		return;
	}
	/* XEP-0363 §5: only these headers may be passed on */
	for (h = xmpp_stanza_get_children(put); h && nv < 6; h = xmpp_stanza_get_next(h)) {
		const char *n = attr_of(h, "name");

		if (xmpp_stanza_get_name(h) == NULL || strcmp(xmpp_stanza_get_name(h), "header") ||
		    n == NULL || (strcasecmp(n, "Authorization") && strcasecmp(n, "Cookie") &&
		    strcasecmp(n, "Expires")))
			continue;
		if ((vals[nv] = xmpp_stanza_get_text(h)) == NULL)
			continue;
		hdrs[nh++] = n;
		hdrs[nh++] = vals[nv++];
	}
	hdrs[nh] = NULL;
	x->get_url = strdup(attr_of(get, "url"));
	/* the PUT announces the whole size and sends what is on disk; the
	 * receiver's progress moves it on (in_s5_progress) */
	on_disk = x->received ? x->size : x->s5 ? s5_bytes(x->s5) : 0;
	x->http = xfer_http_put_growing(x->gw, attr_of(put, "url"), hdrs,
	    "application/octet-stream", x->fd, x->size, on_disk, in_uploaded, x);
	for (size_t i = 0; i < nv; i++)
		free(vals[i]);
	if (x->http == NULL || x->get_url == NULL) {
		in_upload_failed(x, "the upload could not start");
		return;
	}
	x->up = XU_PUT;
	if (x->received) {
		x->state = XS_IN_UPLOADING;
		x->reported = 0;
	}
}

/* No upload service: the file moves to SPOOL/served and our listener has it. */
static void
in_serve(struct xfer *x)
{
	char token[33], dst[PATH_MAX], *url, *esc;
	const char *base = x->gw->cfg.http_public_url;
	size_t bl = strlen(base), ul;

	cm_random_hex(token, sizeof(token), 16);
	/* libevent percent-encodes all but RFC 3986's unreserved characters,
	 * however long the name (our own url_escape cut it off at 2 KiB) */
	if ((esc = evhttp_uriencode(x->name, -1, 0)) == NULL) {
		xfer_fail(x, "the gateway ran out of memory");
		return;
	}
	if (bl > 0 && base[bl - 1] == '/')
		bl--;
	ul = bl + 1 + sizeof(token) + strlen(esc) + 1;
	url = malloc(ul);
	if (url != NULL)
		snprintf(url, ul, "%.*s/%s/%s", (int)bl, base, token, esc);
	free(esc);
	if (url == NULL) {
		xfer_fail(x, "the gateway ran out of memory");
		return;
	}
	snprintf(dst, sizeof(dst), "%s/served/%s", x->gw->cfg.spool_dir, token);
	if (rename(x->path, dst) == -1) {
		free(url);
		xfer_fail(x, "the gateway could not keep the file (%s)", strerror(errno));
		return;
	}
	x->path[0] = '\0';
	served_bytes += x->size;
	in_deliver(x, url);
	free(url);
}

/* Every byte is in the spool; the upload may still be on its way. */
static void
in_received(struct xfer *x)
{
	x->received = 1;
	x->state = XS_IN_SLOT;
	if (x->gw->cfg.upload_service[0] == '\0') {
		in_serve(x);
		return;
	}
	store_transfer_set_state(x->gw->store, x->row, "uploading", NULL, NULL, now_s());
	switch (x->up) {
	case XU_IDLE:		/* never asked, or the first try failed */
		in_upload_last(x);
		break;
	case XU_SLOT:
		break;
	case XU_PUT:
		x->state = XS_IN_UPLOADING;
		x->reported = 0;
		xfer_http_put_avail(x->http, x->size);
		break;
	case XU_DONE:
		in_deliver_upload(x);
		break;
	}
}

static void
in_s5_connected(void *arg, size_t i)
{
	struct xfer *x = arg;
	xmpp_stanza_t *iq = xmpp_stanza_new(xs_ctx()), *q, *used;

	/* blocks for the whole file now that bytes flow (cheaper writes; only
	 * a hint: a full disk still fails the write).  Not at the offer: an
	 * offer alone must not take disk, and this stays within the
	 * reservation the offer made against spool_quota */
	if (x->size > 0)
		(void)fallocate(x->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)x->size);
	if (iq == NULL)
		return;
	xmpp_stanza_set_name(iq, "iq");
	xmpp_stanza_set_type(iq, "result");
	xmpp_stanza_set_id(iq, x->bs_id);
	if ((q = gw_add_child(iq, "query", NS_BS)) == NULL ||
	    (used = gw_add_child(q, "streamhost-used", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(used, "jid", i < x->nsh ? x->sh_jid[i] : x->peer) != XMPP_EOK) {
		xmpp_stanza_release(iq);
		return;
	}
	send_to_peer(x, iq);
}

/* More of the file is on disk: the PUT may send it (cut-through). */
static void
in_s5_progress(void *arg, uint64_t bytes)
{
	struct xfer *x = arg;

	if (x->up == XU_PUT)
		xfer_http_put_avail(x->http, bytes);
}

static void
in_s5_done(void *arg, int ok, const char *why)
{
	struct xfer *x = arg;

	s5_free(x->s5);
	x->s5 = NULL;
	if (!ok) {
		xfer_fail(x, "%s", why);
		return;
	}
	log_info("transfer", "received “%s” (%llu bytes) from %s for %s", x->name,
	    (unsigned long long)x->size, x->peer, x->user_jid);
	in_received(x);
}

/* the gateway's own addresses, which no streamhost may name */
struct own_addrs {
	char **v;
	size_t n;
	int oom;
};

static void
own_add(void *arg, const struct store_identity *id)
{
	struct own_addrs *o = arg;
	char **nv;

	if (o->oom)
		return;
	if ((nv = reallocarray(o->v, o->n + 1, sizeof(*nv))) == NULL) {
		o->oom = 1;
		return;
	}
	o->v = nv;
	if ((o->v[o->n] = strdup(id->address)) == NULL) {
		o->oom = 1;
		return;
	}
	o->n++;
}

static void
own_free(struct own_addrs *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i]);
	free(o->v);
}

/*
 * The peer's streamhosts (BAREV.md §6.3).  The data connection leaves from
 * an identity's address, so a streamhost is a connect the peer makes the
 * gateway do: only the peer's own address is used (purple and pascal offer
 * exactly that), never a loopback, special or gateway-own address — the
 * firewall would not see that connection.  None left: item-not-found, as
 * XEP-0065 answers a target that connects to no streamhost.
 */
static int
in_streamhosts(struct gw *gw, struct xfer *x, xmpp_stanza_t *iq, xmpp_stanza_t *q)
{
	struct s5_host hosts[8];
	size_t n = 0;
	char dst[41];
	xmpp_stanza_t *sh;
	struct s5_recv_params rp = { 0 };
	static const struct s5_events ev = { in_s5_connected, in_s5_done };
	struct own_addrs own = { 0 };
	enum xl_sh refused = XL_SH_OK;

	snprintf(x->bs_id, sizeof(x->bs_id), "%s", xmpp_stanza_get_id(iq) ?
	    xmpp_stanza_get_id(iq) : x->sid);
	if (store_identity_foreach(gw->store, own_add, &own) != STORE_OK || own.oom) {
		own_free(&own);
		goto fail;
	}
	if ((x->sh_jid = calloc(8, sizeof(char *))) == NULL) {
		own_free(&own);
		goto fail;
	}
	for (sh = xmpp_stanza_get_children(q); sh && n < 8; sh = xmpp_stanza_get_next(sh)) {
		const char *host = attr_of(sh, "host"), *port = attr_of(sh, "port");
		const char *jid = attr_of(sh, "jid");
		enum xl_sh v;
		uint16_t pn = 0;

		if (xmpp_stanza_get_name(sh) == NULL ||
		    strcmp(xmpp_stanza_get_name(sh), "streamhost") != 0)
			continue;
		v = xl_streamhost(host, port, x->peer_addr, (const char *const *)own.v,
		    own.n, &pn);
		if (v != XL_SH_OK) {
			log_warn("transfer", "%s offered streamhost [%s]:%s: not used (%s)",
			    x->peer, host ? host : "?", port ? port : "?",
			    xl_streamhost_why(v));
			if (refused == XL_SH_OK)
				refused = v;
			continue;
		}
		hosts[n].host = host;
		hosts[n].port = pn;
		if ((x->sh_jid[n] = strdup(jid ? jid : x->peer)) == NULL) {
			own_free(&own);
			goto fail;
		}
		x->nsh = ++n;
	}
	own_free(&own);
	if (n == 0) {
		xmpp_stanza_t *err = gw_error_reply(iq, "cancel", "item-not-found", NULL);

		if (err)
			send_to_peer(x, err);
		if (refused == XL_SH_OK)
			xfer_fail(x, "%s offered no address for the data", x->peer_name);
		else
			xfer_fail(x, "%s offered the data only at an address the gateway "
			    "does not connect to (%s); it connects to a contact's own "
			    "address only", x->peer_name, xl_streamhost_why(refused));
		return 1;
	}
	s5_dst_addr(x->sid, x->initiator ? x->initiator : x->peer, x->me, dst);
	rp.src_addr = x->my_addr;
	rp.hosts = hosts;
	rp.nhosts = n;
	rp.dst = dst;
	rp.size = x->size;
	rp.fd = x->fd;
	rp.progress = in_s5_progress;
	event_del(x->timer);
	x->state = XS_IN_RECEIVING;
	store_transfer_set_state(gw->store, x->row, "receiving", NULL, NULL, now_s());
	if ((x->s5 = s5_recv_start(gw->base, &rp, &ev, x)) == NULL)
		goto fail;
	return 1;
fail:
	xfer_fail(x, "the gateway could not start the data connection");
	return 1;
}

/* Decline the way the peers do (BAREV.md §6.2). */
static void
decline(struct gw *gw, int64_t contact, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *r = gw_error_reply(iq, "cancel", "forbidden", NULL), *e;

	if (r == NULL)
		return;
	if ((e = xmpp_stanza_get_child_by_name(r, "error")) != NULL)
		xmpp_stanza_set_attribute(e, "code", "403");
	bl_send_stanza(gw->bl, contact, r, 0);
	xmpp_stanza_release(r);
}

/*
 * Room for one more incoming file?  Every other incoming transfer counts
 * against the caps and reserves its whole size against spool_quota from
 * the moment it is accepted, whether its bytes came yet or not; a user's
 * link being fetched counts with what it has fetched so far.
 */
static enum xl_verdict
in_admit(struct xfer *self)
{
	const struct gw_config *cfg = &self->gw->cfg;
	struct xl_limits lim = { cfg->max_incoming_per_contact,
	    cfg->max_incoming_total, cfg->spool_quota };
	struct xl_load load = { 0, 0, 0, served_bytes };
	struct xfer *x;

	LIST_FOREACH(x, &xfers, entry) {
		if (x == self)
			continue;
		if (x->out) {
			load.reserved += x->state == XS_OUT_DOWNLOADING ? xfer_bytes(x) : x->size;
			continue;
		}
		load.total_n++;
		if (x->contact == self->contact)
			load.contact_n++;
		load.reserved += x->size;
	}
	return xl_admit(&lim, &load, self->size);
}

/* An offer over a limit, already declined to the peer: the user hears why,
 * but a flood of offers makes one note a minute per contact and reason,
 * not one each. */
static void
in_refuse(struct xfer *x, enum xl_verdict v)
{
	const struct gw_config *cfg = &x->gw->cfg;
	char why[384], quota[32];

	human_size(cfg->spool_quota, quota, sizeof(quota));
	switch (v) {
	case XL_PER_CONTACT:
		snprintf(why, sizeof(why), "%s is already sending %u file(s) at once, "
		    "the most this gateway takes from one contact", x->peer_name,
		    cfg->max_incoming_per_contact);
		break;
	case XL_TOTAL:
		snprintf(why, sizeof(why), "the gateway is already receiving %u file(s) "
		    "at once, its limit", cfg->max_incoming_total);
		break;
	default:
		snprintf(why, sizeof(why), "the gateway's file space (%s) has no room "
		    "for it right now", quota);
		break;
	}
	if (xl_note_due(&refusal_notes, x->contact, (int)v, (int64_t)cm_now_ms(), XFER_REFUSAL_NOTE_MS))
		xfer_fail(x, "%s; it was declined (more offers declined for this "
		    "within a minute are not reported one by one)", why);
	else
		xfer_end(x, 0, why);	/* logged, not told again */
}

static int
offers_bytestreams(xmpp_stanza_t *si)
{
	xmpp_stanza_t *f = xmpp_stanza_get_child_by_name(si, "feature"), *xd, *fld, *o, *v;

	xd = f ? xmpp_stanza_get_child_by_name(f, "x") : NULL;
	for (fld = xd ? xmpp_stanza_get_children(xd) : NULL; fld; fld = xmpp_stanza_get_next(fld)) {
		const char *var = attr_of(fld, "var");

		if (var == NULL || strcmp(var, "stream-method") != 0)
			continue;
		for (o = xmpp_stanza_get_children(fld); o; o = xmpp_stanza_get_next(o)) {
			char *t;
			int hit;

			if ((v = xmpp_stanza_get_child_by_name(o, "value")) == NULL)
				continue;
			t = xmpp_stanza_get_text(v);
			hit = t && strcmp(t, NS_BS) == 0;
			free(t);
			if (hit)
				return 1;
		}
	}
	return 0;
}

static int
in_offer(struct gw *gw, int64_t contact, xmpp_stanza_t *iq, xmpp_stanza_t *si)
{
	xmpp_stanza_t *file = xmpp_stanza_get_child_by_name(si, "file");
	const char *sid = attr_of(si, "id"), *name = attr_of(file, "name");
	const char *size_s = attr_of(file, "size");
	char *end = NULL, have[32], lim[32];
	unsigned long long size;
	struct xfer *x;
	xmpp_stanza_t *r, *s, *f, *xd, *fld;
	enum xl_verdict v;

	if (sid == NULL || *sid == '\0')
		sid = xmpp_stanza_get_id(iq);
	if (sid == NULL || strlen(sid) >= sizeof(x->sid) || name == NULL || size_s == NULL ||
	    (size = strtoull(size_s, &end, 10), *end != '\0') || !offers_bytestreams(si)) {
		log_info("transfer", "unusable file offer from contact %lld: declined",
		    (long long)contact);
		decline(gw, contact, iq);
		return 1;
	}
	if ((x = xfer_new(gw, contact, 0)) == NULL) {
		decline(gw, contact, iq);
		return 1;
	}
	x->name = clean_name(name);
	x->size = size;
	snprintf(x->sid, sizeof(x->sid), "%s", sid);
	x->initiator = xmpp_stanza_get_from(iq) ? strdup(xmpp_stanza_get_from(iq)) : NULL;
	if (x->name == NULL)
		goto internal;
	if (size > max_size(gw)) {
		human_size(size, have, sizeof(have));
		human_size(max_size(gw), lim, sizeof(lim));
		decline(gw, contact, iq);
		xfer_fail(x, "it is larger than this gateway accepts (%s, the limit is %s); "
		    "it was declined", have, lim);
		return 1;
	}
	if (gw->cfg.upload_service[0] == '\0' && (gw->cfg.http_listen[0] == '\0' ||
	    gw->cfg.http_public_url[0] == '\0')) {
		decline(gw, contact, iq);
		xfer_fail(x, "this gateway has no upload service configured; it was declined");
		return 1;
	}
	if ((v = in_admit(x)) != XL_OK) {
		decline(gw, contact, iq);
		in_refuse(x, v);
		return 1;
	}
	if (spool_create(x) == -1)
		goto internal;
	if (store_transfer_add(gw->store, contact, "in", x->sid, x->name, x->size,
	    "offered", x->path, now_s(), &x->row) != STORE_OK)
		goto internal;
	/* accept: <si><feature><x type=submit><field var=stream-method><value> */
	if ((r = gw_iq_result(iq)) == NULL ||
	    (s = gw_add_child(r, "si", NS_SI)) == NULL ||
	    (f = gw_add_child(s, "feature", NS_FNEG)) == NULL ||
	    (xd = gw_add_child(f, "x", NS_XDATA)) == NULL ||
	    xmpp_stanza_set_type(xd, "submit") != XMPP_EOK ||
	    (fld = gw_add_child(xd, "field", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(fld, "var", "stream-method") != XMPP_EOK ||
	    gw_add_text_child(fld, "value", NS_BS) == -1) {
		if (r)
			xmpp_stanza_release(r);
		goto internal;
	}
	if (send_to_peer(x, r) == -1) {
		xfer_fail(x, "the connection to %s dropped", x->peer_name);
		return 1;
	}
	x->state = XS_IN_OFFERED;
	arm(x, XFER_STREAMHOSTS_MS);
	log_info("transfer", "accepted “%s” (%llu bytes) from %s for %s", x->name, size,
	    x->peer, x->user_jid);
	/* the offer has the name and size: the slot now, so that the upload
	 * follows the receive instead of waiting for its end */
	if (gw->cfg.upload_service[0] && in_request_slot(x) == -1)
		log_warn("transfer", "cannot ask for an upload slot for “%s” yet; "
		    "asking once it is received", x->name);
	return 1;
internal:
	decline(gw, contact, iq);
	xfer_fail(x, "the gateway could not prepare for it (spool or database error)");
	return 1;
}

/* ======================= XMPP -> Barev ======================= */

static void
out_s5_done(void *arg, int ok, const char *why)
{
	struct xfer *x = arg;

	s5_free(x->s5);
	x->s5 = NULL;
	if (!ok) {
		xfer_fail(x, "%s", why);
		return;
	}
	out_tell_delivered(x);
	xfer_end(x, 1, NULL);
}

/* The peer accepted: listen, tell it where (BAREV.md §6.3). */
static void
out_accepted(struct xfer *x)
{
	struct s5_send_params sp = { 0 };
	static const struct s5_events ev = { NULL, out_s5_done };
	xmpp_stanza_t *iq, *q, *sh;
	char dst[41], port_s[8];
	uint16_t port = 0;

	event_del(x->timer);
	s5_dst_addr(x->sid, x->me, x->peer, dst);
	sp.bind_addr = x->my_addr;
	sp.peer_addr = x->peer_addr;
	sp.dst = dst;
	sp.fd = x->fd;
	sp.size = x->size;
	x->state = XS_OUT_SENDING;
	x->reported = 0;
	store_transfer_set_state(x->gw->store, x->row, "sending", NULL, NULL, now_s());
	if ((x->s5 = s5_send_start(x->gw->base, &sp, &ev, x, &port)) == NULL) {
		xfer_fail(x, "the gateway has no free data port");
		return;
	}
	snprintf(x->bs_id, sizeof(x->bs_id), "bs-%s", x->sid);
	snprintf(port_s, sizeof(port_s), "%u", port);
	if ((iq = xmpp_stanza_new(xs_ctx())) == NULL)
		goto fail;
	xmpp_stanza_set_name(iq, "iq");
	xmpp_stanza_set_type(iq, "set");
	xmpp_stanza_set_id(iq, x->bs_id);
	if ((q = gw_add_child(iq, "query", NS_BS)) == NULL ||
	    xmpp_stanza_set_attribute(q, "sid", x->sid) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(q, "mode", "tcp") != XMPP_EOK ||
	    (sh = gw_add_child(q, "streamhost", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(sh, "jid", x->me) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(sh, "host", x->my_addr) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(sh, "port", port_s) != XMPP_EOK) {
		xmpp_stanza_release(iq);
		goto fail;
	}
	if (send_to_peer(x, iq) == -1) {
		xfer_fail(x, "the connection to %s dropped", x->peer_name);
		return;
	}
	log_info("transfer", "serving “%s” to %s on [%s]:%u", x->name, x->peer,
	    x->my_addr, port);
	return;
fail:
	xfer_fail(x, "out of memory");
}

static void
out_offer(struct xfer *x)
{
	xmpp_stanza_t *iq, *si, *file, *f, *xd, *fld, *opt;
	char size[32];
	char rnd[13];

	if (bl_contact_state(x->gw->bl, x->contact) != BL_PIPE_UP) {
		/* a pipe being re-dialled: offer once it is up (transfer_pipe_up) */
		if (x->state != XS_OUT_WAITING) {
			x->state = XS_OUT_WAITING;
			arm(x, XFER_PIPE_WAIT_MS);
			tell(x, "“%s”: %s is not connected right now; the file is"
			    " offered as soon as the connection is back (waiting up"
			    " to a minute).", x->name, x->peer_name);
		}
		return;
	}
	cm_random_hex(rnd, sizeof(rnd), 6);
	snprintf(x->sid, sizeof(x->sid), "gwft-%llu-%s",
	    (unsigned long long)x->serial, rnd);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)x->size);
	if ((iq = xmpp_stanza_new(xs_ctx())) == NULL)
		goto fail;
	xmpp_stanza_set_name(iq, "iq");
	xmpp_stanza_set_type(iq, "set");
	xmpp_stanza_set_id(iq, x->sid);		/* iq id == si id (§6.1) */
	if ((si = gw_add_child(iq, "si", NS_SI)) == NULL ||
	    xmpp_stanza_set_attribute(si, "id", x->sid) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(si, "profile", NS_SI_FT) != XMPP_EOK ||
	    (file = gw_add_child(si, "file", NS_SI_FT)) == NULL ||
	    xmpp_stanza_set_attribute(file, "name", x->name) != XMPP_EOK ||
	    xmpp_stanza_set_attribute(file, "size", size) != XMPP_EOK ||
	    (f = gw_add_child(si, "feature", NS_FNEG)) == NULL ||
	    (xd = gw_add_child(f, "x", NS_XDATA)) == NULL ||
	    xmpp_stanza_set_type(xd, "form") != XMPP_EOK ||
	    (fld = gw_add_child(xd, "field", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(fld, "var", "stream-method") != XMPP_EOK ||
	    xmpp_stanza_set_type(fld, "list-single") != XMPP_EOK ||
	    (opt = gw_add_child(fld, "option", NULL)) == NULL ||
	    gw_add_text_child(opt, "value", NS_BS) == -1) {
		xmpp_stanza_release(iq);
		goto fail;
	}
	store_transfer_set_state(x->gw->store, x->row, "offered", NULL, NULL, now_s());
	if (send_to_peer(x, iq) == -1) {
		xfer_fail(x, "%s is not connected right now", x->peer_name);
		return;
	}
	x->state = XS_OUT_OFFERED;
	arm(x, XFER_ANSWER_MS);
	return;
fail:
	xfer_fail(x, "out of memory");
}

static void
out_downloaded(void *arg, int ok, const char *why)
{
	struct xfer *x = arg;
	struct stat st;

	if (!ok) {
		/* the user's own upload service failing us is the operator's
		 * matter (a certificate the gateway does not trust, a refusal) */
		log_warn("transfer", "cannot fetch “%s” that %s sent to %s: %s",
		    x->name, x->user_jid, x->peer, why);
		xfer_fail(x, "the gateway could not fetch it (%s)", why);	/* frees x->http */
		return;
	}
	xfer_http_free(x->http);
	x->http = NULL;
	if (fstat(x->fd, &st) == -1) {
		xfer_fail(x, "the gateway lost the downloaded file");
		return;
	}
	x->size = (uint64_t)st.st_size;
	log_info("transfer", "fetched “%s” (%llu bytes) for %s", x->name,
	    (unsigned long long)x->size, x->peer);
	out_offer(x);
}

/* The URL of a file link: OOB first, else a body that is nothing but a URL. */
static char *
link_of(xmpp_stanza_t *msg)
{
	xmpp_stanza_t *oob = xmpp_stanza_get_child_by_name_and_ns(msg, "x", NS_OOB), *u, *b;
	char *t = NULL, *s, *e;

	if (oob && (u = xmpp_stanza_get_child_by_name(oob, "url")) != NULL)
		t = xmpp_stanza_get_text(u);
	if (t == NULL && (b = xmpp_stanza_get_child_by_name(msg, "body")) != NULL)
		t = xmpp_stanza_get_text(b);
	if (t == NULL)
		return NULL;
	for (s = t; isspace((unsigned char)*s); s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	for (char *p = s; *p; p++)
		if (isspace((unsigned char)*p)) {
			free(t);
			return NULL;
		}
	if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0) {
		free(t);
		return NULL;
	}
	memmove(t, s, strlen(s) + 1);
	return t;
}

/* The name in the link's last path segment, percent-decoded. */
static char *
name_of_url(const char *url)
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
	out = clean_name(dec);
	free(dec);
	return out;
}

/* Where the outcome goes: her message's sender, addressee and id, and
 * whether she asked for a receipt (XEP-0184 §5.1). */
static void
out_remember_message(struct xfer *x, xmpp_stanza_t *msg)
{
	const char *from = xmpp_stanza_get_from(msg), *to = xmpp_stanza_get_to(msg);
	const char *id = xmpp_stanza_get_id(msg);

	x->msg_from = from ? strdup(from) : NULL;
	x->msg_to = to ? strdup(to) : NULL;
	x->msg_id = id && *id ? strdup(id) : NULL;
	x->want_receipt = xmpp_stanza_get_child_by_name_and_ns(msg, "request",
	    "urn:xmpp:receipts") != NULL;
}

int
transfer_user_message(struct gw *gw, int64_t contact, xmpp_stanza_t *msg)
{
	char *url = link_of(msg);
	struct xfer *x;
	int allowed;

	if (url == NULL)
		return 0;
	allowed = xfer_url_allowed(&gw->cfg.download_hosts, gw->cfg.upload_service, url);
	if (allowed == -1 && (x = xfer_new(gw, contact, 1)) != NULL) {
		/*
		 * The upload host on another port or path (an admin or metrics
		 * service, say) is never fetched (issue 15); the user hears why
		 * her link went as text rather than as a file.
		 */
		tell(x, "Your link was passed on to %s as text, not as a file:"
		    " the gateway fetches files only from your server's upload"
		    " service.", x->peer_name);
		xfer_end(x, 0, "a link on the upload host but not the upload"
		    " service: not fetched");
	}
	if (allowed != 1) {
		free(url);
		return 0;	/* an ordinary message that happens to be a link */
	}
	if ((x = xfer_new(gw, contact, 1)) == NULL) {
		free(url);
		return 0;
	}
	x->name = name_of_url(url);
	x->state = XS_OUT_DOWNLOADING;
	out_remember_message(x, msg);
	if (x->name == NULL || spool_create(x) == -1) {
		free(url);
		xfer_fail(x, "the gateway could not prepare its spool");
		return 1;
	}
	if (store_transfer_add(gw->store, contact, "out", "", x->name, 0,
	    "downloading", x->path, now_s(), &x->row) != STORE_OK) {
		free(url);
		xfer_fail(x, "the gateway could not record the transfer");
		return 1;
	}
	x->http = xfer_http_get(gw, url, x->fd, max_size(gw), out_downloaded, x);
	log_info("transfer", "%s sends %s to %s", x->user_jid, url, x->peer);
	free(url);
	if (x->http == NULL)
		xfer_fail(x, "the gateway could not fetch the link");
	return 1;
}

/* ======================= peer iqs ======================= */

static struct xfer *
find(int64_t contact, int out, const char *sid, const char *id)
{
	struct xfer *x;

	LIST_FOREACH(x, &xfers, entry) {
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
		return in_offer(gw, contact, iq, si);
	if (strcmp(type, "set") == 0 && q) {
		if ((x = find(contact, 0, attr_of(q, "sid"), NULL)) == NULL ||
		    x->state != XS_IN_OFFERED)
			return 0;	/* the bridge refuses it */
		return in_streamhosts(gw, x, iq, q);
	}
	if (strcmp(type, "result") != 0 && strcmp(type, "error") != 0)
		return 0;
	/* answers to our offer and to our streamhosts */
	if (id == NULL || (x = find(contact, 1, NULL, id)) == NULL)
		return 0;
	if (x->state == XS_OUT_OFFERED && strcmp(id, x->sid) == 0) {
		if (strcmp(type, "error") == 0)
			xfer_fail(x, "%s declined it", x->peer_name);
		else
			out_accepted(x);
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

	(void)gw;
	for (x = LIST_FIRST(&xfers); x; x = next) {
		next = LIST_NEXT(x, entry);
		if (x->contact == contact && x->state == XS_OUT_WAITING)
			out_offer(x);
	}
}

void
transfer_pipe_down(struct gw *gw, int64_t contact)
{
	struct xfer *x, *next;

	(void)gw;
	/* negotiation needs the pipe; data connections stand on their own */
	for (x = LIST_FIRST(&xfers); x; x = next) {
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

	(void)gw;
	for (x = LIST_FIRST(&xfers); x; x = next) {
		next = LIST_NEXT(x, entry);
		if (x->contact == contact)
			xfer_end(x, 0, "the contact was removed");
	}
}

/* ======================= start / stop ======================= */

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0750) == -1 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, 0750) == -1 && errno != EEXIST ? -1 : 0;
}

/* Remove what a previous run left in SPOOL/tmp, and served files past
 * their age; the bytes of the files kept (for spool_quota). */
static uint64_t
spool_clean(const char *dir, time_t max_age)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX];
	struct stat st;
	int n = 0;
	uint64_t kept = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (max_age && stat(p, &st) == -1)
			continue;
		if (max_age && st.st_mtime > time(NULL) - max_age) {
			kept += (uint64_t)st.st_size;
			continue;
		}
		if (unlink(p) == 0)
			n++;
	}
	closedir(d);
	if (n)
		log_info("transfer", "removed %d old file(s) from %s", n, dir);
	return kept;
}

static time_t
served_ttl_s(const struct gw *gw)
{
	time_t s = (time_t)(gw->cfg.served_files_ttl_ms / 1000);

	return s > 0 ? s : 1;
}

/* The next look at served files: 1/24 of their lifetime, between a second
 * and an hour, from the current config (served_files_ttl reloads). */
static int
sweep_arm(struct gw *gw)
{
	uint64_t ms = gw->cfg.served_files_ttl_ms / 24;
	struct timeval tv;

	if (ms < 1000)
		ms = 1000;
	if (ms > 3600000)
		ms = 3600000;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return evtimer_add(sweeper, &tv);
}

/* Served files expire while we run, not only at start. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	char served[PATH_MAX];

	(void)fd;
	(void)what;
	snprintf(served, sizeof(served), "%s/served", gw->cfg.spool_dir);
	served_bytes = spool_clean(served, served_ttl_s(gw));
	sweep_arm(gw);
}

static int
sweep_start(struct gw *gw)
{
	if ((sweeper = evtimer_new(gw->base, sweep_cb, gw)) == NULL)
		return -1;
	return sweep_arm(gw);
}

int
transfer_start(struct gw *gw)
{
	char tmp[PATH_MAX], served[PATH_MAX];
	int failed = 0;

	snprintf(tmp, sizeof(tmp), "%s/tmp", gw->cfg.spool_dir);
	snprintf(served, sizeof(served), "%s/served", gw->cfg.spool_dir);
	if (mkdir_p(tmp) == -1 || mkdir_p(served) == -1) {
		/* not fatal: messages still flow; files fail with a reason */
		log_error("transfer", "cannot create the spool %s: %s", gw->cfg.spool_dir,
		    strerror(errno));
	}
	spool_clean(tmp, 0);
	served_bytes = spool_clean(served, served_ttl_s(gw));
	if (store_transfer_fail_unfinished(gw->store, "the gateway restarted", now_s(),
	    &failed) == STORE_OK && failed)
		log_info("transfer", "%d transfer(s) cut by the last stop marked failed", failed);
	if (xfer_http_tls_init(gw) == -1)
		return -1;
	if (gw->cfg.upload_service[0] == '\0' && gw->cfg.http_listen[0])
		return xfer_serve_start(gw) == -1 || sweep_start(gw) == -1 ? -1 : 0;
	return 0;
}

void
transfer_stop(struct gw *gw)
{
	while (!LIST_EMPTY(&xfers))
		xfer_fail(LIST_FIRST(&xfers), "the gateway is shutting down");
	reap(-1, 0, NULL);
	if (reaper) {
		event_free(reaper);
		reaper = NULL;
	}
	if (sweeper) {
		event_free(sweeper);
		sweeper = NULL;
	}
	xfer_serve_stop(gw);
	xfer_http_shutdown();
	spool_drops_stop(gw);
}
