/*
 * outbox — the user's committed messages handed to the pipes, and the
 * proof that a peer read them (relay.c's first comment tells the whole
 * rule): rows go to barevlink in order, wait for the kernel (`sent`),
 * then for a ping answered after them, and only then are deleted and
 * their receipts sent; a pipe going down puts back what it had not proved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "barevlink.h"
#include "bridge_int.h"
#include "clock.h"
#include "component.h"
#include "gw.h"
#include "log.h"
#include "transfer.h"
#include "translate.h"
#include "xmlstream.h"

#define NS_RECEIPTS "urn:xmpp:receipts"
#define FLUSH_BATCH_BYTES (256 * 1024)	/* bodies read from the outbox at once */

static int flushing;	/* inside outbox_flush() */
static void forget_row(struct bridge *br, int64_t row);

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
int
outbox_handoff(struct bridge *br, struct br_contact *c, const struct store_outmsg *m)
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
void
outbox_flush(struct bridge *br, struct br_contact *c)
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
	flushing = 1;	/* relay_sent() runs inside outbox_handoff(): no nesting */
	/* rows in flight are already 'sending', so they are not read again */
	store_outbox_foreach_queued(store, c->id, collect_one, &f);
	if (f.n > 0 && (ids = calloc(f.n, sizeof(*ids))) != NULL) {
		for (i = 0; i < f.n; i++)
			ids[i] = f.v[i].id;
		if (store_outbox_set_sending_many(store, ids, f.n, 1) == STORE_OK) {
			while (sent < f.n && c->pipe_up &&
			    outbox_handoff(br, c, &f.v[sent]) == 0)
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
	outbox_flush(br, c);
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
	relay_typing_stop(c);
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

void
outbox_forget_rows_now(struct bridge *br)
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
	outbox_forget_rows_now(arg);
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
		outbox_forget_rows_now(br);
		return;
	}
	if (!evtimer_pending(br->done_ev, NULL))
		evtimer_add(br->done_ev, &tv);
}

int
outbox_row_forgotten(struct bridge *br, int64_t row)
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
	    (long long)in->row, (long long)cm_wall_s());
	if ((st = tr_receipt(full, in->from_jid, id, in->xmpp_id)) == NULL) {
		log_error("relay", "out of memory: no receipt for %s", in->from_jid);
		return;
	}
	gw_send_release(br->gw, st);
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
			outbox_flush(br, c);
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
/* its hand-over state (the rows stay in the store) */
void
outbox_contact_forget(struct br_contact *c)
{
	inflight_clear(c);
}

