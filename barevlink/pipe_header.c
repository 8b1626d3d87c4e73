/*
 * pipe_header — a pipe's header phase (BAREV.md §2): the initiator's
 * header goes first, whole, in one unit; an inbound peer is identified
 * from its header's `from` localpart and its source address, the called
 * identity from `to`; crossing dials keep ours.  Then our presence, and
 * the pipe is up (BAREV.md §3).
 *
 * The one idea: a peer is (numeric source address, nick without case),
 * never what the header claims alone; anything else is closed before a
 * stanza of it reaches the gateway.
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
	if (bl_pipe_conn(p, fd) == -1) {	/* fd closed by xs_conn */
		bl_pipe_kill(p, "out of memory", BL_CLOSE_ABORT);
		return;
	}
	p->state = BL_P_HANDSHAKE;
	/* initiator speaks first, whole header in one unit (BAREV.md §2) */
	if (send_header(p, p->contact) == -1)
		bl_pipe_kill(p, "cannot send our header", BL_CLOSE_ABORT);
}

void
bl_pipe_pending_uncount(struct bl_pipe *p)
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
	bl_pipe_pending_uncount(p);
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

void
bl_pipe_on_header(void *arg, xmpp_stanza_t *hdr)
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

void
bl_pipe_silent_initiator(struct bl_pipe *p)
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
