/*
 * component — the XEP-0114 link to the XMPP server.
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "backoff.h"
#include "clock.h"
#include "component.h"
#include "log.h"
#include "xmlstream.h"

/*
 * Connect, and header + handshake.  A server answers in milliseconds; one
 * that accepted the TCP connection while still starting may never answer
 * it (seen with Prosody restarts), so give up soon and dial again.
 */
#define COMP_HANDSHAKE_TIMEOUT_S	5
/* a link this old resets the backoff: a server that drops the link within
 * seconds again and again backs us off; one that ran a while and then
 * died (a crash, kill -9) is a new incident, back in 1-2 s */
#define COMP_RESET_AFTER_UP_S		10
#define COMP_ID_MAX			1024	/* longest stream id we hash */
#define COMP_DRAIN_MS			5000	/* reading on after our goodbye */
#define NS_STREAMS	"http://etherx.jabber.org/streams"
#define NS_XMPP_STREAMS	"urn:ietf:params:xml:ns:xmpp-streams"

struct comp {
	struct event_base *base;
	char *jid;
	char *secret;
	char *host;
	uint16_t port;
	unsigned keepalive_s;
	unsigned backoff_min_ms;
	unsigned backoff_max_ms;
	size_t max_stanza;
	struct comp_events ev;
	void *arg;

	enum comp_state state;
	int stopped;		/* before comp_start, after comp_shutdown */
	int ever_up;
	int got_header;
	struct addrinfo *ai;	/* this round's addresses, one per attempt */
	struct addrinfo *ai_next;	/* NULL: resolve again first */
	struct evdns_base *dns;	/* made on the first name (not address) */
	struct evdns_getaddrinfo_request *dns_req;
	int resolving;
	int fd;			/* only while CONNECTING */
	struct event *connect_ev;
	struct xs_conn *xs;	/* HANDSHAKING, UP, or closing after shutdown */
	struct event *hs_timer;
	struct event *ka_timer;
	struct event *retry_timer;
	struct event *fail_ev;
	struct event *closed_ev;	/* tells the owner after comp_shutdown */
	struct event *drain_timer;	/* bounds the read after our goodbye */
	int draining;		/* our </stream:stream> is out; still reading */
	unsigned backoff_ms;	/* bound of the last delay; 0 = start over */
	uint64_t up_since_ms;
	uint64_t last_tx_ms;

	int failing;		/* a teardown is pending: ignore input */
	int restarting;		/* the server said system-shutdown */
	enum log_level fail_lvl;
	char fail_why[512];
};

static void comp_connect(struct comp *);
static void comp_dial(struct comp *);

