/*
 * relay — messages, chat states and receipts across the bridge, with
 * nothing lost (DESIGN.md "Failure model", docs/design.md "Delivery
 * semantics").
 *
 * XMPP -> Barev: the outbox row is committed before anything else happens;
 * a row is marked 'sending' when handed to barevlink.  Once the kernel has
 * it (bl `sent`) it waits in the contact's `unread` list until a ping sent
 * after it is answered: TCP order means the peer read it.  Then the row is
 * deleted and its receipt (XEP-0184) sent.  One ping at a time per contact
 * covers every row written before it.
 *
 * A pipe that goes down hands back what it never wrote (queued again) and,
 * when it was cut (bl `pipe_cut`: it died without our goodbye, or by an
 * error while draining; the connection is reset so nothing of it arrives
 * later), what it wrote without an answer: queued again too, older ids
 * first, so they are resent in order before anything newer.  The trade: a
 * duplicate only when the peer read a row but its ping answer was lost
 * with the link; a loss is worse.  After a drain (the peer closed after
 * our goodbye, or the drain time ran out) or our own orderly close, the
 * connection closes normally and may still deliver: unconfirmed rows are
 * deleted, so a clean stop stays exactly-once.
 *
 * Crashes: unconfirmed rows are still 'sending', and a start drops those
 * (relay_start) rather than sending them twice: after a SIGKILL the kernel
 * closes our sockets normally and may still deliver what it held.  Neither
 * XEP-0114 nor Barev has acknowledgements beyond that ping.
 *
 * Barev -> XMPP: straight to the user's bare JID with a stable id while the
 * component link is up; held in the SQLite inbox while it is down and
 * flushed in order when it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "barevlink.h"
#include "bridge_int.h"
#include "component.h"
#include "gw.h"
#include "log.h"
#include "metrics.h"
#include "transfer.h"
#include "translate.h"
#include "xmlstream.h"

#define NS_RECEIPTS "urn:xmpp:receipts"
#define TYPING_REFRESH_MS 1000	/* purple's indicator lasts ~1 s (BAREV.md §4) */
#define TYPING_MAX_TICKS 30	/* XEP-0085 §5.2: composing lapses after ~30 s */

static void relay_flush_outbox(struct bridge *br, struct br_contact *c);
static int flushing;	/* inside relay_flush_outbox() */
#define FLUSH_BATCH_BYTES (256 * 1024)	/* bodies read from the outbox at once */
static int handoff(struct bridge *br, struct br_contact *c, const struct store_outmsg *m);
static void forget_row(struct bridge *br, int64_t row);

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- chat states ---- */

static void
typing_stop(struct br_contact *c)
{
	if (c->typing_ev) {
		event_free(c->typing_ev);
		c->typing_ev = NULL;
	}
	c->typing_ticks = 0;
}

static void
typing_tick(evutil_socket_t fd, short what, void *arg)
{
	struct br_contact *c = arg;

	(void)fd;
	(void)what;
	if (!c->pipe_up || ++c->typing_ticks > TYPING_MAX_TICKS) {
		typing_stop(c);
		return;
	}
	bl_send_chatstate(c->br->gw->bl, c->id, "composing", 0);
}

static void
typing_start(struct bridge *br, struct br_contact *c)
{
	struct timeval tv = { TYPING_REFRESH_MS / 1000, (TYPING_REFRESH_MS % 1000) * 1000 };

	c->typing_ticks = 0;
	if (c->typing_ev == NULL &&
	    (c->typing_ev = event_new(br->gw->base, -1, EV_PERSIST, typing_tick, c)) == NULL)
		return;
	event_add(c->typing_ev, &tv);
}

/* A chat state from the user: separate body-less messages (BAREV.md §4). */
static void
user_chatstate(struct bridge *br, struct br_contact *c, const char *state)
{
	if (!c->pipe_up)
		return;		/* transient: never queued, never dials */
	switch (tr_user_chatstate(state, c->typing_ev != NULL)) {
	case TR_TYPING_COMPOSING:
		bl_send_chatstate(br->gw->bl, c->id, "composing", 0);
		typing_start(br, c);
		break;
	case TR_TYPING_STOP:
		typing_stop(c);
		bl_send_chatstate(br->gw->bl, c->id, "paused", 0);
		break;
	default:
		typing_stop(c);
		break;
	}
}

/* A gateway peer's user reads XEP-0085 itself: the state as it is, once. */
static void
gateway_chatstate(struct bridge *br, struct br_contact *c, const char *extra)
{
	xmpp_stanza_t *st;

	typing_stop(c);
	if (!c->pipe_up || (st = passthru_wire(NULL, NULL, extra)) == NULL)
		return;		/* transient: never queued, never dials */
	bl_send_stanza(br->gw->bl, c->id, st, 0);
	xmpp_stanza_release(st);
}

/* ---- XMPP -> Barev ---- */

