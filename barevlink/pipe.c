/*
 * pipe — one TCP connection speaking Barev, from the first byte to the close.
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
#define STALL_POLL_MS	100	/* watching a peer that reads nothing */
#define STREAM_NS	"http://etherx.jabber.org/streams"

static void	 pipe_on_header(void *, xmpp_stanza_t *);
static void	 pipe_on_stanza(void *, xmpp_stanza_t *);
static void	 pipe_on_close(void *, enum xs_close, const char *);
static void	 pipe_on_written(void *);
static void	 pipe_timer(evutil_socket_t, short, void *);
static int	 pipe_send(struct bl_pipe *, struct evbuffer *, uint64_t, int);

static const struct xs_callbacks pipe_cb = {
	pipe_on_header, pipe_on_stanza, pipe_on_close
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

static int
pipe_conn(struct bl_pipe *p, int fd)
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
	xs_conn_on_written(p->conn, pipe_on_written);
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
	if (pipe_conn(p, fd) == -1) {	/* fd closed by xs_conn */
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

static int
send_header(struct bl_pipe *p, const struct bl_contact *c)
{
	struct bl	*bl = p->bl;

	if (bl_fmt_header(bl->scratch, p->ident->nick, p->ident->addrtxt,
	    c->nick, c->addrtxt) == -1) {
		evbuffer_drain(bl->scratch, evbuffer_get_length(bl->scratch));
		return (-1);
	}
	if (bl_pipe_send_buf(p, bl->scratch, 0) == -1)
		return (-1);
	p->hdr_sent = 1;
	return (0);
}

/* the connect() of our dial completed (writable, SO_ERROR == 0) */
void
bl_pipe_connected(struct bl_pipe *p)
{
	int	 fd = p->fd;

	p->fd = -1;
	if (pipe_conn(p, fd) == -1) {	/* fd closed by xs_conn */
		bl_pipe_kill(p, "out of memory", BL_CLOSE_ABORT);
		return;
	}
	p->state = BL_P_HANDSHAKE;
	/* initiator speaks first, whole header in one unit (BAREV.md §2) */
	if (send_header(p, p->contact) == -1)
		bl_pipe_kill(p, "cannot send our header", BL_CLOSE_ABORT);
}

static void
pending_uncount(struct bl_pipe *p)
{
	struct bl_allow	*a;

	if (!p->pending_counted)
		return;
	p->pending_counted = 0;
	if ((a = bl_allow_find(p->bl, &p->src)) != NULL && a->pending > 0)
		a->pending--;
}

static void
go_up(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;
	struct bl_contact *c = p->contact;

	if (c->pipe != NULL && c->pipe != p)
		bl_pipe_kill(c->pipe, "replaced by a newer stream", BL_CLOSE_ABORT);
	if (c->dial == p)
		c->dial = NULL;
	bl_dial_slot_release(p);
	bl_dialq_cancel(c);	/* up by an inbound pipe: no dial needed */
	c->pipe = p;
	c->backoff = 0;
	bl_redial_cancel(c);
	p->state = BL_P_UP;
	p->was_up = 1;
	evtimer_del(&p->timer);
	p->last_rx = cm_now_ms();
	/* presence at once after the headers (BAREV.md §3) */
	if (bl_pipe_send_presence(p) == -1) {
		bl_pipe_kill(p, "cannot send our presence", BL_CLOSE_ABORT);
		return;
	}
	bl_ping_arm(p);
	log_info("barevlink", "pipe up: %s@%s <-> %s@%s (%s)", p->ident->nick,
	    p->ident->addrtxt, c->nick, c->addrtxt,
	    p->outbound ? "dialled" : "accepted");
	if (bl->ev.pipe_up != NULL)
		bl->ev.pipe_up(bl->arg, p->ident->id, c->id);
}

static struct bl_contact *
ident_contact(struct bl_ident *id, const struct in6_addr *src,
    const char *nick)
{
	struct bl_contact *c;

	TAILQ_FOREACH(c, &id->contacts, entry) {
		if (bl_addr_cmp(&c->addr, src) != 0)
			continue;
		if (nick == NULL || strcasecmp(c->nick, nick) == 0)
			return (c);
	}
	return (NULL);
}

/*
 * Which of the listener's identities is called: the only one, else the
 * `to` localpart (BAREV.md §2), else the one we already spoke as, else the
 * only identity that knows this peer.
 */
static struct bl_ident *
pick_ident(struct bl_pipe *p, const char *to, const char *fnick)
{
	struct bl_listener *l = p->listener;
	struct bl_ident	*id, *found = NULL;
	struct in6_addr	 ta;
	char		 tnick[BL_NICKMAX + 1];

	id = TAILQ_FIRST(&l->idents);
	if (id != NULL && TAILQ_NEXT(id, entry) == NULL)
		return (id);
	if (bl_jid_split(to, tnick, sizeof(tnick), &ta) != -1) {
		TAILQ_FOREACH(id, &l->idents, entry)
			if (strcasecmp(id->nick, tnick) == 0)
				return (id);
	}
	if (p->ident != NULL)
		return (p->ident);
	TAILQ_FOREACH(id, &l->idents, entry) {
		if (ident_contact(id, &p->src, fnick) == NULL)
			continue;
		if (found != NULL)
			return (NULL);
		found = id;
	}
	return (found);
}

static void
identify(struct bl_pipe *p, xmpp_stanza_t *hdr)
{
	struct bl_ident	*id;
	struct bl_contact *c;
	struct in6_addr	 fa;
	char		 fnick[BL_NICKMAX + 1], src[BL_ADDRSTRLEN];

	bl_addr_text(&p->src, src);
	if (bl_jid_split(xmpp_stanza_get_attribute(hdr, "from"), fnick,
	    sizeof(fnick), &fa) == -1) {
		bl_pipe_kill(p, "header without a usable from", BL_CLOSE_ABORT);
		return;
	}
	if ((id = pick_ident(p, xmpp_stanza_get_attribute(hdr, "to"),
	    fnick)) == NULL) {
		log_info("barevlink", "[%s] %s calls none of our identities",
		    src, fnick);
		bl_pipe_kill(p, "calls none of our identities", BL_CLOSE_ABORT);
		return;
	}
	/* peer = (numeric source address, nick case-insensitively) */
	if ((c = ident_contact(id, &p->src, fnick)) == NULL) {
		log_info("barevlink", "[%s] %s is not a contact of %s", src,
		    fnick, id->nick);
		bl_pipe_kill(p, "unknown peer", BL_CLOSE_ABORT);
		return;
	}
	if (p->hdr_sent && p->ident != id) {
		bl_pipe_kill(p, "header for another identity", BL_CLOSE_ABORT);
		return;
	}
	pending_uncount(p);
	if (c->dial != NULL) {
		/* keep our own dial, drop the crossing one (BAREV.md §2) */
		log_info("barevlink", "%s@%s: inbound crosses our dial, closed",
		    c->nick, c->addrtxt);
		bl_pipe_kill(p, "crossing our own dial", BL_CLOSE_ABORT);
		return;
	}
	if (c->pipe != NULL)
		/* the peer opened a new stream: it lost the old one */
		bl_pipe_kill(c->pipe, "replaced by a new stream from the peer",
		    BL_CLOSE_ABORT);
	p->ident = id;
	p->contact = c;
	if (!p->hdr_sent && send_header(p, c) == -1) {
		bl_pipe_kill(p, "cannot send our header", BL_CLOSE_ABORT);
		return;
	}
	go_up(p);
}

/*
 * pascal writes addresses upper-case and zero-padded (BAREV.md §1) and
 * mis-frames stanzas that share a read (§7); purple and other gateways
 * write RFC 5952.  So a header whose `to` address is not in RFC 5952 form
 * comes from pascal: only such pipes are paced, the others go at full
 * speed (still one stanza per write).
 */
static int
header_from_pascal(xmpp_stanza_t *hdr)
{
	const char	*to = xmpp_stanza_get_attribute(hdr, "to"), *at;
	struct in6_addr	 a;
	char		 canon[BL_ADDRSTRLEN];

	if (to == NULL || (at = strrchr(to, '@')) == NULL)
		return (0);
	if (bl_addr_parse(at + 1, &a) == -1)
		return (0);
	bl_addr_text(&a, canon);
	return (strcmp(canon, at + 1) != 0);
}

static void
pipe_on_header(void *arg, xmpp_stanza_t *hdr)
{
	struct bl_pipe	*p = arg;

	if (p->state != BL_P_HANDSHAKE)
		return;
	xs_conn_header_done(p->conn);
	if (!header_from_pascal(hdr))
		xs_conn_set_pace(p->conn, 0);
	if (p->outbound)
		/* a responder's `from` is not checked: we chose whom to dial */
		go_up(p);
	else
		identify(p, hdr);
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
silent_initiator(struct bl_pipe *p)
{
	struct bl_ident	*id;
	struct bl_contact *c = NULL;

	if (p->hdr_sent)
		return;
	TAILQ_FOREACH(id, &p->listener->idents, entry)
		if ((c = ident_contact(id, &p->src, NULL)) != NULL)
			break;
	if (c == NULL)
		return;	/* nobody here knows it: the header timeout will do */
	p->ident = id;
	log_debug("barevlink", "%s@%s silent after connecting: header first",
	    c->nick, c->addrtxt);
	if (send_header(p, c) == -1)
		bl_pipe_kill(p, "cannot send our header", BL_CLOSE_ABORT);
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
			silent_initiator(p);
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

int
bl_pipe_send_presence(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;
	struct bl_presence pr;

	bl_ident_presence(p->ident, &pr);
	if (bl_fmt_presence(bl->scratch, &pr) == -1) {
		evbuffer_drain(bl->scratch, evbuffer_get_length(bl->scratch));
		return (-1);
	}
	return (bl_pipe_send_buf(p, bl->scratch, 0));
}

static void tokens_check(struct bl_pipe *);
static void stall_arm(struct bl_pipe *);

/*
 * A full pipe (the peer reads too slowly): taken off the list when half of
 * what waits is out, killed when nothing at all went out for as long as
 * the keepalive allows.  Never inside a caller's send: a kill calls back.
 */
static int
stall_check(struct bl_pipe *p)
{
	uint64_t	 now, written;

	if (!p->full || p->conn == NULL || p->state != BL_P_UP)
		return (0);
	now = cm_now_ms();
	written = p->queued - xs_conn_pending(p->conn);
	if (written != p->stall_written) {
		p->stall_written = written;
		p->stall_since = now;
	}
	if (xs_conn_pending(p->conn) <= BL_MAX_UNSENT / 2)
		p->full = 0;
	else if (now - p->stall_since >= (uint64_t)p->bl->cfg.ping_timeout_ms *
	    p->bl->cfg.ping_misses) {
		bl_pipe_kill(p, "the peer reads nothing (its window is full)",
		    BL_CLOSE_ABORT);
		return (-1);
	}
	return (0);
}

static void
stall_poll(evutil_socket_t fd, short what, void *arg)
{
	struct bl_pipe	*p = arg;

	(void)fd;
	(void)what;
	if (stall_check(p) == 0)
		tokens_check(p);
}

/* xs_conn: what we handed it is in the kernel */
static void
pipe_on_written(void *arg)
{
	struct bl_pipe	*p = arg;

	if (stall_check(p) == 0)
		tokens_check(p);
}

/* `sent` for every unit that ends at or before byte `written` */
static void
tokens_sent(struct bl_pipe *p, uint64_t written)
{
	struct bl	*bl = p->bl;
	struct bl_token	*t;
	uint64_t	 token;

	while ((t = TAILQ_FIRST(&p->tokens)) != NULL && t->end <= written) {
		token = t->token;
		TAILQ_REMOVE(&p->tokens, t, entry);
		free(t);
		if (bl->ev.sent != NULL)
			bl->ev.sent(bl->arg, p->ident->id, p->contact->id,
			    token);
		if (p->state != BL_P_UP)
			return;
	}
}

/* `sent` for every unit the kernel has taken entirely */
static void
tokens_check(struct bl_pipe *p)
{
	if (p->conn == NULL || p->state != BL_P_UP)
		return;
	tokens_sent(p, p->queued - xs_conn_pending(p->conn));
	/* the rest is told by pipe_on_written(); a full pipe may never
	 * write again, so it is watched on a timer */
	if (p->state == BL_P_UP && p->full)
		stall_arm(p);
}

static void
stall_arm(struct bl_pipe *p)
{
	if (p->pollev == NULL &&
	    (p->pollev = evtimer_new(p->bl->base, stall_poll, p)) == NULL)
		return;
	if (!evtimer_pending(p->pollev, NULL))
		bl_timer_in(p->pollev, STALL_POLL_MS);
}

/* one unit = one stanza (or the header) = one write (BAREV.md §7) */
int
bl_pipe_send_buf(struct bl_pipe *p, struct evbuffer *buf, uint64_t token)
{
	return (pipe_send(p, buf, token, 1));
}

/* keepalive pings and their answers: never held back (one at a time, or
 * as many as the peer itself sends), else a slow reader would look dead */
int
bl_pipe_send_ctl(struct bl_pipe *p, struct evbuffer *buf)
{
	return (pipe_send(p, buf, 0, 0));
}

static int
pipe_send(struct bl_pipe *p, struct evbuffer *buf, uint64_t token, int capped)
{
	struct bl_token	*t = NULL;
	size_t		 len = evbuffer_get_length(buf), pending;
	int		 rv = -1;

	/* a draining pipe has said </stream:stream>: nothing may follow it,
	 * not even the answer to a ping that arrives meanwhile */
	if (p->conn == NULL || p->state >= BL_P_CLOSING || p->draining)
		goto out;
	pending = xs_conn_pending(p->conn);
	if (capped && (p->full || (pending > 0 && pending + len > BL_MAX_UNSENT))) {
		/* memory for a peer that does not read stays bounded: the
		 * caller keeps what is refused (the relay's outbox) */
		if (!p->full) {
			p->full = 1;
			p->stall_written = p->queued - pending;
			p->stall_since = cm_now_ms();
			stall_arm(p);
		}
		if (!p->full_logged) {
			p->full_logged = 1;	/* once a pipe: it may come and go */
			log_info("barevlink", "%s@%s reads too slowly: %zu bytes wait"
			    " for it; holding back", p->contact ? p->contact->nick :
			    "?", p->contact ? p->contact->addrtxt : "?", pending);
		}
		goto out;
	}
	if (token != 0 && (t = calloc(1, sizeof(*t))) == NULL)
		goto out;
	if (xs_conn_send_raw(p->conn, (const char *)evbuffer_pullup(buf, -1),
	    len) == -1) {
		free(t);
		goto out;
	}
	p->queued += len;
	if (t != NULL) {
		t->token = token;
		t->end = p->queued;
		TAILQ_INSERT_TAIL(&p->tokens, t, entry);
	}
	rv = 0;
out:
	evbuffer_drain(buf, len);
	return (rv);
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
	struct bl_ping	*pg;
	int64_t		 iid = 0, cid = 0;
	int		 was_up = p->state == BL_P_UP, cut;
	struct linger	 rst = { 1, 0 };
	uint64_t	 cookie;
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
		tokens_sent(p, how == BL_CLOSE_ORDERLY ? p->queued :
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
	pending_uncount(p);
	bl_dial_slot_release(p);
	if (c != NULL) {
		cid = c->id;
		iid = c->ident->id;
		if (c->pipe == p)
			c->pipe = NULL;
		if (c->dial == p)
			c->dial = NULL;
	}
	/* a closed pipe belongs to nobody: the contact may go before the reaper */
	p->contact = NULL;
	p->ident = NULL;
	p->state = BL_P_CLOSING;
	evtimer_del(&p->timer);
	if (p->pollev != NULL)
		evtimer_del(p->pollev);
	if (p->connev != NULL)
		event_del(p->connev);
	p->orderly = 0;
	if (how == BL_CLOSE_ORDERLY && p->conn != NULL && p->hdr_sent &&
	    evbuffer_add(bl->scratch, "<presence type=\"unavailable\">"
	    "</presence>", 40) == 0 &&
	    xs_conn_send_raw(p->conn, (const char *)evbuffer_pullup(
	    bl->scratch, -1), 40) == 0 &&
	    xs_conn_send_raw(p->conn, "</stream:stream>", 16) == 0)
		p->orderly = 1;
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
	while ((pg = TAILQ_FIRST(&p->pings)) != NULL) {
		cookie = pg->cookie;
		TAILQ_REMOVE(&p->pings, pg, entry);
		free(pg);
		if (was_up && bl->ev.ping_done != NULL)
			bl->ev.ping_done(bl->arg, iid, cid, cookie, 0);
	}
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

	pending_uncount(p);
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
