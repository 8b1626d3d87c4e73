/*
 * component — the XEP-0114 link to the XMPP server: its life cycle (fail,
 * teardown, backoff, reconnect) and the interface (component.h).  Reaching
 * the server is component_dial.c, the stream on the socket
 * component_stream.c; component_int.h is what they share.
 *
 * A small state machine on the shared event base:
 *
 *	DISCONNECTED -(retry timer)-> CONNECTING (name looked up, then
 *	writable, SO_ERROR 0) -> HANDSHAKING -(<handshake/>)-> UP
 *
 * Every failure, wherever it is noticed (connect, stream error, EOF,
 * timers), goes through comp_fail(), which only records the first reason and
 * defers the teardown to an event of its own.  The teardown then logs ONE
 * line ("...; retrying in 1.3 s"), schedules the reconnect and tells the
 * owner.  Deferring keeps us from freeing the xs_conn from inside its own
 * stanza callback, and makes "one failure, one log line" hold even when a
 * stream error, the stream close and EOF arrive in the same read.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "backoff.h"
#include "clock.h"
#include "component.h"
#include "log.h"
#include "xmlstream.h"
#include "component_int.h"

struct timeval
comp_tv(unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
	    .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

/* "host:port", or "[v6]:port" so the port stays readable */
void
comp_hostport(const struct comp *c, char *buf, size_t len)
{
	if (strchr(c->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", c->host, c->port);
	else
		snprintf(buf, len, "%s:%u", c->host, c->port);
}

/*
 * Record why the link failed and schedule the teardown.  Only the first
 * reason counts: a stream error is usually followed by the stream close and
 * EOF, which are consequences, not news.
 */
void
comp_fail(struct comp *c, enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (c->failing)
		return;
	c->failing = 1;
	c->fail_lvl = lvl;
	va_start(ap, fmt);
	vsnprintf(c->fail_why, sizeof c->fail_why, fmt, ap);
	va_end(ap);
	event_active(c->fail_ev, 0, 0);
}

/* stop this attempt's timers and its half-open socket (not the stream) */
static void
comp_stop_attempt(struct comp *c)
{
	if (c->dns_req != NULL) {
		struct evdns_getaddrinfo_request *r = c->dns_req;

		c->dns_req = NULL;
		evdns_getaddrinfo_cancel(r);
	}
	c->resolving = 0;
	event_del(c->connect_ev);
	event_del(c->hs_timer);
	event_del(c->ka_timer);
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
}

/* close whatever this attempt holds; no events, no logs */
static void
comp_teardown(struct comp *c)
{
	struct xs_conn *xs = c->xs;

	comp_stop_attempt(c);
	c->xs = NULL;
	if (xs != NULL)
		xs_conn_free(xs);
	c->up_since_ms = 0;
	c->got_header = 0;
}

/*
 * The next wait, on common/'s backoff: its bound starts at twice the
 * minimum so that even the low half of the jitter ([bound/2, bound]) never
 * retries sooner than backoff_min (Prosody keeps a dead session a while and
 * answers a too-fast reconnect with "conflict").
 */
static unsigned
comp_next_delay(struct comp *c)
{
	unsigned first = c->backoff_min_ms > c->backoff_max_ms / 2 ?
	    c->backoff_max_ms : c->backoff_min_ms * 2;
	unsigned delay = cm_backoff_step(&c->backoff_ms, first,
	    c->backoff_max_ms);

	return delay < c->backoff_min_ms ? c->backoff_min_ms : delay;
}

static void
comp_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;
	struct timeval tv;
	unsigned delay;
	int was_up = c->state == COMP_UP;
	uint64_t up_ms = was_up ? cm_now_ms() - c->up_since_ms : 0;

	(void)fd;
	(void)what;
	comp_teardown(c);
	c->state = COMP_DISCONNECTED;
	c->failing = 0;
	if (c->stopped)
		return;
	/* a link that lasted, or a server that said it is restarting: a new
	 * incident, not more of the old failures */
	if (was_up && (up_ms >= COMP_RESET_AFTER_UP_S * 1000 || c->restarting))
		c->backoff_ms = 0;
	c->restarting = 0;
	delay = comp_next_delay(c);
	log_msg(c->fail_lvl, "component", "%s; retrying in %u.%u s",
	    c->fail_why, delay / 1000, delay % 1000 / 100);
	tv = comp_tv(delay);
	evtimer_add(c->retry_timer, &tv);
	/* last: the owner may do anything from here, even comp_free() */
	if (c->ev.down != NULL)
		c->ev.down(c->arg, c->fail_why);
}

static void
comp_closed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;

	(void)fd;
	(void)what;
	if (c->ev.closed != NULL)
		c->ev.closed(c->arg);
}