/*
 * A message body accepted from the server link.  All the messages of one
 * read are committed in one transaction (one fsync under synchronous=FULL
 * instead of one each) on the next turn of the loop; none of them reaches
 * a pipe before that commit, so "durable first" still holds, and a crash
 * before it loses only what a crash a moment earlier would have left in
 * the kernel's socket buffer: XEP-0114 has no acknowledgements either way.
 */
struct br_accepted {
	struct br_contact *c;
	xmpp_stanza_t *st;	/* a reference: ids, sender, error reply */
	char *body;
	char *extra;		/* passthru.c: for a gateway peer, or NULL */
	int want_receipt;
	int direct;		/* born 'sending': pipe up, nothing queued */
	int64_t row;
};

#define ACCEPT_MAX 256		/* commit at once beyond this many */

static void
accepted_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_commit_accepted(arg);
}

static int
accept_message(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st,
    char *body, char *extra, int want_receipt)
{
	struct br_accepted *a;

	if (br->acc_n == br->acc_cap) {
		size_t cap = br->acc_cap ? br->acc_cap * 2 : 16;

		if ((a = realloc(br->acc, cap * sizeof(*a))) == NULL)
			return -1;
		br->acc = a;
		br->acc_cap = cap;
	}
	if (br->acc_ev == NULL &&
	    (br->acc_ev = event_new(br->gw->base, -1, 0, accepted_cb, br)) == NULL)
		return -1;
	a = &br->acc[br->acc_n++];
	a->c = c;
	a->st = xmpp_stanza_clone(st);
	a->body = body;
	a->extra = extra;
	a->want_receipt = want_receipt;
	a->direct = 0;
	a->row = 0;
	if (br->acc_n >= ACCEPT_MAX)
		relay_commit_accepted(br);
	else
		event_active(br->acc_ev, EV_TIMEOUT, 0);
	return 0;
}

/*
 * All or nothing: 0 when every accepted row is in the store.  Rows
 * the peer confirmed are deleted in the same transaction: one fsync
 * for both while messages keep coming.
 */
static int
store_accepted(struct bridge *br, struct br_accepted *v, size_t n)
{
	struct store *store = br->gw->store;
	size_t i;

	if (store_begin(store) != STORE_OK)
		return -1;
	for (i = 0; i < n; i++) {
		struct br_accepted *a = &v[i];

		/* with the pipe up and nothing queued before it, the row is
		 * born 'sending' and handed over at once: no outbox scan */
		a->direct = a->c->pipe_up && a->c->outbox_queued == 0;
		if (store_outbox_add(store, a->c->id, a->body,
		    xmpp_stanza_get_id(a->st), xmpp_stanza_get_from(a->st),
		    a->want_receipt, now_s(), a->direct, &a->row) != STORE_OK)
			goto fail;
		if (a->extra && store_outbox_set_extra(store, a->row,
		    a->extra) != STORE_OK)
			goto fail;
	}
	for (i = 0; i < br->done_n; i++)
		if (store_outbox_delete(store, br->done_rows[i]) == STORE_ERR)
			goto fail;
	if (store_commit(store) != STORE_OK)
		goto fail;
	br->done_n = 0;
	return 0;
fail:
	store_rollback(store);
	return -1;
}

/* The committed row goes to its pipe, or waits in the queue. */
static void
deliver_accepted(struct bridge *br, struct br_accepted *a)
{
	struct br_contact *c = a->c;

	if (a->direct) {
		struct store_outmsg m = { a->row, c->id, a->body,
		    (char *)xmpp_stanza_get_id(a->st),
		    (char *)xmpp_stanza_get_from(a->st), a->want_receipt, 0,
		    a->extra };

		/* an earlier one of the batch may have gone to the queue */
		if (c->outbox_queued == 0 && c->pipe_up && handoff(br, c, &m) == 0) {
			log_debug("relay", "message %lld handed to %s@%s",
			    (long long)a->row, c->nick, c->address);
			return;
		}
		/* barevlink refused it: back to the queue, like a dying pipe */
		store_outbox_set_sending(br->gw->store, a->row, 0);
	}
	c->outbox_queued++;
	c->batch_mark = 1;
	log_debug("relay", "message %lld to %s@%s waits in the outbox",
	    (long long)a->row, c->nick, c->address);
}

