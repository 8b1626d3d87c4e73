/*
 * ping — keepalive and pings on an up pipe (BAREV.md §5).
 *
 * We answer urn:xmpp:ping and urn:yggb:ping gets with a single-quoted
 * result carrying the same id; ping after ping_idle_ms of silence, count a
 * miss per ping_timeout_ms without any stanza, and close the pipe after
 * ping_misses; our own results (keepalive or bl_ping) are consumed here and
 * never reach the gateway.  A ping resets us to available at purple, so our
 * presence follows every ping while we are not plainly available.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clock.h"
#include "internal.h"
#include "log.h"

static int
is_ping(xmpp_stanza_t *iq)
{
	xmpp_stanza_t	*ch;
	const char	*name, *ns;

	for (ch = xmpp_stanza_get_children(iq); ch != NULL;
	    ch = xmpp_stanza_get_next(ch)) {
		if (!xmpp_stanza_is_tag(ch))
			continue;
		name = xmpp_stanza_get_name(ch);
		ns = xmpp_stanza_get_ns(ch);
		if (name == NULL || ns == NULL || strcmp(name, "ping") != 0)
			continue;
		if (strcmp(ns, "urn:xmpp:ping") == 0 ||
		    strcmp(ns, "urn:yggb:ping") == 0)
			return (1);
	}
	return (0);
}

static int
parse_ping_id(const char *id, uint64_t *seq)
{
	char	*end;

	if (id == NULL || strncmp(id, "ping-", 5) != 0 || id[5] == '\0')
		return (-1);
	*seq = strtoull(id + 5, &end, 10);
	return (*end == '\0' ? 0 : -1);
}

/* an iq barevlink handles itself: 1 when consumed */
int
bl_ping_iq(struct bl_pipe *p, xmpp_stanza_t *st)
{
	struct bl	*bl = p->bl;
	struct bl_ping	*pg;
	const char	*type = xmpp_stanza_get_type(st);
	const char	*id = xmpp_stanza_get_id(st);
	char		 me[BL_JIDLEN], peer[BL_JIDLEN];
	uint64_t	 seq, cookie;

	if (type == NULL)
		return (0);
	if (strcmp(type, "get") == 0 && is_ping(st)) {
		/* BAREV.md §5: same id, single quotes */
		if (bl_jid_me(p, me, sizeof(me)) == -1 ||
		    bl_jid_peer(p, peer, sizeof(peer)) == -1 ||
		    bl_fmt_ping_result(bl->scratch, id != NULL ? id : "", me,
		    peer) == -1 || bl_pipe_send_ctl(p, bl->scratch) == -1) {
			evbuffer_drain(bl->scratch,
			    evbuffer_get_length(bl->scratch));
			bl_pipe_kill(p, "cannot answer a ping", BL_CLOSE_ABORT);
		}
		return (1);
	}
	if ((strcmp(type, "result") != 0 && strcmp(type, "error") != 0) ||
	    parse_ping_id(id, &seq) == -1)
		return (0);
	if (seq == p->ka_seq) {
		p->ka_seq = 0;
		p->misses = 0;
		return (1);
	}
	TAILQ_FOREACH(pg, &p->pings, entry) {
		if (pg->seq != seq)
			continue;
		/* even an error reply proves the peer read what came before */
		cookie = pg->cookie;
		TAILQ_REMOVE(&p->pings, pg, entry);
		free(pg);
		if (bl->ev.ping_done != NULL)
			bl->ev.ping_done(bl->arg, p->ident->id, p->contact->id,
			    cookie, 1);
		return (1);
	}
	return (0);
}


static int
plain_available(const struct bl_ident *id)
{
	return (id->available && id->show == NULL && id->status == NULL);
}

