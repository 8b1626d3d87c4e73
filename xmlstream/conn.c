/*
 * xs_conn: one socket as an XML stream — a libevent bufferevent feeding an
 * xs_parser, a header timer, and a paced output queue.
 *
 * Output is a queue of units (one per xs_conn_send* call).  The bufferevent
 * is given the next unit only once its output buffer is empty, so every
 * unit leaves in a write() of its own; with pace_ms > 0 a timer also
 * separates units, because pascal mis-frames stanzas that arrive in one
 * read (BAREV.md §7).
 *
 * Ending: when the peer ends the stream (</stream:stream>, EOF, error,
 * limits, header timeout) the socket is closed and queued output dropped
 * before on_close is called; xs_conn_close() instead flushes, half-closes
 * (our FIN after the last byte) and waits for the peer's EOF, all bounded
 * by its linger time, and then reports XS_CLOSED_LOCAL.  What the peer
 * sends meanwhile is read and discarded, and so is what the kernel still
 * holds when the socket is closed: Linux answers a close() with unread
 * input by a reset, which throws away whatever of our output the peer
 * has not yet taken (our goodbye), so a socket is never closed unread
 * unless the owner asks for a reset (SO_LINGER 0).  Callbacks may free
 * the connection: while `busy` xs_conn_free() only marks it doomed and the
 * outermost libevent callback finishes the job.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "xmlstream.h"

/* Bytes the bufferevent may read ahead of the parser. */
#define XS_READ_HIGH	(16 * 1024)
/* At most this much input is taken in one go outside the loop, parsed or
 * discarded (a peer that writes faster than that must not hold us). */
#define XS_DISCARD_MAX	(4 * 1024 * 1024)

struct xs_unit {
	TAILQ_ENTRY(xs_unit)	 entry;
	size_t			 len;
	char			 data[];
};
TAILQ_HEAD(xs_units, xs_unit);

struct xs_conn {
	struct event_base	*base;
	struct bufferevent	*bev;
	struct xs_parser	*parser;
	struct xs_callbacks	 cb;
	void			(*on_written)(void *);
	void			*arg;
	int			 fd;

	struct event		*header_timer;
	struct event		*pace_timer;
	struct event		*linger_timer;
	unsigned		 pace_ms;

	struct xs_units		 queue;
	size_t			 queued_bytes;

	unsigned		 busy;
	unsigned		 inflight:1;	/* a unit is in the bufferevent */
	unsigned		 pacing:1;	/* pace timer running */
	unsigned		 closing:1;	/* xs_conn_close() was called */
	unsigned		 half_closed:1;	/* our FIN is out (closing) */
	unsigned		 peer_eof:1;	/* the peer's FIN came (closing) */
	unsigned		 closed:1;	/* on_close ran or is not due */
	unsigned		 doomed:1;
};

static void	xs_conn_kick(struct xs_conn *);

static void
xs_conn_drop_queue(struct xs_conn *c)
{
	struct xs_unit *u;

	while ((u = TAILQ_FIRST(&c->queue)) != NULL) {
		TAILQ_REMOVE(&c->queue, u, entry);
		free(u);
	}
	c->queued_bytes = 0;
}

static void
xs_conn_free_timer(struct event **ev)
{
	if (*ev != NULL)
		event_free(*ev);
	*ev = NULL;
}

/*
 * Take what the kernel holds for us now, at most XS_DISCARD_MAX bytes, and
 * parse it (xs_conn_read_now) or throw it away.  Thrown away before every
 * close(), so that it ends with a FIN, not a reset that would take our
 * last bytes with it; input that arrives after the close still meets a
 * reset: nothing can be done for bytes sent to a socket that is gone.
 */
static void
xs_conn_take_input(struct xs_conn *c, int parse)
{
	char buf[16384];
	size_t total = 0;
	ssize_t n;

	while (total < XS_DISCARD_MAX && !(parse && (c->closed || c->doomed))) {
		n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0) {
			total += (size_t)n;
			if (parse && xs_parser_feed(c->parser, buf, (size_t)n) != 0)
				break;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 && parse)
			xs_parser_eof(c->parser);
		break;		/* EOF, nothing more for now, or an error */
	}
}

/* Socket and timers go; the struct and parser stay until freed. */
static void
xs_conn_shut(struct xs_conn *c)
{
	xs_conn_free_timer(&c->header_timer);
	xs_conn_free_timer(&c->pace_timer);
	xs_conn_free_timer(&c->linger_timer);
	if (c->bev != NULL && c->fd != -1)
		xs_conn_take_input(c, 0);
	if (c->bev != NULL)
		bufferevent_free(c->bev);	/* closes the fd */
	c->bev = NULL;
	c->fd = -1;
	xs_conn_drop_queue(c);
	c->inflight = 0;
}

