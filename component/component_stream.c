/*
 * component_stream — the XEP-0114 stream on a connected socket (§3): our
 * header, the server's header and id, the SHA-1 handshake, then stanzas
 * to the owner; stream errors read into one reason; the keepalive; and
 * the goodbye, reading on (bounded) after our </stream:stream>.
 *
 * The one idea: whatever ends the stream only calls comp_fail() with a
 * reason; the teardown is component.c's, outside these callbacks.
 */
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "clock.h"
#include "component.h"
#include "log.h"
#include "xmlstream.h"

#include "component_int.h"

/* ---- stream ---- */

static void
comp_up(struct comp *c)
{
	struct timeval tv = comp_tv(c->keepalive_s * 1000);

	event_del(c->hs_timer);
	c->state = COMP_UP;
	c->up_since_ms = c->last_tx_ms = cm_now_ms();
	if (!c->ever_up) {
		c->ever_up = 1;
		c->backoff_ms = 0;
	}
	evtimer_add(c->ka_timer, &tv);
	log_info("component", "link up as %s", c->jid);
	if (c->ev.up != NULL)
		c->ev.up(c->arg);
}

/* a printable, bounded copy of server-supplied text for a log line */
static void
comp_clean(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < len; i++)
		out[i] = (unsigned char)in[i] < 0x20 ? ' ' : in[i];
	out[i] = '\0';
}

static int
comp_is_stream_error(xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	const char *ns = xmpp_stanza_get_ns(st);

	if (name == NULL)
		return 0;
	if (strcmp(name, "stream:error") == 0)
		return 1;
	return strcmp(name, "error") == 0 && ns != NULL &&
	    strcmp(ns, NS_STREAMS) == 0;
}

/* RFC 6120 §4.9: <stream:error><CONDITION/><text>..</text></stream:error> */
static void
comp_stream_error(struct comp *c, xmpp_stanza_t *st)
{
	xmpp_stanza_t *ch;
	const char *cond = NULL, *name;
	const char *phase = c->state == COMP_UP ?
	    "server closed the stream" : "server rejected the handshake";
	char *text = NULL;
	char tbuf[200] = "";

	for (ch = xmpp_stanza_get_children(st); ch != NULL;
	    ch = xmpp_stanza_get_next(ch)) {
		if (!xmpp_stanza_is_tag(ch) ||
		    (name = xmpp_stanza_get_name(ch)) == NULL)
			continue;
		if (strcmp(name, "text") == 0) {
			if (text == NULL)
				text = xmpp_stanza_get_text(ch);
		} else if (cond == NULL)
			cond = name;
	}
	if (text != NULL) {
		comp_clean(text, tbuf, sizeof tbuf);
		xmpp_free(xs_ctx(), text);
	}
	if (cond == NULL)
		cond = "undefined-condition";

	if (c->state == COMP_UP && strcmp(cond, "system-shutdown") == 0)
		c->restarting = 1;
	if (strcmp(cond, "not-authorized") == 0)
		comp_fail(c, LOG_LVL_ERROR, "%s: not-authorized (check "
		    "component_secret)", phase);
	else if (strcmp(cond, "conflict") == 0)
		comp_fail(c, LOG_LVL_WARN, "%s: conflict (another connection "
		    "for this component is still registered; Prosody keeps a "
		    "dead session a while)", phase);
	else if (strcmp(cond, "host-unknown") == 0)
		comp_fail(c, LOG_LVL_ERROR, "%s: host-unknown (the server has "
		    "no component %s; check component_jid and the server's "
		    "Component definition)", phase, c->jid);
	else
		comp_fail(c, LOG_LVL_WARN, "%s: %s%s%s%s", phase, cond,
		    tbuf[0] != '\0' ? " (\"" : "", tbuf,
		    tbuf[0] != '\0' ? "\")" : "");
}

/* XEP-0114 §3: <handshake> = lower-case hex SHA1(stream id + secret),
 * hashed and hex-encoded by libstrophe (xmpp_sha1) */
static int
comp_send_handshake(struct comp *c, const char *id)
{
	char buf[COMP_ID_MAX + 4096 + 1];
	char out[sizeof "<handshake></handshake>" + 40];
	size_t il = strlen(id), sl = strlen(c->secret);
	char *hex;
	int rc, n;

	if (il + sl > sizeof buf)
		return -1;
	memcpy(buf, id, il);
	memcpy(buf + il, c->secret, sl);
	hex = xmpp_sha1(xs_ctx(), (const unsigned char *)buf, il + sl);
	explicit_bzero(buf, il + sl);
	if (hex == NULL)
		return -1;
	n = snprintf(out, sizeof out, "<handshake>%s</handshake>", hex);
	explicit_bzero(hex, strlen(hex));
	xmpp_free(xs_ctx(), hex);
	rc = n > 0 && (size_t)n < sizeof out ?
	    xs_conn_send_raw(c->xs, out, (size_t)n) : -1;
	explicit_bzero(out, sizeof out);
	return rc;
}

