/*
 * store_queue — the two queues that make delivery durable: the outbox
 * (the user's messages to Barev peers, kept until a peer has them) and
 * the inbox (stanzas for the user held while the component is down).
 *
 * The one idea: a row is written before anyone is told it was taken, and
 * deleted only once the other side has it; readers copy rows out (outbox)
 * or hand them over one at a time (inbox) so callbacks may write.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ---- outbox ---- */

int
store_outbox_add(struct store *s, int64_t contact_id, const char *body,
    const char *xmpp_id, const char *from_jid, int want_receipt, int64_t now,
    int sending, int64_t *idp)
{
	return store_insert(s, S_OUT_ADD, idp, "ItttiIt", contact_id, body, xmpp_id,
	    from_jid, want_receipt != 0, now, sending ? "sending" : "queued");
}

/* One transaction for a row operation applied to many rows. */
static int
outbox_each_id(struct store *s, const int64_t *ids, size_t n,
    int (*op)(struct store *, int64_t, int), int arg)
{
	if (n == 0)
		return STORE_OK;
	if (store_begin(s) != STORE_OK)
		return STORE_ERR;
	for (size_t i = 0; i < n; i++)
		if (op(s, ids[i], arg) == STORE_ERR)
			goto fail;
	if (store_commit(s) == STORE_OK)
		return STORE_OK;
fail:
	store_rollback(s);
	return STORE_ERR;
}

static int
delete_op(struct store *s, int64_t id, int unused)
{
	(void)unused;
	return store_outbox_delete(s, id);
}

int
store_outbox_delete_many(struct store *s, const int64_t *ids, size_t n)
{
	return outbox_each_id(s, ids, n, delete_op, 0);
}

int
store_outbox_set_sending_many(struct store *s, const int64_t *ids, size_t n,
    int sending)
{
	return outbox_each_id(s, ids, n, store_outbox_set_sending, sending);
}

/*
 * Rows are copied out before the callback runs, so the callback may write
 * to the store (mark, delete) without disturbing the cursor.
 */
static int
outbox_each(struct store *s, sqlite3_stmt *st,
    int (*fn)(void *, const struct store_outmsg *), void *arg)
{
	struct store_outmsg *rows = NULL, *tmp;
	size_t n = 0, cap = 0;
	int rc, ret = STORE_OK;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((tmp = realloc(rows, cap * sizeof(*rows))) == NULL) {
				ret = STORE_ERR;
				break;
			}
			rows = tmp;
		}
		rows[n].id = sqlite3_column_int64(st, 0);
		rows[n].contact_id = sqlite3_column_int64(st, 1);
		rows[n].body = store_dup_col(st, 2);
		rows[n].xmpp_id = store_dup_col(st, 3);
		rows[n].from_jid = store_dup_col(st, 4);
		rows[n].want_receipt = sqlite3_column_int(st, 5);
		rows[n].created_at = sqlite3_column_int64(st, 6);
		rows[n].extra = store_dup_col(st, 7);
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_err(s, "outbox read: %s", sqlite3_errmsg(s->db));
		ret = STORE_ERR;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (size_t i = 0; i < n; i++) {
		if (ret == STORE_OK && rows[i].body && rows[i].from_jid &&
		    fn(arg, &rows[i]) != 0)
			ret = 1;	/* stopped early; still free the rest */
		free(rows[i].body);
		free(rows[i].xmpp_id);
		free(rows[i].from_jid);
		free(rows[i].extra);
	}
	free(rows);
	return ret < 0 ? STORE_ERR : STORE_OK;
}

int
store_outbox_foreach_queued(struct store *s, int64_t contact_id,
    int (*fn)(void *, const struct store_outmsg *), void *arg)
{
	sqlite3_stmt *st = store_bind(s, S_OUT_QUEUED, "I", contact_id);

	return st ? outbox_each(s, st, fn, arg) : STORE_ERR;
}