static void
xs_conn_destroy(struct xs_conn *c)
{
	xs_conn_shut(c);
	if (c->parser != NULL)
		xs_parser_free(c->parser);
	free(c);
}

/* Close the socket and tell the owner, once. */
static void
xs_conn_end(struct xs_conn *c, enum xs_close why, const char *detail)
{
	if (c->closed)
		return;
	c->closed = 1;
	xs_conn_shut(c);
	if (c->cb.on_close != NULL)
		c->cb.on_close(c->arg, why, detail);
}

/* Every libevent entry point brackets its work with these two. */
static void
xs_conn_enter(struct xs_conn *c)
{
	c->busy++;
}

static int
xs_conn_leave(struct xs_conn *c)
{
	if (--c->busy == 0 && c->doomed) {
		xs_conn_destroy(c);
		return -1;
	}
	return c->doomed ? -1 : 0;
}

/* ---- parser callbacks ---- */

static void
xs_conn_on_header(void *arg, xmpp_stanza_t *hdr)
{
	struct xs_conn *c = arg;

	/* The timer is about the header; the owner may also stop it early. */
	xs_conn_free_timer(&c->header_timer);
	if (c->cb.on_header != NULL && !c->closing)
		c->cb.on_header(c->arg, hdr);
}

static void
xs_conn_on_stanza(void *arg, xmpp_stanza_t *st)
{
	struct xs_conn *c = arg;

	if (c->cb.on_stanza != NULL && !c->closing)
		c->cb.on_stanza(c->arg, st);
}

static void
xs_conn_on_close(void *arg, enum xs_close why, const char *detail)
{
	xs_conn_end(arg, why, detail);
}

/* ---- libevent callbacks ---- */

static void
xs_conn_readcb(struct bufferevent *bev, void *arg)
{
	struct xs_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;
	size_t n;
	int rc;

	xs_conn_enter(c);
	if (c->closing) {
		/* After our goodbye nothing is parsed; it is only read, so the
		 * peer is never stuck on a full window and the close is clean. */
		evbuffer_drain(in, evbuffer_get_length(in));
		xs_conn_leave(c);
		return;
	}
	while (!c->closed && !c->doomed && evbuffer_get_length(in) > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = v.iov_len;
		rc = xs_parser_feed(c->parser, v.iov_base, n);
		if (c->doomed || c->closed)
			break;
		evbuffer_drain(in, n);
		if (rc != 0)
			break;
	}
	xs_conn_leave(c);
}

static void
xs_conn_finish_close(struct xs_conn *c)
{
	xs_conn_end(c, XS_CLOSED_LOCAL, NULL);
}

/*
 * Closing, and everything is in the kernel: send our FIN after it, then
 * wait (within the linger time) for the peer's, which says it has read
 * all of ours.  Returns 1 if the close can finish now.
 */
static int
xs_conn_half_close(struct xs_conn *c)
{
	if (!c->half_closed) {
		c->half_closed = 1;
		if (c->fd == -1 || shutdown(c->fd, SHUT_WR) == -1)
			return 1;	/* nothing to wait for */
	}
	return c->peer_eof;
}

static void
xs_conn_writecb(struct bufferevent *bev, void *arg)
{
	struct xs_conn *c = arg;

	(void)bev;
	xs_conn_enter(c);
	c->inflight = 0;
	/*
	 * Paced, the next unit waits pace_ms after this one, whether it is
	 * queued already or sent by on_written below (a receipt's ping right
	 * after its message): two units must not share one of pascal's reads.
	 */
	if (c->pace_ms > 0 && c->pace_timer != NULL) {
		struct timeval tv = { c->pace_ms / 1000,
		    (c->pace_ms % 1000) * 1000 };

		c->pacing = 1;
		evtimer_add(c->pace_timer, &tv);
	}
	if (c->on_written != NULL && !c->closed) {
		c->on_written(c->arg);
		if (c->closed || c->doomed) {
			xs_conn_leave(c);
			return;
		}
	}
	xs_conn_kick(c);	/* nothing while pacing */
	xs_conn_leave(c);
}