void
relay_commit_accepted(struct bridge *br)
{
	struct br_accepted *v = br->acc;
	size_t n = br->acc_n, i;

	if (n == 0)
		return;
	/* taken out first: what runs below may accept or commit again */
	br->acc = NULL;
	br->acc_n = br->acc_cap = 0;
	if (store_accepted(br, v, n) == 0) {
		for (i = 0; i < n; i++)
			deliver_accepted(br, &v[i]);
		/* contacts with queued rows: flush or dial, once each */
		for (i = 0; i < n; i++) {
			struct br_contact *c = v[i].c;

			if (!c->batch_mark)
				continue;
			c->batch_mark = 0;
			if (c->pipe_up)
				relay_flush_outbox(br, c);
			else
				br_update_want(br, c);	/* dial */
		}
	} else {
		struct store *store = br->gw->store;
		char text[256];

		/* the cause in the user's words: a full disk is hers to report */
		snprintf(text, sizeof(text), "The message was not sent: %s, so"
		    " the gateway could not store it. Try again later.",
		    store_error_reason(store));
		log_error("relay", "%zu message(s) could not be stored (%s);"
		    " their senders are told", n, store_error_reason(store));
		for (i = 0; i < n; i++)
			br_error_reply(br->gw, v[i].st, "wait",
			    store_error_is_full(store) ? "resource-constraint" :
			    "internal-server-error", text);
	}
	for (i = 0; i < n; i++) {
		free(v[i].body);
		free(v[i].extra);
		xmpp_stanza_release(v[i].st);
	}
	free(v);
}

int
relay_message_from_user(struct bridge *br, struct br_user *u,
    struct br_contact *c, xmpp_stanza_t *st)
{
	struct gw *gw = br->gw;
	struct tr_user_message m;
	struct tr_pair pair = br_pair(c);
	enum tr_user_send send;
	char *body, *extra = NULL;
	int durable = 0;

	(void)u;
	if (pep_user_message(br, c, st))
		return 0;	/* her server's PEP event: OMEMO keys or nothing */
	tr_user_message_read(st, &m);
	if (m.body && transfer_user_message(gw, c->id, st) == 1) {
		tr_user_message_clear(&m);
		return 0;	/* a file link: the transfer module took it */
	}
	/* out of memory here only costs the extras: the body still goes */
	if (peercaps_maybe_gateway(c) &&
	    passthru_extract(&pair, st, &extra, &durable) == -1)
		extra = NULL;
	if ((send = tr_user_send(&m, extra != NULL && durable)) != TR_SEND_ROW) {
		if (send == TR_SEND_STATE) {
			/* after the bodies before it, never ahead of them */
			relay_commit_accepted(br);
			if (c->peer_gateway)
				gateway_chatstate(br, c, extra);
			else
				user_chatstate(br, c, m.state);
		}
		free(extra);
		tr_user_message_clear(&m);
		return 0;
	}
	/* a reaction, receipt, retraction, marker alone: a message of its
	 * own to a gateway, through the outbox like a body */
	body = m.body ? m.body : strdup("");
	m.body = NULL;
	if (c->typing_ev)
		typing_stop(c);
	if (body == NULL ||
	    accept_message(br, c, st, body, extra, m.want_receipt) == -1) {
		free(body);
		free(extra);
		br_error_reply(gw, st, "wait", "internal-server-error",
		    "The gateway is out of memory; the message was not sent.");
		return -1;
	}
	return 0;
}

/* A row's bytes: today's body-only message to a Barev peer; to a gateway
 * the client's id, body and allow-listed children (passthru.c). */
static int
send_row(struct bridge *br, struct br_contact *c, const struct store_outmsg *m)
{
	xmpp_stanza_t *st;
	int rv;

	if (!c->peer_gateway)
		return bl_send_message(br->gw->bl, c->id, m->body, (uint64_t)m->id);
	if ((st = passthru_wire(m->xmpp_id, m->body, m->extra)) == NULL)
		return -1;
	rv = bl_send_stanza(br->gw->bl, c->id, st, (uint64_t)m->id);
	xmpp_stanza_release(st);
	return rv;
}

/*
 * Give one row (already marked 'sending': a crash after this never
 * re-sends it) to the pipe and remember it until the peer confirms it read
 * it (relay_sent, relay_ping_done).  0, or -1 when barevlink refused it.
 */
static int
handoff(struct bridge *br, struct br_contact *c, const struct store_outmsg *m)
{
	struct br_inflight *in;

	if (*m->body == '\0' && !c->peer_gateway) {
		/* only a gateway understood it, and the pipe now leads to a
		 * Barev peer: nothing it could show, so it is done */
		log_debug("relay", "message %lld to %s@%s had only extras a Barev"
		    " peer cannot read; dropped", (long long)m->id, c->nick,
		    c->address);
		forget_row(br, m->id);
		return 0;
	}
	if ((in = calloc(1, sizeof(*in))) == NULL)
		return -1;
	in->row = m->id;
	in->want_receipt = m->want_receipt;
	in->xmpp_id = m->xmpp_id ? strdup(m->xmpp_id) : NULL;
	in->from_jid = strdup(m->from_jid);
	if (in->from_jid == NULL || send_row(br, c, m) == -1) {
		free(in->xmpp_id);
		free(in->from_jid);
		free(in);
		return -1;
	}
	/* a gateway peer's user answers the request herself (XEP-0184) */
	if (c->peer_gateway && in->want_receipt &&
	    passthru_has(m->extra, "request", NS_RECEIPTS))
		in->want_receipt = 0;
	in->body_len = strlen(m->body);
	TAILQ_INSERT_TAIL(&c->inflight, in, entry);
	return 0;
}

