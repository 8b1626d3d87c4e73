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
#include "clock.h"
#include "component.h"
#include "gw.h"
#include "log.h"
#include "transfer.h"
#include "translate.h"
#include "xmlstream.h"


#define NS_RECEIPTS "urn:xmpp:receipts"
#define TYPING_REFRESH_MS 1000	/* purple's indicator lasts ~1 s (BAREV.md §4) */
#define TYPING_MAX_TICKS 30	/* XEP-0085 §5.2: composing lapses after ~30 s */

/* ---- chat states ---- */

void
relay_typing_stop(struct br_contact *c)
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
		relay_typing_stop(c);
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
		relay_typing_stop(c);
		bl_send_chatstate(br->gw->bl, c->id, "paused", 0);
		break;
	default:
		relay_typing_stop(c);
		break;
	}
}

/* A gateway peer's user reads XEP-0085 itself: the state as it is, once. */
static void
gateway_chatstate(struct bridge *br, struct br_contact *c, const char *extra)
{
	xmpp_stanza_t *st;

	relay_typing_stop(c);
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
		    a->want_receipt, cm_wall_s(), a->direct, &a->row) != STORE_OK)
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
		if (c->outbox_queued == 0 && c->pipe_up && outbox_handoff(br, c, &m) == 0) {
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
				outbox_flush(br, c);
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
		relay_typing_stop(c);
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


/* The contact is being deleted: nothing of it may outlive it. */
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
	relay_typing_stop(c);
	outbox_contact_forget(c);
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
	if (outbox_row_forgotten(br, m->id))
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
	store_outbox_foreach_expired(br->gw->store, cm_wall_s() - ttl_s, expire_one, br);
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
	outbox_forget_rows_now(br);
	if (br->done_ev) {
		event_free(br->done_ev);
		br->done_ev = NULL;
	}
	if (br->ttl_ev) {
		event_free(br->ttl_ev);
		br->ttl_ev = NULL;
	}
}