static void
comp_on_header(void *arg, xmpp_stanza_t *header)
{
	struct comp *c = arg;
	const char *id;

	if (c->failing || c->state != COMP_HANDSHAKING || c->got_header)
		return;
	c->got_header = 1;
	id = xmpp_stanza_get_attribute(header, "id");
	if (id == NULL || *id == '\0') {
		comp_fail(c, LOG_LVL_WARN, "server sent a stream header "
		    "without an id (is %s:%u a component port?)", c->host,
		    c->port);
		return;
	}
	if (strlen(id) > COMP_ID_MAX) {
		comp_fail(c, LOG_LVL_WARN, "server sent a stream id longer "
		    "than %d bytes", COMP_ID_MAX);
		return;
	}
	if (strlen(c->secret) > 4096 || comp_send_handshake(c, id) == -1)
		comp_fail(c, LOG_LVL_ERROR, "cannot send the handshake (out "
		    "of memory or secret longer than 4096 bytes)");
}

static void
comp_on_stanza(void *arg, xmpp_stanza_t *st)
{
	struct comp *c = arg;
	const char *name = xmpp_stanza_get_name(st);

	if (c->failing)
		return;
	if (comp_is_stream_error(st)) {
		comp_stream_error(c, st);
		return;
	}
	if (c->state == COMP_HANDSHAKING) {
		if (name != NULL && strcmp(name, "handshake") == 0)
			comp_up(c);
		else
			comp_fail(c, LOG_LVL_WARN, "server sent <%s> instead "
			    "of <handshake/>", name != NULL ? name : "?");
		return;
	}
	/* while draining, what the server sent before it saw our goodbye is
	 * still handed on (the owner stores it: the link is no longer up) */
	if ((c->state == COMP_UP || c->draining) && c->ev.stanza != NULL)
		c->ev.stanza(c->arg, st);
}

static void
comp_on_close(void *arg, enum xs_close why, const char *detail)
{
	struct comp *c = arg;
	struct xs_conn *xs = c->xs;
	const char *during = c->state == COMP_UP ? "" : " during the handshake";
	char hp[300], det[200] = "";

	/* xs_conn allows (expects) this from inside on_close */
	c->xs = NULL;
	if (xs != NULL)
		xs_conn_free(xs);
	c->draining = 0;
	if (c->drain_timer != NULL)
		evtimer_del(c->drain_timer);
	if (c->stopped) {
		c->state = COMP_DISCONNECTED;
		event_active(c->closed_ev, 0, 0);
		return;
	}
	if (detail != NULL)
		comp_clean(detail, det, sizeof det);
	comp_hostport(c, hp, sizeof hp);
	switch (why) {
	case XS_END_STREAM:
		comp_fail(c, LOG_LVL_WARN, "server closed the stream%s",
		    during);
		break;
	case XS_END_EOF:
		comp_fail(c, LOG_LVL_WARN, "server closed the connection%s "
		    "(EOF)", during);
		break;
	case XS_ERR_IO:
		comp_fail(c, LOG_LVL_WARN, "connection to %s lost%s: %s", hp,
		    during, det[0] != '\0' ? det : "I/O error");
		break;
	default:
		comp_fail(c, LOG_LVL_WARN, "server sent a broken stream%s: %s%s"
		    "%s%s", during, xs_close_str(why), det[0] != '\0' ? " (" : "",
		    det, det[0] != '\0' ? ")" : "");
		break;
	}
}

void
comp_hs_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;

	(void)fd;
	(void)what;
	comp_fail(c, LOG_LVL_WARN, "handshake timed out after %d s (%s)",
	    COMP_HANDSHAKE_TIMEOUT_S, c->got_header ?
	    "no <handshake/> after our hash" : "no stream header");
}

/* whitespace keepalive (RFC 6120 §4.6.1) when nothing else went out */
void
comp_ka_cb(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;
	uint64_t now = cm_now_ms();

	(void)fd;
	(void)what;
	if (c->state != COMP_UP || c->failing || c->xs == NULL)
		return;
	if (now - c->last_tx_ms + 100 < (uint64_t)c->keepalive_s * 1000)
		return;
	c->last_tx_ms = now;
	if (xs_conn_send_raw(c->xs, " ", 1) == -1)
		comp_fail(c, LOG_LVL_WARN, "cannot queue a keepalive (out of "
		    "memory)");
}

/* the server did not close its side in time: stop reading */
void
comp_drain_done(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;

	(void)fd;
	(void)what;
	c->draining = 0;
	if (c->xs != NULL)
		xs_conn_close(c->xs, 500);
}

const struct xs_callbacks comp_xs_cb = {
	.on_header = comp_on_header,
	.on_stanza = comp_on_stanza,
	.on_close = comp_on_close,
};
