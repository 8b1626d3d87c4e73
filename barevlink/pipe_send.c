/*
 * pipe_send — what goes out on a pipe: one unit per stanza (BAREV.md §7),
 * a `sent` event once the kernel took a unit whole, and flow control for a
 * peer that reads slowly or not at all.
 *
 * The one idea: memory for a peer stays bounded — past BL_MAX_UNSENT bytes
 * waiting, sends are refused (the caller keeps the message), and a pipe
 * that writes nothing for as long as the keepalive allows is killed.
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

#define STALL_POLL_MS	100	/* watching a peer that reads nothing */

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
static int pipe_send(struct bl_pipe *, struct evbuffer *, uint64_t, int);

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
void
bl_pipe_on_written(void *arg)
{
	struct bl_pipe	*p = arg;

	if (stall_check(p) == 0)
		tokens_check(p);
}

/* `sent` for every unit that ends at or before byte `written` */
void
bl_pipe_tokens_sent(struct bl_pipe *p, uint64_t written)
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
	bl_pipe_tokens_sent(p, p->queued - xs_conn_pending(p->conn));
	/* the rest is told by bl_pipe_on_written(); a full pipe may never
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