static struct timeval
comp_tv(unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
	    .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

/* "host:port", or "[v6]:port" so the port stays readable */
static void
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
static void
comp_fail(struct comp *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
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

static void
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
static void
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
static void
comp_drain_done(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;

	(void)fd;
	(void)what;
	c->draining = 0;
	if (c->xs != NULL)
		xs_conn_close(c->xs, 500);
}

/* ---- connecting ---- */

static const struct xs_callbacks comp_xs_cb = {
	.on_header = comp_on_header,
	.on_stanza = comp_on_stanza,
	.on_close = comp_on_close,
};

static void
comp_connected(struct comp *c)
{
	struct xs_limits lim = { .max_stanza = c->max_stanza };
	struct timeval tv = comp_tv(COMP_HANDSHAKE_TIMEOUT_S * 1000);
	struct evbuffer *hdr = NULL;
	static const char open1[] = "<?xml version='1.0'?><stream:stream "
	    "xmlns='jabber:component:accept' "
	    "xmlns:stream='" NS_STREAMS "' to='";
	int fd = c->fd;

	event_del(c->connect_ev);
	c->fd = -1;
	/* xs_conn owns the fd from here on, even when it fails */
	if ((c->xs = xs_conn_new(c->base, fd, &lim, &comp_xs_cb, c)) == NULL) {
		comp_fail(c, LOG_LVL_ERROR, "cannot set up the stream (out of "
		    "memory)");
		return;
	}
	c->state = COMP_HANDSHAKING;
	evtimer_add(c->hs_timer, &tv);
	log_debug("component", "connected, opening the stream to %s", c->jid);

	if ((hdr = evbuffer_new()) == NULL ||
	    evbuffer_add(hdr, open1, sizeof open1 - 1) == -1 ||
	    xs_escape(hdr, c->jid, strlen(c->jid), '\'') == -1 ||
	    evbuffer_add(hdr, "'>", 2) == -1 ||
	    xs_conn_send_raw(c->xs, (const char *)evbuffer_pullup(hdr, -1),
	    evbuffer_get_length(hdr)) == -1)
		comp_fail(c, LOG_LVL_ERROR, "cannot send the stream header "
		    "(out of memory)");
	if (hdr != NULL)
		evbuffer_free(hdr);
}

static void
comp_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;
	char hp[300];
	int err = 0;
	socklen_t len = sizeof err;

	comp_hostport(c, hp, sizeof hp);
	if (what & EV_TIMEOUT) {
		comp_fail(c, LOG_LVL_WARN, "cannot connect to %s: timed out "
		    "after %d s", hp, COMP_HANDSHAKE_TIMEOUT_S);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		comp_fail(c, LOG_LVL_WARN, "cannot connect to %s: %s", hp,
		    strerror(err));
		return;
	}
	comp_connected(c);
}

static void
comp_resolved(int rc, struct evutil_addrinfo *ai, void *arg)
{
	struct comp *c = arg;

	if (rc == EVUTIL_EAI_CANCEL)
		return;		/* the attempt was stopped: c may be going */
	c->dns_req = NULL;
	c->resolving = 0;
	if (rc != 0) {
		comp_fail(c, LOG_LVL_WARN, "cannot resolve %s: %s", c->host,
		    evutil_gai_strerror(rc));
		return;
	}
	if (c->ai != NULL)
		evutil_freeaddrinfo(c->ai);
	c->ai = c->ai_next = ai;
	comp_dial(c);
}

/*
 * The server's addresses, anew for each round through them: a server in a
 * container may come back on another address.  A numeric host costs
 * nothing; a name goes to libevent's resolver (/etc/hosts, then the
 * nameservers of /etc/resolv.conf), never to a blocking getaddrinfo() that
 * would stall every pipe on the loop while DNS is slow.
 *
 * No AI_ADDRCONFIG: it ignores loopback, so on a host (or netns) whose only
 * IPv4 address is 127.0.0.1 but that has global IPv6 addresses (every
 * Yggdrasil node) it refuses "127.0.0.1" outright.
 */
static void
comp_resolve(struct comp *c)
{
	struct evutil_addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = EVUTIL_AI_NUMERICSERV | EVUTIL_AI_NUMERICHOST };
	struct evutil_addrinfo *ai;
	struct evdns_getaddrinfo_request *r;
	char port[8];

	snprintf(port, sizeof port, "%u", c->port);
	if (evutil_getaddrinfo(c->host, port, &hints, &ai) == 0) {
		comp_resolved(0, ai, c);
		return;
	}
	if (c->dns == NULL && (c->dns = evdns_base_new(c->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL) {
		comp_fail(c, LOG_LVL_WARN, "cannot resolve %s: no resolver"
		    " (/etc/resolv.conf)", c->host);
		return;
	}
	hints.ai_flags &= ~EVUTIL_AI_NUMERICHOST;
	c->resolving = 1;
	r = evdns_getaddrinfo(c->dns, c->host, port, &hints, comp_resolved, c);
	if (c->resolving)	/* else answered already (/etc/hosts) */
		c->dns_req = r;
}

static void
comp_connect(struct comp *c)
{
	if (c->stopped || c->state != COMP_DISCONNECTED || c->failing)
		return;
	c->state = COMP_CONNECTING;
	if (c->ai_next == NULL)
		comp_resolve(c);	/* then comp_dial() */
	else
		comp_dial(c);
}

/* one attempt on the next address of the round */
static void
comp_dial(struct comp *c)
{
	struct addrinfo *a = c->ai_next;
	struct timeval tv = comp_tv(COMP_HANDSHAKE_TIMEOUT_S * 1000);
	char hp[300];
	unsigned uto;

	c->ai_next = a->ai_next;
	comp_hostport(c, hp, sizeof hp);
	log_debug("component", "connecting to %s", hp);

	c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (c->fd == -1) {
		comp_fail(c, LOG_LVL_ERROR, "cannot connect to %s: socket: %s",
		    hp, strerror(errno));
		return;
	}
	/* unacknowledged data this long means a dead link (keepalives make
	 * sure there is data); the loopback never gets here */
	uto = 3 * c->keepalive_s * 1000;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto,
	    sizeof uto);
	if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0) {
		comp_connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		comp_fail(c, LOG_LVL_WARN, "cannot connect to %s: %s", hp,
		    strerror(errno));
		return;
	}
	event_del(c->connect_ev);
	event_assign(c->connect_ev, c->base, c->fd, EV_WRITE, comp_connect_cb,
	    c);
	event_add(c->connect_ev, &tv);
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
	char *s;
	size_t len;
	int rc;

	if (c->state != COMP_UP || c->failing || c->xs == NULL)
		return -1;
	if ((s = xs_serialize_str(st, 0, &len)) == NULL) {
		log_error("component", "cannot serialize a stanza (out of "
		    "memory)");
		return -1;
	}
	if (len > c->max_stanza) {
		name = xmpp_stanza_get_name(st);
		to = xmpp_stanza_get_to(st);
		log_warn("component", "refusing to send a %zu-byte <%s> to %s: "
		    "larger than the server's stanza limit (%zu bytes)", len,
		    name != NULL ? name : "?", to != NULL ? to : "?",
		    c->max_stanza);
		free(s);
		return -2;
	}
	rc = xs_conn_send_raw(c->xs, s, len);
	free(s);
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