static void
xs_conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct xs_conn *c = arg;
	char detail[128];

	(void)bev;
	xs_conn_enter(c);
	if (c->closing && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/*
		 * The peer is done writing.  It may still read: what we queued
		 * goes on until it is in the kernel (the linger timer bounds
		 * it), then our FIN, and then nothing is left to wait for.
		 */
		c->peer_eof = 1;
		bufferevent_disable(c->bev, EV_READ);
		if (!c->inflight && TAILQ_EMPTY(&c->queue) &&
		    xs_conn_half_close(c))
			xs_conn_finish_close(c);
	} else if (c->closing) {
		/* The owner asked to close; a dead peer just ends it sooner. */
		xs_conn_finish_close(c);
	} else if (what & BEV_EVENT_EOF) {
		/* Bytes still buffered were read by readcb already. */
		if (!c->closed)
			xs_parser_eof(c->parser);
	} else if (what & BEV_EVENT_ERROR) {
		snprintf(detail, sizeof detail, "%s", strerror(errno));
		if (!c->closed)
			xs_conn_end(c, XS_ERR_IO, detail);
	}
	xs_conn_leave(c);
}

static void
xs_conn_header_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct xs_conn *c = arg;

	(void)fd;
	(void)what;
	xs_conn_enter(c);
	xs_conn_end(c, XS_ERR_HEADER_TIMEOUT, "no stream header in time");
	xs_conn_leave(c);
}

static void
xs_conn_pace_done(evutil_socket_t fd, short what, void *arg)
{
	struct xs_conn *c = arg;

	(void)fd;
	(void)what;
	xs_conn_enter(c);
	c->pacing = 0;
	xs_conn_kick(c);
	xs_conn_leave(c);
}

static void
xs_conn_linger_done(evutil_socket_t fd, short what, void *arg)
{
	struct xs_conn *c = arg;

	(void)fd;
	(void)what;
	xs_conn_enter(c);
	xs_conn_finish_close(c);
	xs_conn_leave(c);
}

/*
 * Hand the bufferevent the next unit if it has nothing to write; the
 * bytes are referenced, not copied, and freed once written.
 */
static void
xs_unit_written(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

static void
xs_conn_kick(struct xs_conn *c)
{
	struct xs_unit *u;
	struct evbuffer *out;

	if (c->closed || c->bev == NULL || c->inflight || c->pacing)
		return;
	u = TAILQ_FIRST(&c->queue);
	if (u == NULL) {
		if (c->closing && xs_conn_half_close(c))
			xs_conn_finish_close(c);
		return;
	}
	out = bufferevent_get_output(c->bev);
	TAILQ_REMOVE(&c->queue, u, entry);
	c->queued_bytes -= u->len;
	if (evbuffer_add_reference(out, u->data, u->len, xs_unit_written,
	    u) != 0) {
		free(u);
		xs_conn_end(c, XS_ERR_IO, "out of memory");
		return;
	}
	c->inflight = 1;
}

/* ---- public ---- */

struct xs_conn *
xs_conn_new(struct event_base *base, int fd, const struct xs_limits *lim,
    const struct xs_callbacks *cb, void *arg)
{
	static const struct xs_callbacks pcb = {
		xs_conn_on_header, xs_conn_on_stanza, xs_conn_on_close,
	};
	struct xs_conn *c;
	struct timeval tv;
	int one = 1;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);	/* we own it either way */
		return NULL;
	}
	c->base = base;
	c->fd = fd;
	TAILQ_INIT(&c->queue);
	if (cb != NULL)
		c->cb = *cb;
	c->arg = arg;
	c->parser = xs_parser_new(lim, &pcb, c);
	if (c->parser == NULL)
		goto fail;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		goto fail;
	/* One stanza per segment (BAREV.md §7); not a TCP socket: no-op. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	bufferevent_setcb(c->bev, xs_conn_readcb, xs_conn_writecb,
	    xs_conn_eventcb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, XS_READ_HIGH);
	if (lim != NULL && lim->header_timeout_ms > 0) {
		c->header_timer = evtimer_new(base, xs_conn_header_timeout, c);
		if (c->header_timer == NULL)
			goto fail;
		tv.tv_sec = lim->header_timeout_ms / 1000;
		tv.tv_usec = (lim->header_timeout_ms % 1000) * 1000;
		if (evtimer_add(c->header_timer, &tv) != 0)
			goto fail;
	}
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
		goto fail;
	return c;
fail:
	if (c->bev == NULL)
		close(fd);	/* we own it either way */
	xs_conn_destroy(c);
	return NULL;
}

int
xs_conn_send_raw(struct xs_conn *c, const char *buf, size_t len)
{
	struct xs_unit *u;

	if (c->closed || c->closing || c->bev == NULL)
		return -1;
	if (len == 0)
		return 0;
	u = malloc(sizeof *u + len);
	if (u == NULL)
		return -1;
	u->len = len;
	memcpy(u->data, buf, len);
	TAILQ_INSERT_TAIL(&c->queue, u, entry);
	c->queued_bytes += len;
	xs_conn_kick(c);
	return 0;
}