/* The queued rows of one contact, copied out of the store. */
struct flush_ctx {
	struct store_outmsg *v;
	size_t n, cap;
	int partial;		/* out of memory: some rows were left */
	int more;		/* a batch is full: rows were left for the next */
	size_t bytes;
};

static int
collect_one(void *arg, const struct store_outmsg *m)
{
	struct flush_ctx *f = arg;
	struct store_outmsg *v, *o;

	/* a batch at a time: a long backlog never sits in memory at once */
	if (f->bytes >= FLUSH_BATCH_BYTES) {
		f->more = 1;
		return 1;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;

		if ((v = realloc(f->v, cap * sizeof(*v))) == NULL)
			goto oom;
		f->v = v;
		f->cap = cap;
	}
	o = &f->v[f->n];
	*o = *m;
	o->body = strdup(m->body);
	o->from_jid = strdup(m->from_jid);
	o->xmpp_id = m->xmpp_id ? strdup(m->xmpp_id) : NULL;
	o->extra = m->extra ? strdup(m->extra) : NULL;
	if (o->body == NULL || o->from_jid == NULL || (m->xmpp_id && !o->xmpp_id) ||
	    (m->extra && !o->extra)) {
		free(o->body);
		free(o->from_jid);
		free(o->xmpp_id);
		free(o->extra);
		goto oom;
	}
	f->n++;
	f->bytes += strlen(o->body);
	return 0;
oom:
	f->partial = 1;
	return 1;
}

/*
 * Hand a contact's queued rows to its pipe: all are marked 'sending' in
 * one transaction first (one fsync for a backlog, not one per row, and
 * nothing reaches a pipe before its mark is durable), then handed over in
 * order; what barevlink refuses goes back to the queue, again in one.
 */
static void
relay_flush_outbox(struct bridge *br, struct br_contact *c)
{
	struct store *store = br->gw->store;
	struct flush_ctx f;
	int64_t *ids;
	size_t i, sent;
	int more;

again:
	memset(&f, 0, sizeof(f));
	sent = 0;
	if (!c->pipe_up)
		return;
	flushing = 1;	/* relay_sent() runs inside handoff(): no nesting */
	/* rows in flight are already 'sending', so they are not read again */
	store_outbox_foreach_queued(store, c->id, collect_one, &f);
	if (f.n > 0 && (ids = calloc(f.n, sizeof(*ids))) != NULL) {
		for (i = 0; i < f.n; i++)
			ids[i] = f.v[i].id;
		if (store_outbox_set_sending_many(store, ids, f.n, 1) == STORE_OK) {
			while (sent < f.n && c->pipe_up &&
			    handoff(br, c, &f.v[sent]) == 0)
				sent++;
			if (sent < f.n && store_outbox_set_sending_many(store,
			    ids + sent, f.n - sent, 0) != STORE_OK)
				log_error("relay", "%zu message(s) to %s@%s could not"
				    " be queued again; the next start drops them",
				    f.n - sent, c->nick, c->address);
		}
		free(ids);
	}
	flushing = 0;
	/* not exact, only "some are left": that sends the next ones through
	 * the queue too, keeping the order */
	c->outbox_queued = f.partial || f.more || sent < f.n;
	more = f.more && sent == f.n;
	if (sent)
		log_debug("relay", "%zu message(s) handed to %s@%s", sent, c->nick,
		    c->address);
	for (i = 0; i < f.n; i++) {
		free(f.v[i].body);
		free(f.v[i].xmpp_id);
		free(f.v[i].from_jid);
		free(f.v[i].extra);
	}
	free(f.v);
	/* the kernel took the whole batch at once: no relay_sent() follows */
	if (more && c->pipe_up && TAILQ_EMPTY(&c->inflight))
		goto again;
}

void
relay_pipe_up(struct bridge *br, struct br_contact *c)
{
	relay_flush_outbox(br, c);
	br_update_want(br, c);
}

static void
inflight_free(struct br_inflight *in)
{
	free(in->xmpp_id);
	free(in->from_jid);
	free(in);
}

/* `inflight` then `unread` of a contact, freed */
static void
inflight_clear(struct br_contact *c)
{
	struct br_inflight *in;

	while ((in = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, in, entry);
		inflight_free(in);
	}
	while ((in = TAILQ_FIRST(&c->unread)) != NULL) {
		TAILQ_REMOVE(&c->unread, in, entry);
		inflight_free(in);
	}
	c->read_ping = 0;
}

/*
 * The pipe is gone.  Rows never written to the kernel are queued again.
 * Rows the kernel took but no ping answer confirmed: queued again too when
 * the pipe was cut (barevlink reset the connection: they may be lost, and
 * can no longer arrive late), else (a drain, our own orderly close)
 * deleted: the peer has them or the closing connection still brings them.
 * The ids are older than any row still queued, so a resend keeps the order.
 */