static void
comp_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	comp_connect(arg);
}

/* ---- public ---- */

struct comp *
comp_new(struct event_base *base, const struct comp_config *cfg,
    const struct comp_events *ev, void *arg)
{
	struct comp *c;

	if (cfg->jid == NULL || cfg->secret == NULL || cfg->host == NULL ||
	    cfg->port == 0)
		return NULL;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->base = base;
	c->fd = -1;
	c->stopped = 1;
	c->port = cfg->port;
	c->keepalive_s = cfg->keepalive_s != 0 ? cfg->keepalive_s : 60;
	c->backoff_min_ms = cfg->backoff_min_ms != 0 ? cfg->backoff_min_ms :
	    1000;
	c->backoff_max_ms = cfg->backoff_max_ms != 0 ? cfg->backoff_max_ms :
	    60000;
	if (c->backoff_max_ms < c->backoff_min_ms)
		c->backoff_max_ms = c->backoff_min_ms;
	c->backoff_ms = 0;
	c->max_stanza = cfg->max_stanza != 0 ? cfg->max_stanza : 512 * 1024;
	if (ev != NULL)
		c->ev = *ev;
	c->arg = arg;
	if ((c->jid = strdup(cfg->jid)) == NULL ||
	    (c->secret = strdup(cfg->secret)) == NULL ||
	    (c->host = strdup(cfg->host)) == NULL)
		goto fail;
	/* assigned for real in comp_connect(); allocated here once */
	if ((c->connect_ev = event_new(base, -1, 0, comp_connect_cb, c)) ==
	    NULL ||
	    (c->hs_timer = evtimer_new(base, comp_hs_timeout_cb, c)) == NULL ||
	    (c->ka_timer = event_new(base, -1, EV_PERSIST, comp_ka_cb, c)) ==
	    NULL ||
	    (c->retry_timer = evtimer_new(base, comp_retry_cb, c)) == NULL ||
	    (c->fail_ev = event_new(base, -1, 0, comp_fail_cb, c)) == NULL ||
	    (c->closed_ev = event_new(base, -1, 0, comp_closed_cb, c)) == NULL ||
	    (c->drain_timer = evtimer_new(base, comp_drain_done, c)) == NULL)
		goto fail;
	return c;
fail:
	comp_free(c);
	return NULL;
}

int
comp_start(struct comp *c)
{
	if (!c->stopped)
		return 0;
	c->stopped = 0;
	comp_connect(c);
	return 0;
}

int
comp_send(struct comp *c, xmpp_stanza_t *st)
{
	const char *name, *to;
	size_t len;
	int rc;

	if (c->state != COMP_UP || c->failing || c->xs == NULL)
		return -1;
	/* serialized once, into the connection's queue */
	rc = xs_conn_send_max(c->xs, st, 0, c->max_stanza, &len);
	if (rc == -3) {
		log_error("component", "cannot serialize a stanza (out of "
		    "memory)");
		return -1;
	}
	if (rc == -2) {
		name = xmpp_stanza_get_name(st);
		to = xmpp_stanza_get_to(st);
		log_warn("component", "refusing to send a %zu-byte <%s> to %s: "
		    "larger than the server's stanza limit (%zu bytes)", len,
		    name != NULL ? name : "?", to != NULL ? to : "?",
		    c->max_stanza);
		return -2;
	}
	if (rc == -1)
		return -1;
	c->last_tx_ms = cm_now_ms();
	return 0;
}