static int
send_ping(struct bl_pipe *p, uint64_t seq)
{
	struct bl	*bl = p->bl;
	char		 idbuf[32], me[BL_JIDLEN], peer[BL_JIDLEN];

	snprintf(idbuf, sizeof(idbuf), "ping-%" PRIu64, seq);
	if (bl_jid_me(p, me, sizeof(me)) == -1 ||
	    bl_jid_peer(p, peer, sizeof(peer)) == -1 ||
	    bl_fmt_ping(bl->scratch, idbuf, me, peer) == -1) {
		evbuffer_drain(bl->scratch, evbuffer_get_length(bl->scratch));
		return (-1);
	}
	if (bl_pipe_send_ctl(p, bl->scratch) == -1)
		return (-1);
	/* a ping resets us to available at purple (BAREV.md §5) */
	if (!plain_available(p->ident) && bl_pipe_send_presence(p) == -1 &&
	    !p->full)	/* held back with the rest: it follows later */
		return (-1);
	return (0);
}

void
bl_ping_arm(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;
	struct bl_ping	*pg;
	uint64_t	 now = cm_now_ms(), next;

	if (p->ka_seq != 0)
		next = p->ka_sent + bl->cfg.ping_timeout_ms;
	else
		next = p->last_rx + bl->cfg.ping_idle_ms;
	TAILQ_FOREACH(pg, &p->pings, entry)
		if (pg->deadline < next)
			next = pg->deadline;
	bl_timer_in(&p->timer, next > now ? next - now : 1);
}

/* keepalive: ping after idle, count misses (BAREV.md §5) */
void
bl_ping_tick(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;
	struct bl_ping	*pg;
	uint64_t	 now = cm_now_ms(), cookie;
	char		 why[64];

	while ((pg = TAILQ_FIRST(&p->pings)) != NULL && pg->deadline <= now) {
		cookie = pg->cookie;
		TAILQ_REMOVE(&p->pings, pg, entry);
		free(pg);
		if (bl->ev.ping_done != NULL)
			bl->ev.ping_done(bl->arg, p->ident->id, p->contact->id,
			    cookie, 0);
		if (p->state != BL_P_UP)
			return;
	}
	if (p->ka_seq != 0 && now >= p->ka_sent + bl->cfg.ping_timeout_ms) {
		p->ka_seq = 0;
		if (p->last_rx <= p->ka_sent)
			/* the schedule, for the log and the tests' timing */
			log_debug("barevlink", "%s@%s: ping %u of %u unanswered"
			    " after %u ms (pinged after %u ms idle)",
			    p->contact->nick, p->contact->addrtxt,
			    (unsigned)p->misses + 1, (unsigned)bl->cfg.ping_misses,
			    (unsigned)bl->cfg.ping_timeout_ms,
			    (unsigned)bl->cfg.ping_idle_ms);
		if (p->last_rx <= p->ka_sent && ++p->misses >= bl->cfg.ping_misses) {
			snprintf(why, sizeof(why), "no answer to %u pings",
			    (unsigned)p->misses);
			bl_pipe_kill(p, why, BL_CLOSE_ABORT);
			return;
		}
		if (p->last_rx > p->ka_sent)
			p->misses = 0;
		else
			p->last_rx = 0;	/* missed: ping again at once */
	}
	if (p->ka_seq == 0 && now >= p->last_rx + bl->cfg.ping_idle_ms) {
		p->ka_seq = ++bl->ping_seq;
		p->ka_sent = now;
		if (send_ping(p, p->ka_seq) == -1) {
			bl_pipe_kill(p, "cannot send a ping", BL_CLOSE_ABORT);
			return;
		}
	}
	bl_ping_arm(p);
}


int
bl_pipe_ping(struct bl_pipe *p, uint64_t cookie)
{
	struct bl_ping	*pg;

	if ((pg = calloc(1, sizeof(*pg))) == NULL)
		return (-1);
	pg->seq = ++p->bl->ping_seq;
	pg->cookie = cookie;
	pg->deadline = cm_now_ms() + p->bl->cfg.ping_timeout_ms;
	if (send_ping(p, pg->seq) == -1) {
		free(pg);
		return (-1);
	}
	TAILQ_INSERT_TAIL(&p->pings, pg, entry);
	bl_ping_arm(p);
	return (0);
}

