/*
 * pipe — one TCP connection speaking Barev, from the first byte to the close:
 * its life cycle, its events and its end.  The header phase is
 * pipe_header.c, sending on an up pipe pipe_send.c.
 *
 * A pipe is either our dial (outbound: we know the contact from the start)
 * or an accepted connection (inbound: the peer is identified from its
 * header's `from` localpart and its source address, BAREV.md §2).  Once
 * both headers are out, our presence goes out and the pipe is up; from then
 * on ping.c keeps it alive (BAREV.md §5) and every other stanza goes to
 * the gateway.
 *
 * The one idea: pipes are never freed inside a callback chain.  Closing one
 * (bl_pipe_kill) detaches it from its contact, emits pipe_down and queues it
 * for the reaper, an event of its own; so a stanza callback that closes its
 * own pipe, or a parser that still holds buffered input, never touches freed
 * memory.
 */
#include <sys/socket.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "clock.h"
#include "internal.h"
#include "xmlstream.h"
#include "log.h"

#define LINGER_MS	2000	/* flushing </stream:stream> on an orderly close */
#define STREAM_NS	"http://etherx.jabber.org/streams"

static void	 pipe_on_stanza(void *, xmpp_stanza_t *);
static void	 pipe_on_close(void *, enum xs_close, const char *);
static void	 pipe_timer(evutil_socket_t, short, void *);

static const struct xs_callbacks pipe_cb = {
	bl_pipe_on_header, pipe_on_stanza, pipe_on_close
};

int
bl_jid_me(const struct bl_pipe *p, char *out, size_t len)
{
	return (bl_fmt_jid(out, len, p->ident->nick, p->ident->addrtxt));
}

int
bl_jid_peer(const struct bl_pipe *p, char *out, size_t len)
{
	return (bl_fmt_jid(out, len, p->contact->nick, p->contact->addrtxt));
}