enum comp_state
comp_state(const struct comp *c)
{
	return c->failing ? COMP_DISCONNECTED : c->state;
}

const char *
comp_state_str(enum comp_state s)
{
	switch (s) {
	case COMP_DISCONNECTED:
		return "disconnected";
	case COMP_CONNECTING:
		return "connecting";
	case COMP_HANDSHAKING:
		return "handshaking";
	case COMP_UP:
		return "up";
	}
	return "?";
}

long
comp_uptime(const struct comp *c)
{
	if (c->state != COMP_UP || c->failing)
		return 0;
	return (long)((cm_now_ms() - c->up_since_ms) / 1000);
}

int
comp_set_secret(struct comp *c, const char *secret)
{
	char *s;

	if (secret == NULL || (s = strdup(secret)) == NULL)
		return -1;
	explicit_bzero(c->secret, strlen(c->secret));
	free(c->secret);
	c->secret = s;
	return 0;
}

void
comp_shutdown(struct comp *c)
{
	static const char close_tag[] = "</stream:stream>";
	struct xs_conn *xs = c->xs;
	int was_up = c->state == COMP_UP;

	if (c->stopped)
		return;
	c->stopped = 1;
	event_del(c->retry_timer);
	comp_stop_attempt(c);
	c->state = COMP_DISCONNECTED;
	if (was_up)
		log_info("component", "closing the link to the server");
	if (xs != NULL && !c->failing && was_up &&
	    xs_conn_send_raw(xs, close_tag, sizeof close_tag - 1) == 0) {
		/*
		 * XEP-0114 has no acknowledgements: stanzas the server wrote
		 * before it read our goodbye are in flight.  Keep reading until
		 * it closes its side too (on_close then activates closed_ev),
		 * at most COMP_DRAIN_MS.
		 */
		struct timeval tv = { COMP_DRAIN_MS / 1000,
		    (COMP_DRAIN_MS % 1000) * 1000 };

		c->draining = 1;
		if (c->drain_timer != NULL && evtimer_add(c->drain_timer, &tv) == 0)
			return;
		c->draining = 0;
		xs_conn_close(xs, 1000);
		return;
	}
	if (xs != NULL && !c->failing) {
		/* on_close (after the flush or the linger) frees it and
		 * activates closed_ev */
		(void)xs_conn_send_raw(xs, close_tag, sizeof close_tag - 1);
		xs_conn_close(xs, 1000);
		return;
	}
	/* nothing to flush (a pending teardown frees what is left) */
	event_active(c->closed_ev, 0, 0);
}

void
comp_free(struct comp *c)
{
	if (c == NULL)
		return;
	c->stopped = 1;
	if (c->connect_ev != NULL)
		event_free(c->connect_ev);
	if (c->hs_timer != NULL)
		event_free(c->hs_timer);
	if (c->ka_timer != NULL)
		event_free(c->ka_timer);
	if (c->retry_timer != NULL)
		event_free(c->retry_timer);
	if (c->fail_ev != NULL)
		event_free(c->fail_ev);
	if (c->closed_ev != NULL)
		event_free(c->closed_ev);
	if (c->drain_timer != NULL)
		event_free(c->drain_timer);
	if (c->xs != NULL)
		xs_conn_free(c->xs);
	if (c->fd != -1)
		close(c->fd);
	if (c->dns_req != NULL)
		evdns_getaddrinfo_cancel(c->dns_req);
	if (c->dns != NULL)
		evdns_base_free(c->dns, 0);
	if (c->ai != NULL)
		evutil_freeaddrinfo(c->ai);
	if (c->secret != NULL)
		explicit_bzero(c->secret, strlen(c->secret));
	free(c->secret);
	free(c->jid);
	free(c->host);
	free(c);
}
