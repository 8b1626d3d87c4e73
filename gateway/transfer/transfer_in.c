/*
 * transfer_in — files from a Barev peer to the XMPP user (BAREV.md §6;
 * DESIGN.md "Flows": Files).
 *
 * A peer's SI offer is admitted against the caps and spool_quota and
 * accepted into a spool file; its streamhosts are tried
 * (barevlink/socks5.c) until exactly `size` bytes are on disk; meanwhile
 * the XEP-0363 upload slot is asked for at once (name and size are in the
 * offer) and the PUT follows the spool file as it grows.  When both are
 * done the user gets a message whose body is the URL, plus jabber:x:oob.
 * Without an upload service the whole file moves into SPOOL/served.
 *
 * The one idea: the receive (`state`) and the upload (`up`) run side by
 * side, and the spool file between them makes it robust — an upload that
 * fails before the end is tried once more from the complete file.
 */
#include <sys/queue.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <strophe.h>

#include "barevlink.h"
#include "clock.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "rng.h"
#include "socks5.h"
#include "store.h"
#include "xmlstream.h"
#include "transfer.h"
#include "transfer_limits.h"
#include "transfer_int.h"

static void in_slot(struct gw *gw, xmpp_stanza_t *reply, void *arg);

/* The URL is ready: the message the user's client turns into a file. */
static void
in_deliver(struct xfer *x, const char *url)
{
	xmpp_stanza_t *m = xfer_user_message(x, url, 0), *oob;
	char *shown, size[32];

	if (m && (oob = gw_add_child(m, "x", NS_OOB)) != NULL) {
		gw_add_text_child(oob, "url", url);
		gw_add_text_child(oob, "desc", x->name);
	}
	if (m == NULL)
		log_warn("transfer", "could not send the link for “%s” to %s", x->name,
		    x->user_jid);
	else
		xfer_to_user(x, m);	/* or the inbox, link down */
	/* clients that show only the link: its name, when the link lacks it */
	if ((shown = xfer_name_of_url(url)) != NULL && strcmp(shown, x->name) != 0) {
		xfer_human_size(x->size, size, sizeof(size));
		xfer_tell(x, "%s sent you “%s” (%s): the link above.", x->peer_name,
		    x->name, size);
	}
	free(shown);
	store_transfer_set_state(x->gw->store, x->row, "done", url, NULL, cm_wall_s());
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

const char *
xfer_attr_of(xmpp_stanza_t *st, const char *name)
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
	struct xfer *x = xfer_by_serial(gw, (uint64_t)(uintptr_t)arg);
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
	if (xfer_attr_of(put, "url") == NULL || xfer_attr_of(get, "url") == NULL) {
		xfer_fail(x, "your server's upload service sent no usable slot");
		return;
	}
	/* XEP-0363 §5: only these headers may be passed on */
	for (h = xmpp_stanza_get_children(put); h && nv < 6; h = xmpp_stanza_get_next(h)) {
		const char *n = xfer_attr_of(h, "name");

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
	x->get_url = strdup(xfer_attr_of(get, "url"));
	/* the PUT announces the whole size and sends what is on disk; the
	 * receiver's progress moves it on (in_s5_progress) */
	on_disk = x->received ? x->size : x->s5 ? s5_bytes(x->s5) : 0;
	x->http = xfer_http_put_growing(x->gw, xfer_attr_of(put, "url"), hdrs,
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
	x->gw->xfer->served_bytes += x->size;
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
	store_transfer_set_state(x->gw->store, x->row, "uploading", NULL, NULL, cm_wall_s());
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
	xfer_send_to_peer(x, iq);
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

	if (!xfer_s5_ended(x, ok, why))
		return;
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
int
xfer_in_streamhosts(struct gw *gw, struct xfer *x, xmpp_stanza_t *iq, xmpp_stanza_t *q)
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
		const char *host = xfer_attr_of(sh, "host"), *port = xfer_attr_of(sh, "port");
		const char *jid = xfer_attr_of(sh, "jid");
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
			xfer_send_to_peer(x, err);
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
	store_transfer_set_state(gw->store, x->row, "receiving", NULL, NULL, cm_wall_s());
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
	struct xl_load load = { 0, 0, 0, self->gw->xfer->served_bytes };
	struct xfer *x;

	LIST_FOREACH(x, &self->gw->xfer->all, entry) {
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

	xfer_human_size(cfg->spool_quota, quota, sizeof(quota));
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
	if (xl_note_due(&x->gw->xfer->refusal_notes, x->contact, (int)v, (int64_t)cm_now_ms(), XFER_REFUSAL_NOTE_MS))
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
		const char *var = xfer_attr_of(fld, "var");

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

/*
 * An offer this gateway does not take (too large, nowhere to upload it,
 * over a cap or the quota): declined to the peer, the user told why, the
 * transfer ended; 1.  0: go on.
 */
static int
in_offer_refused(struct xfer *x, xmpp_stanza_t *iq)
{
	struct gw *gw = x->gw;
	char have[32], lim[32];
	enum xl_verdict v;

	if (x->size > xfer_max_size(gw)) {
		xfer_human_size(x->size, have, sizeof(have));
		xfer_human_size(xfer_max_size(gw), lim, sizeof(lim));
		decline(gw, x->contact, iq);
		xfer_fail(x, "it is larger than this gateway accepts (%s, the limit is %s); "
		    "it was declined", have, lim);
		return 1;
	}
	if (gw->cfg.upload_service[0] == '\0' && (gw->cfg.http_listen[0] == '\0' ||
	    gw->cfg.http_public_url[0] == '\0')) {
		decline(gw, x->contact, iq);
		xfer_fail(x, "this gateway has no upload service configured; it was declined");
		return 1;
	}
	if ((v = in_admit(x)) != XL_OK) {
		decline(gw, x->contact, iq);
		in_refuse(x, v);
		return 1;
	}
	return 0;
}

/* accept: <si><feature><x type=submit><field var=stream-method><value> */
static xmpp_stanza_t *
in_accept(xmpp_stanza_t *iq)
{
	xmpp_stanza_t *r, *s, *f, *xd, *fld;

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
		return NULL;
	}
	return r;
}

int
xfer_in_offer(struct gw *gw, int64_t contact, xmpp_stanza_t *iq, xmpp_stanza_t *si)
{
	xmpp_stanza_t *file = xmpp_stanza_get_child_by_name(si, "file");
	const char *sid = xfer_attr_of(si, "id"), *name = xfer_attr_of(file, "name");
	const char *size_s = xfer_attr_of(file, "size");
	char *end = NULL;
	unsigned long long size;
	struct xfer *x;
	xmpp_stanza_t *r;

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
	x->name = xfer_clean_name(name);
	x->size = size;
	snprintf(x->sid, sizeof(x->sid), "%s", sid);
	x->initiator = xmpp_stanza_get_from(iq) ? strdup(xmpp_stanza_get_from(iq)) : NULL;
	if (x->name == NULL)
		goto internal;
	if (in_offer_refused(x, iq))
		return 1;
	if (xfer_spool_create(x) == -1)
		goto internal;
	if (store_transfer_add(gw->store, contact, "in", x->sid, x->name, x->size,
	    "offered", x->path, cm_wall_s(), &x->row) != STORE_OK)
		goto internal;
	if ((r = in_accept(iq)) == NULL)
		goto internal;
	if (xfer_send_to_peer(x, r) == -1) {
		xfer_fail(x, "the connection to %s dropped", x->peer_name);
		return 1;
	}
	x->state = XS_IN_OFFERED;
	xfer_arm(x, XFER_STREAMHOSTS_MS);
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
