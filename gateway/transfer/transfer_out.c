/*
 * transfer_out — files from the XMPP user to a Barev peer (BAREV.md §6;
 * DESIGN.md "Flows": Files).
 *
 * A message whose OOB URL (or whole body) is an http(s) URL on an allowed
 * host is downloaded into the spool, offered to the peer with its real
 * name and size (once the peer's pipe is up, waiting a minute for it), and
 * served on 50000-50049 to the peer's address only.  The user hears the
 * outcome on the message that carried the link: an XEP-0184 receipt, or
 * a message error saying why.
 *
 * The one idea: the link is the file — one GET, one SI offer, one SOCKS5
 * serve, each step started by the previous one's end.
 */
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <strophe.h>

#include "barevlink.h"
#include "clock.h"
#include "gw.h"
#include "log.h"
#include "rng.h"
#include "socks5.h"
#include "store.h"
#include "xmlstream.h"
#include "transfer.h"
#include "transfer_int.h"

static void
out_s5_done(void *arg, int ok, const char *why)
{
	struct xfer *x = arg;

	if (!xfer_s5_ended(x, ok, why))
		return;
	xfer_tell_delivered(x);
	xfer_end(x, 1, NULL);
}

/* The peer accepted: listen, tell it where (BAREV.md §6.3). */
void
xfer_out_accepted(struct xfer *x)
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
	store_transfer_set_state(x->gw->store, x->row, "sending", NULL, NULL, cm_wall_s());
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
	if (xfer_send_to_peer(x, iq) == -1) {
		xfer_fail(x, "the connection to %s dropped", x->peer_name);
		return;
	}
	log_info("transfer", "serving “%s” to %s on [%s]:%u", x->name, x->peer,
	    x->my_addr, port);
	return;
fail:
	xfer_fail(x, "out of memory");
}

void
xfer_out_offer(struct xfer *x)
{
	xmpp_stanza_t *iq, *si, *file, *f, *xd, *fld, *opt;
	char size[32];
	char rnd[13];

	if (bl_contact_state(x->gw->bl, x->contact) != BL_PIPE_UP) {
		/* a pipe being re-dialled: offer once it is up (transfer_pipe_up) */
		if (x->state != XS_OUT_WAITING) {
			x->state = XS_OUT_WAITING;
			xfer_arm(x, XFER_PIPE_WAIT_MS);
			xfer_tell(x, "“%s”: %s is not connected right now; the file is"
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
	store_transfer_set_state(x->gw->store, x->row, "offered", NULL, NULL, cm_wall_s());
	if (xfer_send_to_peer(x, iq) == -1) {
		xfer_fail(x, "%s is not connected right now", x->peer_name);
		return;
	}
	x->state = XS_OUT_OFFERED;
	xfer_arm(x, XFER_ANSWER_MS);
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
	xfer_out_offer(x);
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
		xfer_tell(x, "Your link was passed on to %s as text, not as a file:"
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
	x->name = xfer_name_of_url(url);
	x->state = XS_OUT_DOWNLOADING;
	out_remember_message(x, msg);
	if (x->name == NULL || xfer_spool_create(x) == -1) {
		free(url);
		xfer_fail(x, "the gateway could not prepare its spool");
		return 1;
	}
	if (store_transfer_add(gw->store, contact, "out", "", x->name, 0,
	    "downloading", x->path, cm_wall_s(), &x->row) != STORE_OK) {
		free(url);
		xfer_fail(x, "the gateway could not record the transfer");
		return 1;
	}
	x->http = xfer_http_get(gw, url, x->fd, xfer_max_size(gw), out_downloaded, x);
	log_info("transfer", "%s sends %s to %s", x->user_jid, url, x->peer);
	free(url);
	if (x->http == NULL)
		xfer_fail(x, "the gateway could not fetch the link");
	return 1;
}