void
bl_timer_in(struct event *ev, uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

static struct bl_pipe *
pipe_alloc(struct bl *bl)
{
	struct bl_pipe	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return (NULL);
	p->bl = bl;
	p->fd = -1;
	TAILQ_INIT(&p->pings);
	TAILQ_INIT(&p->tokens);
	evtimer_assign(&p->timer, bl->base, pipe_timer, p);
	TAILQ_INSERT_TAIL(&bl->pipes, p, entry);
	return (p);
}

int
bl_pipe_conn(struct bl_pipe *p, int fd)
{
	struct bl	*bl = p->bl;
	struct xs_limits lim;

	/* xs_conn owns fd from here, failure or not, and sets TCP_NODELAY:
	 * one stanza per segment, at once (BAREV.md §7) */
	memset(&lim, 0, sizeof(lim));
	lim.max_stanza = bl->cfg.max_stanza;
	lim.max_depth = bl->cfg.max_depth;
	lim.header_timeout_ms = bl->cfg.header_timeout_ms;
	p->conn = xs_conn_new(bl->base, fd, &lim, &pipe_cb, p);
	if (p->conn == NULL)
		return (-1);
	xs_conn_on_written(p->conn, bl_pipe_on_written);
	/* paced until the peer's header shows it is not pascal */
	xs_conn_set_pace(p->conn, bl->cfg.pace_ms);
	return (0);
}

struct bl_pipe *
bl_pipe_inbound(struct bl_listener *l, int fd, const struct in6_addr *src)
{
	struct bl	*bl = l->bl;
	struct bl_pipe	*p;
	struct bl_allow	*a;

	if ((p = pipe_alloc(bl)) == NULL) {
		close(fd);
		return (NULL);
	}
	/* counted here, where reading can start: the tests check that no
	 * stranger ever gets this far (BAREV.md §2) */
	bl->accepted++;
	p->listener = l;
	p->src = *src;
	p->state = BL_P_HANDSHAKE;
	if (bl_pipe_conn(p, fd) == -1) {	/* fd closed by xs_conn */
		bl_pipe_free(p);
		return (NULL);
	}
	if ((a = bl_allow_find(bl, src)) != NULL) {
		a->pending++;
		p->pending_counted = 1;
	}
	/* pascal's own header is often lost: speak first if it stays silent */
	bl_timer_in(&p->timer, bl->cfg.silent_initiator_ms);
	return (p);
}

struct bl_pipe *
bl_pipe_outbound(struct bl_contact *c, int fd)
{
	struct bl	*bl = c->ident->listener->bl;
	struct bl_pipe	*p;

	if ((p = pipe_alloc(bl)) == NULL)
		return (NULL);
	p->outbound = 1;
	p->ident = c->ident;
	p->contact = c;
	p->src = c->addr;
	p->fd = fd;
	p->state = BL_P_CONNECT;
	c->dial = p;
	bl_dial_slot_take(p);
	bl_timer_in(&p->timer, bl->cfg.dial_timeout_ms);
	return (p);
}

static void
pipe_on_stanza(void *arg, xmpp_stanza_t *st)
{
	struct bl_pipe	*p = arg;
	struct bl	*bl = p->bl;
	const char	*name, *ns;

	if (p->state != BL_P_UP)
		return;
	p->last_rx = cm_now_ms();
	p->misses = 0;
	if ((name = xmpp_stanza_get_name(st)) == NULL)
		return;
	ns = xmpp_stanza_get_ns(st);
	if (strcmp(name, "stream:error") == 0 || (strcmp(name, "error") == 0 &&
	    ns != NULL && strcmp(ns, STREAM_NS) == 0)) {
		bl_pipe_kill(p, "stream error from the peer", BL_CLOSE_ABORT);
		return;
	}
	if (strcmp(name, "iq") == 0 && bl_ping_iq(p, st))
		return;
	if (bl->ev.stanza != NULL)
		bl->ev.stanza(bl->arg, p->ident->id, p->contact->id, st);
}

static void
pipe_on_close(void *arg, enum xs_close why, const char *detail)
{
	struct bl_pipe	*p = arg;
	char		 buf[160];

	switch (p->state) {
	case BL_P_CLOSING:
		/* the conn is done: nothing left to flush */
		p->orderly = 0;
		return;
	case BL_P_LINGER:
		p->orderly = 0;
		p->state = BL_P_CLOSING;
		if (!p->in_reap) {
			p->in_reap = 1;
			TAILQ_INSERT_TAIL(&p->bl->reap, p, reap_entry);
			event_active(&p->bl->reaper, EV_TIMEOUT, 0);
		}
		return;
	default:
		break;
	}
	if (detail != NULL && *detail != '\0')
		snprintf(buf, sizeof(buf), "%s: %s", xs_close_str(why), detail);
	else
		snprintf(buf, sizeof(buf), "%s", xs_close_str(why));
	p->orderly = 0;
	p->conn_failed = why != XS_END_STREAM && why != XS_END_EOF;
	bl_pipe_kill(p, buf, BL_CLOSE_ABORT);
}

static void
pipe_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bl_pipe	*p = arg;

	(void)fd;
	(void)what;
	switch (p->state) {
	case BL_P_CONNECT:
	case BL_P_HANDSHAKE:
		if (p->outbound)
			bl_pipe_kill(p, "dial timed out", BL_CLOSE_ABORT);
		else
			bl_pipe_silent_initiator(p);
		break;
	case BL_P_UP:
		if (p->draining) {
			/*
			 * The peer did not close in time (a busy peer still
			 * writing): what its kernel already gave ours is read
			 * and handled now, not thrown away with the socket.
			 */
			(void)xs_conn_read_now(p->conn);
			if (p->state == BL_P_UP)
				bl_pipe_kill(p, p->drain_why, BL_CLOSE_ABORT);
		} else
			bl_ping_tick(p);
		break;
	default:
		break;
	}
}

/*
 * Goodbye without hanging up: unavailable and </stream:stream> go out, and
 * the pipe keeps reading (stanzas still reach the gateway) until the peer
 * closes too or BL_DRAIN_MS pass.  -1 if the goodbye could not be queued.
 */