void
relay_pipe_down(struct bridge *br, struct br_contact *c)
{
	struct store *store = br->gw->store;
	struct br_inflight *in;
	int64_t *ids;
	size_t n = 0, k = 0, unread = 0;
	int back = 0, cut = c->pipe_cut;

	c->pipe_cut = 0;
	typing_stop(c);
	TAILQ_FOREACH(in, &c->unread, entry)
		unread++;
	TAILQ_FOREACH(in, &c->inflight, entry)
		n++;
	n += unread;
	if (n > 0 && (ids = calloc(n, sizeof(*ids))) != NULL) {
		TAILQ_FOREACH(in, &c->unread, entry)
			ids[k++] = in->row;
		TAILQ_FOREACH(in, &c->inflight, entry)
			ids[k++] = in->row;
		if (!cut && unread > 0 &&
		    store_outbox_delete_many(store, ids, unread) != STORE_OK)
			log_warn("relay", "%zu delivered outbox rows not deleted; the"
			    " next start drops them unsent", unread);
		k = cut ? 0 : unread;	/* the first row to queue again */
		if (n > k) {
			if (store_outbox_set_sending_many(store, ids + k, n - k,
			    0) == STORE_OK)
				back = (int)(n - k);
			else
				log_error("relay", "%zu message(s) to %s@%s could not be"
				    " queued again; the next start drops them", n - k,
				    c->nick, c->address);
		}
		free(ids);
	}
	inflight_clear(c);
	if (back) {
		c->outbox_queued += back;
		log_info("relay", "%d message(s) to %s@%s requeued%s", back, c->nick,
		    c->address, cut && unread ? " (the link was cut before the"
		    " peer confirmed it read them)" : "");
	}
	br_update_want(br, c);
}

/*
 * Rows the peer confirmed are deleted in batches: with the next messages'
 * transaction while they keep coming, else by a timer DONE_MS later.
 * Until then they stay 'sending', which a restart drops without
 * re-sending, so the batching never makes a duplicate.
 */
#define DONE_MS 20

static void
forget_rows_now(struct bridge *br)
{
	if (br->done_n > 0 && store_outbox_delete_many(br->gw->store,
	    br->done_rows, br->done_n) != STORE_OK)
		log_warn("relay", "%zu delivered outbox rows not deleted; the next"
		    " start drops them unsent", br->done_n);
	br->done_n = 0;
}

static void
forget_rows_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	forget_rows_now(arg);
}

static void
forget_row(struct bridge *br, int64_t row)
{
	struct timeval tv = { 0, DONE_MS * 1000 };
	int64_t *tmp;

	if (br->done_n == br->done_cap) {
		size_t cap = br->done_cap ? br->done_cap * 2 : 64;

		if ((tmp = realloc(br->done_rows, cap * sizeof(*tmp))) == NULL) {
			store_outbox_delete(br->gw->store, row);
			return;
		}
		br->done_rows = tmp;
		br->done_cap = cap;
	}
	br->done_rows[br->done_n++] = row;
	if (br->done_ev == NULL &&
	    (br->done_ev = evtimer_new(br->gw->base, forget_rows_cb, br)) == NULL) {
		forget_rows_now(br);
		return;
	}
	if (!evtimer_pending(br->done_ev, NULL))
		evtimer_add(br->done_ev, &tv);
}

static int
row_forgotten(struct bridge *br, int64_t row)
{
	for (size_t i = 0; i < br->done_n; i++)
		if (br->done_rows[i] == row)
			return 1;
	return 0;
}

/*
 * Ask the peer to prove it read the rows the kernel took: one ping at a
 * time covers every unread row written before it.  Rows written while it
 * is out wait for its answer, then the next ping.
 */
static void
read_ping(struct bridge *br, struct br_contact *c)
{
	struct br_inflight *in;
	uint64_t cookie;

	if (c->read_ping != 0 || (in = TAILQ_LAST(&c->unread, br_inflight_q)) == NULL ||
	    in->ping != 0)
		return;		/* one out already, or nothing to confirm */
	cookie = ++br->next_cookie;
	if (bl_ping(br->gw->bl, c->id, cookie) == -1)
		return;		/* the pipe is going: pipe_down sorts them */
	c->read_ping = cookie;
	/* those without a ping are the tail */
	for (; in != NULL && in->ping == 0; in = TAILQ_PREV(in, br_inflight_q, entry))
		in->ping = cookie;
}

static void
send_receipt(struct bridge *br, struct br_contact *c, const struct br_inflight *in)
{
	xmpp_stanza_t *st;
	char full[STORE_JID_MAX + 16], id[72];

	snprintf(full, sizeof(full), "%s/barev", c->jid);
	/* one ping confirms many rows; row ids may come again later */
	snprintf(id, sizeof(id), "rcpt-%llu-%lld-%lld", (unsigned long long)in->ping,
	    (long long)in->row, (long long)now_s());
	if ((st = tr_receipt(full, in->from_jid, id, in->xmpp_id)) == NULL) {
		log_error("relay", "out of memory: no receipt for %s", in->from_jid);
		return;
	}
	br_send(br->gw, st);
}