int
store_outbox_set_sending(struct store *s, int64_t id, int sending)
{
	return store_run(s, S_OUT_STATE, "tI", sending ? "sending" : "queued", id);
}

int
store_outbox_set_extra(struct store *s, int64_t id, const char *extra)
{
	return store_run(s, S_OUT_EXTRA, "tI", extra, id);
}

int
store_outbox_delete(struct store *s, int64_t id)
{
	return store_run(s, S_OUT_DEL, "I", id);
}

int
store_outbox_foreach_expired(struct store *s, int64_t before,
    int (*fn)(void *, const struct store_outmsg *), void *arg)
{
	sqlite3_stmt *st = store_bind(s, S_OUT_EXPIRED, "I", before);

	return st ? outbox_each(s, st, fn, arg) : STORE_ERR;
}

int
store_outbox_drop_sending(struct store *s, int *dropped)
{
	int rc = store_exec(s, S_OUT_DROP_SENDING);

	if (dropped)
		*dropped = rc == STORE_OK ? sqlite3_changes(s->db) : 0;
	return rc;
}

int
store_outbox_foreach_contact(struct store *s, void (*fn)(void *, int64_t),
    void *arg)
{
	sqlite3_stmt *st = store_stmt(s, S_OUT_CONTACTS);
	int64_t *ids = NULL, *tmp;
	size_t n = 0, cap = 0;
	int rc, ret = STORE_OK;

	if (st == NULL)
		return STORE_ERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((tmp = realloc(ids, cap * sizeof(*ids))) == NULL) {
				ret = STORE_ERR;
				break;
			}
			ids = tmp;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	if (ret == STORE_OK && rc != SQLITE_DONE) {
		store_err(s, "outbox read: %s", sqlite3_errmsg(s->db));
		ret = STORE_ERR;	/* the rows read so far still get fn */
	}
	sqlite3_reset(st);
	for (size_t i = 0; i < n; i++)
		fn(arg, ids[i]);
	free(ids);
	return ret;
}

int store_outbox_count(struct store *s) { return store_count_of(s, S_OUT_COUNT); }

int
store_outbox_queued_of(struct store *s, int64_t contact_id)
{
	if (store_bind(s, S_OUT_QUEUED_OF, "I", contact_id) == NULL)
		return -1;
	return store_count_of(s, S_OUT_QUEUED_OF);
}

/* ---- inbox ---- */

int
store_inbox_add(struct store *s, int64_t contact_id, const char *stanza_id,
    const char *xml, int64_t now)
{
	return store_run(s, S_IN_ADD, "kttI", contact_id, stanza_id, xml, now);
}

int
store_inbox_foreach(struct store *s, int (*fn)(void *, const struct store_inmsg *),
    void *arg)
{
	sqlite3_stmt *st = store_stmt(s, S_IN_ALL);
	struct store_inmsg m;
	int rc, stop = 0;

	if (st == NULL)
		return STORE_ERR;
	/*
	 * Unlike the outbox, rows are handed over one by one: the callback
	 * deletes the row it was given, which SQLite allows on the table a
	 * cursor reads (the deleted row is behind the cursor).
	 */
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		m.id = sqlite3_column_int64(st, 0);
		m.stanza_id = (char *)sqlite3_column_text(st, 1);
		m.xml = (char *)sqlite3_column_text(st, 2);
		if (m.stanza_id && m.xml)
			stop = fn(arg, &m);
	}
	if (!stop && rc != SQLITE_DONE) {
		store_err(s, "inbox read: %s", sqlite3_errmsg(s->db));
		sqlite3_reset(st);
		return STORE_ERR;
	}
	sqlite3_reset(st);
	return STORE_OK;
}

int
store_inbox_delete(struct store *s, int64_t id)
{
	return store_run(s, S_IN_DEL, "I", id);
}

int store_inbox_count(struct store *s) { return store_count_of(s, S_IN_COUNT); }