int
bl_pipe_drain(struct bl_pipe *p, const char *why)
{
	static const char bye[] = "<presence type=\"unavailable\"></presence>";

	if (p->conn == NULL || !p->hdr_sent || p->draining)
		return (-1);
	if (xs_conn_send_raw(p->conn, bye, sizeof(bye) - 1) == -1 ||
	    xs_conn_send_raw(p->conn, "</stream:stream>", 16) == -1)
		return (-1);
	p->draining = 1;
	p->drain_why = why;	/* a string constant */
	p->orderly = 0;		/* the goodbye is already queued */
	evtimer_del(&p->timer);
	bl_timer_in(&p->timer, BL_DRAIN_MS);
	return (0);
}

/* A closed pipe belongs to nobody: the contact may go before the reaper. */
static void
pipe_detach(struct bl_pipe *p)
{
	struct bl_contact *c = p->contact;

	bl_pipe_pending_uncount(p);
	bl_dial_slot_release(p);
	if (c != NULL) {
		if (c->pipe == p)
			c->pipe = NULL;
		if (c->dial == p)
			c->dial = NULL;
	}
	p->contact = NULL;
	p->ident = NULL;
}

/* An orderly close: unavailable and </stream:stream> queued; -1 if not.
 * What it left in bl->scratch is the caller's to drain. */
static int
pipe_goodbye(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;
	int		 rv = -1;

	if (p->conn != NULL && p->hdr_sent &&
	    evbuffer_add(bl->scratch, "<presence type=\"unavailable\">"
	    "</presence>", 40) == 0 &&
	    xs_conn_send_raw(p->conn, (const char *)evbuffer_pullup(
	    bl->scratch, -1), 40) == 0 &&
	    xs_conn_send_raw(p->conn, "</stream:stream>", 16) == 0)
		rv = 0;
	return (rv);
}

/* Pings in flight get no answer now: failed, if the gateway knew the pipe. */
static void
pipe_fail_pings(struct bl_pipe *p, int was_up, int64_t iid, int64_t cid)
{
	struct bl	*bl = p->bl;
	struct bl_ping	*pg;
	uint64_t	 cookie;

	while ((pg = TAILQ_FIRST(&p->pings)) != NULL) {
		cookie = pg->cookie;
		TAILQ_REMOVE(&p->pings, pg, entry);
		free(pg);
		if (was_up && bl->ev.ping_done != NULL)
			bl->ev.ping_done(bl->arg, iid, cid, cookie, 0);
	}
}

/*
 * Close a pipe: detach it from its contact, tell the gateway if it was up,
 * redial when wanted, and leave the freeing to the reaper.  Orderly closes
 * say goodbye first (BAREV.md §2-3).
 */