void
relay_sent(struct bridge *br, struct br_contact *c, uint64_t token)
{
	struct br_inflight *in;

	TAILQ_FOREACH(in, &c->inflight, entry)
		if ((uint64_t)in->row == token)
			break;
	if (in == NULL)
		return;
	/* counted here, not at the hand-over: a row requeued by a dying pipe
	 * is handed over again but relayed once (a cut link's unread rows,
	 * written again, count again) */
	br->gw->counters.msgs_to_barev++;
	br->gw->counters.bytes_to_barev += in->body_len;
	/* in the kernel, not yet read: kept until a ping after it returns */
	TAILQ_REMOVE(&c->inflight, in, entry);
	in->ping = 0;
	TAILQ_INSERT_TAIL(&c->unread, in, entry);
	read_ping(br, c);
	if (TAILQ_EMPTY(&c->inflight)) {
		/* all in the kernel: what the pipe held back (a peer reading
		 * slowly, BL_MAX_UNSENT) waits in the outbox; on with it */
		if (c->outbox_queued && !flushing)
			relay_flush_outbox(br, c);
		br_update_want(br, c);
	}
}

void
relay_ping_done(struct bridge *br, struct br_contact *c, uint64_t cookie, int ok)
{
	struct br_inflight *in;

	if (cookie == 0 || cookie != c->read_ping)
		return;
	c->read_ping = 0;
	if (!ok) {
		/* unanswered in time, the pipe still up (a slow reader): ask
		 * again; a dead pipe's rows are pipe_down's */
		TAILQ_FOREACH(in, &c->unread, entry)
			if (in->ping == cookie)
				in->ping = 0;
		if (c->pipe_up)
			read_ping(br, c);
		return;
	}
	/* TCP order: the peer read everything written before the ping */
	while ((in = TAILQ_FIRST(&c->unread)) != NULL && in->ping == cookie) {
		TAILQ_REMOVE(&c->unread, in, entry);
		forget_row(br, in->row);
		if (in->want_receipt && in->xmpp_id && in->from_jid)
			send_receipt(br, c, in);
		inflight_free(in);
	}
	read_ping(br, c);
}

void
relay_contact_forget(struct bridge *br, struct br_contact *c)
{
	size_t i, k;

	/* provisioning commits accepted messages before it deletes a contact
	 * (their rows need it); should one be left, it must not outlive `c` */
	for (i = k = 0; i < br->acc_n; i++) {
		struct br_accepted *a = &br->acc[i];

		if (a->c != c) {
			br->acc[k++] = *a;
			continue;
		}
		br_error_reply(br->gw, a->st, "cancel", "item-not-found",
		    "The contact was removed before the message was sent.");
		free(a->body);
		free(a->extra);
		xmpp_stanza_release(a->st);
	}
	br->acc_n = k;
	typing_stop(c);
	inflight_clear(c);
}

/* ---- Barev -> XMPP ---- */

void
relay_to_user(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st,
    int durable)
{
	struct gw *gw = br->gw;
	char *xml, id[96];
	size_t len;
	int rc;
	static unsigned long dup_seq;

	if (comp_state(gw->comp) == COMP_UP && gw_send(gw, st) == 0) {
		xmpp_stanza_release(st);
		return;
	}
	if (!durable) {
		xmpp_stanza_release(st);
		return;
	}
	/* the link is down: hold it, in order, until it is back */
	xml = xs_serialize_str(st, 0, &len);
	rc = xml ? store_inbox_add(gw->store, c ? c->id : 0,
	    xmpp_stanza_get_id(st), xml, now_s()) : STORE_ERR;
	if (rc == STORE_DUP) {
		/* a gateway peer's user chose the id and used it twice: a
		 * fresh one costs references to this one, never the message */
		snprintf(id, sizeof(id), "barev-%lld-%lld-dup%lu",
		    c ? (long long)c->id : 0LL, (long long)now_s(), ++dup_seq);
		xmpp_stanza_set_id(st, id);
		free(xml);
		xml = xs_serialize_str(st, 0, &len);
		rc = xml ? store_inbox_add(gw->store, c ? c->id : 0, id, xml,
		    now_s()) : STORE_ERR;
	}
	if (rc != STORE_OK)
		log_error("relay", "LOST a message from %s@%s: the component link is"
		    " down and the inbox refused it", c ? c->nick : "?",
		    c ? c->address : "?");
	free(xml);
	xmpp_stanza_release(st);
}

/*
 * From another gateway: its user's message as her client wrote it, id and
 * allow-listed children kept (passthru.c); held in the inbox like any
 * message when it carries a body or something durable, else transient.
 */
