/*
 * inbox — Barev -> XMPP: a peer's message goes straight to the user's bare
 * JID with a stable id while the component link is up, and is held in the
 * SQLite inbox while it is down, flushed in order when it returns; a
 * gateway peer's message keeps its id and allowed children (passthru).
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
	    xmpp_stanza_get_id(st), xml, cm_wall_s()) : STORE_ERR;
	if (rc == STORE_DUP) {
		/* a gateway peer's user chose the id and used it twice: a
		 * fresh one costs references to this one, never the message */
		snprintf(id, sizeof(id), "barev-%lld-%lld-dup%lu",
		    c ? (long long)c->id : 0LL, (long long)cm_wall_s(), ++dup_seq);
		xmpp_stanza_set_id(st, id);
		free(xml);
		xml = xs_serialize_str(st, 0, &len);
		rc = xml ? store_inbox_add(gw->store, c ? c->id : 0, id, xml,
		    cm_wall_s()) : STORE_ERR;
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
		    (long long)cm_wall_s(), seq);
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
		    (long long)cm_wall_s(), ++seq);
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