void
bl_pipe_kill(struct bl_pipe *p, const char *why, enum bl_close how)
{
	struct bl	*bl = p->bl;
	struct bl_contact *c = p->contact;
	int64_t		 iid = 0, cid = 0;
	int		 was_up = p->state == BL_P_UP, cut;
	struct linger	 rst = { 1, 0 };
	char		 src[BL_ADDRSTRLEN];

	if (p->state >= BL_P_CLOSING)
		return;
	/*
	 * Units the kernel took since the last write-done callback still
	 * wait for `sent`; on an orderly close so do units still queued
	 * here, which go out before our </stream:stream>.  All of those can
	 * reach the peer: told now, before pipe_down, the gateway never
	 * queues them again (at most once, like a crash).
	 */
	if (was_up && p->conn != NULL) {
		bl_pipe_tokens_sent(p, how == BL_CLOSE_ORDERLY ? p->queued :
		    p->queued - xs_conn_pending(p->conn));
		if (p->state >= BL_P_CLOSING)
			return;		/* a `sent` callback closed it */
	}
	/*
	 * A cut: the pipe died without our goodbye (keepalive, a reset, an
	 * EOF or stream error out of the blue), or while draining, by an
	 * error.  Reset the connection, so what the kernel still holds for a
	 * dead link is dropped, never delivered after the gateway sends it
	 * again.  A drain that ends otherwise (the peer closed, or did not
	 * in time: it may only be busy) is closed
	 * normally and, like our own orderly close that lingers, may still
	 * reach the peer: no cut, and a clean stop stays exactly-once.
	 */
	cut = was_up && how != BL_CLOSE_ORDERLY && (!p->draining || p->conn_failed);
	if (cut && p->conn != NULL)
		(void)setsockopt(xs_conn_fd(p->conn), SOL_SOCKET, SO_LINGER, &rst,
		    sizeof(rst));
	if (c != NULL) {
		cid = c->id;
		iid = c->ident->id;
	}
	pipe_detach(p);
	p->state = BL_P_CLOSING;
	evtimer_del(&p->timer);
	if (p->pollev != NULL)
		evtimer_del(p->pollev);
	if (p->connev != NULL)
		event_del(p->connev);
	p->orderly = how == BL_CLOSE_ORDERLY && pipe_goodbye(p) == 0;
	evbuffer_drain(bl->scratch, evbuffer_get_length(bl->scratch));
	p->in_reap = 1;
	TAILQ_INSERT_TAIL(&bl->reap, p, reap_entry);
	event_active(&bl->reaper, EV_TIMEOUT, 0);

	bl_addr_text(&p->src, src);
	if (was_up)
		log_info("barevlink", "pipe down: %s@%s: %s", c->nick, src, why);
	else
		log_debug("barevlink", "[%s] %s closed: %s", src,
		    p->outbound ? "dial" : "inbound", why);

	if (c != NULL && c->want && c->pipe == NULL && c->dial == NULL &&
	    !bl->shutting_down)
		bl_dial_schedule(c, 0);
	/* our user went offline: our choice, not a failure of the peer, so
	 * the redial just scheduled must not raise the backoff */
	if (c != NULL && p->bye_ours)
		c->backoff = 0;
	/* events last: the gateway may call back into us */
	pipe_fail_pings(p, was_up, iid, cid);
	if (cut && bl->ev.pipe_cut != NULL)
		bl->ev.pipe_cut(bl->arg, iid, cid);
	if (was_up && bl->ev.pipe_down != NULL)
		bl->ev.pipe_down(bl->arg, iid, cid, why);
}

void
bl_pipe_free(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;
	struct bl_ping	*pg;
	struct bl_token	*t;

	bl_pipe_pending_uncount(p);
	bl_dial_slot_release(p);
	if (p->contact != NULL) {
		if (p->contact->pipe == p)
			p->contact->pipe = NULL;
		if (p->contact->dial == p)
			p->contact->dial = NULL;
	}
	TAILQ_REMOVE(&bl->pipes, p, entry);
	if (p->in_reap)
		TAILQ_REMOVE(&bl->reap, p, reap_entry);
	evtimer_del(&p->timer);
	if (p->pollev != NULL)
		event_free(p->pollev);
	if (p->connev != NULL)
		event_free(p->connev);
	if (p->conn != NULL)
		xs_conn_free(p->conn);
	if (p->fd != -1)
		close(p->fd);
	while ((pg = TAILQ_FIRST(&p->pings)) != NULL) {
		TAILQ_REMOVE(&p->pings, pg, entry);
		free(pg);
	}
	while ((t = TAILQ_FIRST(&p->tokens)) != NULL) {
		TAILQ_REMOVE(&p->tokens, t, entry);
		free(t);
	}
	free(p);
}

/* runs from its own event: nothing above us holds a pipe pointer */
void
bl_pipe_reap(struct bl *bl)
{
	struct bl_pipe	*p;

	while ((p = TAILQ_FIRST(&bl->reap)) != NULL) {
		TAILQ_REMOVE(&bl->reap, p, reap_entry);
		p->in_reap = 0;
		if (p->orderly && p->conn != NULL) {
			p->orderly = 0;
			p->state = BL_P_LINGER;
			/* may call pipe_on_close at once, which requeues p */
			xs_conn_close(p->conn, LINGER_MS);
			continue;
		}
		bl_pipe_free(p);
	}
}