static void
message_from_gateway(struct bridge *br, struct br_contact *c,
    xmpp_stanza_t *st, const char *body, const char *full, unsigned long seq)
{
	const char *pid = xmpp_stanza_get_id(st);
	struct tr_pair pair = br_pair(c);
	xmpp_stanza_t *out;
	char id[64];
	int durable, has_body = body && *body;

	out = br_stanza("message", "chat", full, c->user->jid);
	if (passthru_id_ok(pid)) {
		xmpp_stanza_set_id(out, pid);	/* references name it */
	} else {
		snprintf(id, sizeof(id), "barev-%lld-%lld-%lu", (long long)c->id,
		    (long long)now_s(), seq);
		xmpp_stanza_set_id(out, id);
	}
	if (has_body)
		br_add_text_child(out, "body", NULL, body);
	durable = passthru_import(&pair, st, out);
	if (!has_body && xmpp_stanza_get_children(out) == NULL) {
		xmpp_stanza_release(out);
		return;		/* nothing we pass */
	}
	if (has_body) {
		br->gw->counters.msgs_to_xmpp++;
		br->gw->counters.bytes_to_xmpp += strlen(body);
	}
	relay_to_user(br, c, out, has_body || durable);
}

void
relay_message_from_peer(struct bridge *br, struct br_contact *c,
    xmpp_stanza_t *st)
{
	struct tr_peer_message m;
	char full[STORE_JID_MAX + 16], id[64];
	xmpp_stanza_t *out;
	int durable;
	static unsigned long seq;

	if (pep_peer_message(br, c, st))
		return;		/* a gateway's OMEMO device-list event */
	snprintf(full, sizeof(full), "%s/barev", c->jid);
	tr_peer_message_read(st, &m);
	if (c->peer_gateway) {
		message_from_gateway(br, c, st, m.body, full, ++seq);
		tr_peer_message_clear(&m);
		return;
	}
	/* stable: the same id if it waits in the inbox and is flushed */
	if (m.body != NULL)
		snprintf(id, sizeof(id), "barev-%lld-%lld-%lu", (long long)c->id,
		    (long long)now_s(), ++seq);
	else if (m.state != NULL)
		log_debug("relay", "%s from %s@%s", m.state, c->nick, c->address);
	if ((out = tr_user_message(full, c->user->jid, m.body ? id : NULL, &m,
	    &durable)) != NULL) {
		/* typing notifications are transient: never stored */
		relay_to_user(br, c, out, durable);
		if (m.body != NULL) {
			br->gw->counters.msgs_to_xmpp++;
			br->gw->counters.bytes_to_xmpp += strlen(m.body);
		}
	} else if (m.body != NULL)
		log_error("relay", "LOST a message from %s@%s: out of memory",
		    c->nick, c->address);
	tr_peer_message_clear(&m);
}

#define INBOX_BATCH 256	/* rows taken out of the inbox per transaction */

struct inbox_ctx {
	struct store *store;
	xmpp_stanza_t *st[INBOX_BATCH];
	size_t n;
	int more;		/* the batch is full: rows were left */
	int failed;
};

static int
inbox_collect(void *arg, const struct store_inmsg *m)
{
	struct inbox_ctx *ic = arg;
	xmpp_stanza_t *st;

	if (ic->n == INBOX_BATCH) {
		ic->more = 1;
		return 1;
	}
	if ((st = xmpp_stanza_new_from_string(xs_ctx(), m->xml)) == NULL)
		log_error("relay", "inbox row %lld is unreadable; dropped",
		    (long long)m->id);
	if (store_inbox_delete(ic->store, m->id) != STORE_OK) {
		if (st != NULL)
			xmpp_stanza_release(st);
		ic->failed = 1;
		return 1;
	}
	if (st != NULL)
		ic->st[ic->n++] = st;
	return 0;
}

/*
 * What came from Barev while the component link was down, in order: a
 * batch of rows is deleted in one transaction (one fsync, not one per
 * row: a thousand held messages stalled every pipe for seconds at link
 * up), then sent.  Deleted before sent: a crash in between loses them in
 * a buffer, like a crash a moment later, and never doubles them.
 */
void
relay_flush_inbox(struct bridge *br)
{
	struct gw *gw = br->gw;
	struct inbox_ctx *ic;
	int sent = 0, ok = 0;
	size_t i;

	if ((ic = malloc(sizeof(*ic))) == NULL) {
		log_error("relay", "no memory to deliver the held messages");
		return;
	}
	do {
		memset(ic, 0, sizeof(*ic));
		ic->store = gw->store;
		if (comp_state(gw->comp) != COMP_UP ||
		    store_begin(gw->store) != STORE_OK)
			break;
		store_inbox_foreach(gw->store, inbox_collect, ic);
		ok = !ic->failed && store_commit(gw->store) == STORE_OK;
		if (!ok)
			store_rollback(gw->store);
		for (i = 0; i < ic->n; i++) {
			if (ok) {
				gw_send(gw, ic->st[i]);
				sent++;
			}
			xmpp_stanza_release(ic->st[i]);
		}
	} while (ok && ic->more);
	free(ic);
	if (sent)
		log_info("relay", "delivered %d message(s) held while the component"
		    " link was down", sent);
}