int
xs_conn_send_max(struct xs_conn *c, xmpp_stanza_t *st, unsigned ser_flags,
    size_t max, size_t *lenp)
{
	struct xs_unit *u;
	size_t len = 0;

	if (c->closed || c->closing || c->bev == NULL)
		return -1;
	u = xs_serialize_block(st, ser_flags, offsetof(struct xs_unit, data), &len);
	if (lenp != NULL)
		*lenp = len;
	if (u == NULL)
		return -3;
	if (len == 0 || (max > 0 && len > max)) {
		free(u);
		return len == 0 ? 0 : -2;
	}
	u->len = len;
	TAILQ_INSERT_TAIL(&c->queue, u, entry);
	c->queued_bytes += len;
	xs_conn_kick(c);
	return 0;
}

int
xs_conn_send(struct xs_conn *c, xmpp_stanza_t *st, unsigned ser_flags)
{
	return xs_conn_send_max(c, st, ser_flags, 0, NULL) == 0 ? 0 : -1;
}

void
xs_conn_set_pace(struct xs_conn *c, unsigned pace_ms)
{
	if (pace_ms > 0 && c->pace_timer == NULL && c->base != NULL) {
		c->pace_timer = evtimer_new(c->base, xs_conn_pace_done, c);
		if (c->pace_timer == NULL)
			return;		/* unpaced rather than stuck */
	}
	c->pace_ms = pace_ms;
	if (pace_ms == 0 && c->pacing) {
		c->pacing = 0;
		evtimer_del(c->pace_timer);
		xs_conn_kick(c);
	}
}

void
xs_conn_on_written(struct xs_conn *c, void (*fn)(void *arg))
{
	c->on_written = fn;
}

size_t
xs_conn_pending(const struct xs_conn *c)
{
	size_t n = c->queued_bytes;

	if (c->bev != NULL)
		n += evbuffer_get_length(bufferevent_get_output(c->bev));
	return n;
}

void
xs_conn_header_done(struct xs_conn *c)
{
	xs_conn_free_timer(&c->header_timer);
}

int
xs_conn_reset_stream(struct xs_conn *c)
{
	if (c->closed)
		return -1;
	return xs_parser_reset(c->parser);
}

void
xs_conn_close(struct xs_conn *c, unsigned linger_ms)
{
	struct timeval tv;

	if (c->closed || c->closing)
		return;
	c->closing = 1;
	xs_conn_free_timer(&c->header_timer);
	if (linger_ms > 0) {
		/*
		 * Flush, FIN, the peer's FIN: a peer that reads nothing, or
		 * never closes, must not hold us longer than this.  Its input
		 * is read and discarded meanwhile (xs_conn_readcb).
		 */
		tv.tv_sec = linger_ms / 1000;
		tv.tv_usec = (linger_ms % 1000) * 1000;
		if (TAILQ_EMPTY(&c->queue) && !c->inflight)
			(void)xs_conn_half_close(c);	/* no callback here */
	} else {
		/* Nothing to flush (or no time to): close on the next turn of
		 * the loop, never from inside the caller's own call. */
		xs_conn_drop_queue(c);
		if (c->inflight && linger_ms == 0)
			evbuffer_drain(bufferevent_get_output(c->bev),
			    evbuffer_get_length(bufferevent_get_output(c->bev)));
		c->inflight = 0;
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	c->linger_timer = evtimer_new(c->base, xs_conn_linger_done, c);
	if (c->linger_timer == NULL || evtimer_add(c->linger_timer, &tv) != 0) {
		/* Cannot wait: drop the socket now, report on the next event
		 * there will never be — so report now. */
		xs_conn_end(c, XS_CLOSED_LOCAL, "out of memory");
		return;
	}
}

int
xs_conn_read_now(struct xs_conn *c)
{
	if (c->closed || c->closing || c->bev == NULL)
		return 0;
	xs_conn_enter(c);
	/* what the bufferevent read ahead comes first */
	xs_conn_readcb(c->bev, c);
	xs_conn_take_input(c, 1);
	return xs_conn_leave(c);
}

void
xs_conn_free(struct xs_conn *c)
{
	if (c == NULL)
		return;
	c->closed = 1;
	if (c->busy > 0) {
		c->doomed = 1;
		xs_conn_shut(c);
		if (c->parser != NULL)
			xs_parser_free(c->parser);	/* deferred if feeding */
		c->parser = NULL;
		return;
	}
	xs_conn_destroy(c);
}

int
xs_conn_fd(const struct xs_conn *c)
{
	return c->fd;
}