/* ---- outbox expiry ---- */

static int
expire_one(void *arg, const struct store_outmsg *m)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, m->contact_id);
	struct br_inflight *in;
	xmpp_stanza_t *st, *err, *el;
	char full[STORE_JID_MAX + 16], text[600];

	if (c) {
		TAILQ_FOREACH(in, &c->inflight, entry)
			if (in->row == m->id)
				return 0;	/* on its way right now */
		TAILQ_FOREACH(in, &c->unread, entry)
			if (in->row == m->id)
				return 0;	/* written, its read not yet confirmed */
	}
	if (row_forgotten(br, m->id))
		return 0;		/* delivered; deleted in a moment */
	snprintf(full, sizeof(full), "%s/barev", c ? c->jid : br->gw->cfg.component_jid);
	st = br_stanza("message", "error", full, m->from_jid);
	if (m->xmpp_id)
		xmpp_stanza_set_id(st, m->xmpp_id);
	br_add_text_child(st, "body", NULL, m->body);
	err = br_stanza("error", NULL, NULL, NULL);
	xmpp_stanza_set_attribute(err, "type", "wait");
	el = br_stanza("recipient-unavailable", NULL, NULL, NULL);
	xmpp_stanza_set_ns(el, "urn:ietf:params:xml:ns:xmpp-stanzas");
	xmpp_stanza_add_child_ex(err, el, 0);
	snprintf(text, sizeof(text), "Not delivered: %s@%s could not be reached"
	    " in time. Your message was: \"%.400s\"", c ? c->nick : "the contact",
	    c ? c->address : "", m->body);
	br_add_text_child(err, "text", "urn:ietf:params:xml:ns:xmpp-stanzas", text);
	xmpp_stanza_add_child_ex(st, err, 0);
	if (gw_send(br->gw, st) == 0) {
		store_outbox_delete(br->gw->store, m->id);
		log_info("relay", "outbox message %lld expired; %s told",
		    (long long)m->id, m->from_jid);
		/* an expired row no longer keeps its contact dialled */
		if (c && c->outbox_queued > 0) {
			int left = store_outbox_queued_of(br->gw->store, c->id);

			c->outbox_queued = left < 0 ? c->outbox_queued : left;
			br_update_want(br, c);
		}
	}
	xmpp_stanza_release(st);
	return 0;
}

static void
ttl_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bridge *br = arg;
	int64_t ttl_s = (int64_t)(br->gw->cfg.outbox_ttl_ms / 1000);

	(void)fd;
	(void)what;
	if (comp_state(br->gw->comp) != COMP_UP)
		return;		/* tell them when they can hear it */
	store_outbox_foreach_expired(br->gw->store, now_s() - ttl_s, expire_one, br);
}

static void
want_queued(void *arg, int64_t contact_id)
{
	struct bridge *br = arg;
	struct br_contact *c = br_contact_by_id(br, contact_id);

	if (c) {
		c->outbox_queued++;
		br_update_want(br, c);
	}
}

int
relay_start(struct bridge *br)
{
	struct gw *gw = br->gw;
	uint64_t ttl = gw->cfg.outbox_ttl_ms;
	struct timeval tv;
	int dropped = 0;

	if (store_outbox_drop_sending(gw->store, &dropped) != STORE_OK)
		return -1;
	if (dropped)
		log_warn("relay", "%d message(s) were being written to Barev peers when"
		    " the gateway stopped; they may have arrived and are not sent"
		    " again (Barev has no acknowledgements)", dropped);
	store_outbox_foreach_contact(gw->store, want_queued, br);
	/* look for expired rows a few times per TTL, at most once a minute */
	ttl = ttl / 4;
	if (ttl > 60000)
		ttl = 60000;
	if (ttl < 250)
		ttl = 250;
	tv.tv_sec = (time_t)(ttl / 1000);
	tv.tv_usec = (suseconds_t)(ttl % 1000) * 1000;
	if ((br->ttl_ev = event_new(gw->base, -1, EV_PERSIST, ttl_tick, br)) == NULL ||
	    event_add(br->ttl_ev, &tv) == -1)
		return -1;
	return 0;
}

void
relay_stop(struct bridge *br)
{
	relay_commit_accepted(br);
	if (br->acc_ev) {
		event_free(br->acc_ev);
		br->acc_ev = NULL;
	}
	forget_rows_now(br);
	if (br->done_ev) {
		event_free(br->done_ev);
		br->done_ev = NULL;
	}
	if (br->ttl_ev) {
		event_free(br->ttl_ev);
		br->ttl_ev = NULL;
	}
}
