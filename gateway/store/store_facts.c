/*
 * store_facts — what the gateway remembers beside people and queues:
 * key/value facts (kv), avatars (the user's and her contacts', with the
 * bytes), and the record of file transfers (gateway/transfer*.c).
 *
 * The one idea: each is a table of its own whose rows are replaced or
 * expired whole; nothing here is on a message's path.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ---- kv ---- */

int
store_kv_set(struct store *s, const char *key, const char *value)
{
	return store_run(s, S_KV_SET, "tt", key, value);
}

int
store_kv_get(struct store *s, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *st = store_bind(s, S_KV_GET, "t", key);
	int rc, ret;

	if (st == NULL)
		return STORE_ERR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		store_copy_col(buf, len, st, 0);
		ret = STORE_OK;
	} else {
		ret = rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* ---- avatars ---- */

static void
row_avatar(sqlite3_stmt *st, struct store_avatar *o)
{
	memset(o, 0, sizeof(*o));
	store_copy_col(o->owner_kind, sizeof(o->owner_kind), st, 0);
	o->owner_id = sqlite3_column_int64(st, 1);
	store_copy_col(o->token, sizeof(o->token), st, 2);
	store_copy_col(o->sha1, sizeof(o->sha1), st, 3);
	store_copy_col(o->mime, sizeof(o->mime), st, 4);
	o->updated_at = sqlite3_column_int64(st, 5);
}

int
store_avatar_set(struct store *s, const char *kind, int64_t owner,
    const char *token, const char *sha1, const char *mime, const void *data,
    size_t len, int64_t now)
{
	sqlite3_stmt *st = store_bind(s, S_AV_SET, "tIttt", kind, owner,
	    token && *token ? token : NULL, data ? sha1 : NULL, data ? mime : NULL);

	if (st == NULL)
		return STORE_ERR;
	if (data)
		sqlite3_bind_blob64(st, 6, data, len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, now);
	return store_step_done(s, st);
}

int
store_avatar_set_token(struct store *s, const char *kind, int64_t owner,
    const char *token, int64_t now)
{
	return store_run(s, S_AV_TOKEN, "tItI", kind, owner,
	    token && *token ? token : NULL, now);
}

int
store_avatar_get(struct store *s, const char *kind, int64_t owner,
    struct store_avatar *out)
{
	sqlite3_stmt *st = store_bind(s, S_AV_GET, "tI", kind, owner);
	const void *blob;
	int rc, ret = STORE_OK;

	if (st == NULL)
		return STORE_ERR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_avatar(st, out);
		blob = sqlite3_column_blob(st, 6);
		out->len = (size_t)sqlite3_column_bytes(st, 6);
		if (blob != NULL && out->len > 0) {
			if ((out->data = malloc(out->len)) == NULL) {
				store_err(s, "avatar: out of memory");
				ret = STORE_ERR;
			} else {
				memcpy(out->data, blob, out->len);
			}
		}
		if (out->data == NULL)
			out->len = 0;
	} else if (rc == SQLITE_DONE) {
		ret = STORE_NOTFOUND;
	} else {
		store_err(s, "avatar lookup: %s", sqlite3_errmsg(s->db));
		ret = STORE_ERR;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

int
store_avatar_delete(struct store *s, const char *kind, int64_t owner)
{
	return store_run(s, S_AV_DEL, "tI", kind, owner);
}

int
store_avatar_foreach(struct store *s,
    void (*fn)(void *arg, const struct store_avatar *), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, S_AV_ALL);
	struct store_avatar a;
	int rc;

	if (st == NULL)
		return STORE_ERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_avatar(st, &a);
		fn(arg, &a);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_err(s, "avatar list: %s", sqlite3_errmsg(s->db));
		return STORE_ERR;
	}
	return STORE_OK;
}

int
store_avatar_purge_orphans(struct store *s, int *purged)
{
	int rc = store_exec(s, S_AV_ORPHANS);

	if (purged)
		*purged = rc == STORE_OK ? sqlite3_changes(s->db) : 0;
	return rc;
}

/* ---- transfers (gateway/transfer*.c) ---- */

int
store_transfer_add(struct store *s, int64_t contact_id, const char *direction,
    const char *sid, const char *name, uint64_t size, const char *state,
    const char *spool_path, int64_t now, int64_t *idp)
{
	return store_insert(s, S_XFER_ADD, idp, "ItttIttII", contact_id, direction,
	    sid, name, (int64_t)size, state, spool_path, now, now);
}

int
store_transfer_set_state(struct store *s, int64_t id, const char *state,
    const char *url, const char *error, int64_t now)
{
	sqlite3_stmt *st = store_bind(s, S_XFER_STATE, "tttII", state, url, error, now, id);
	int rc;

	if (st == NULL)
		return STORE_ERR;
	if ((rc = store_step_done(s, st)) == STORE_OK && state != NULL) {
		if (strcmp(state, "done") == 0)
			s->n.transfers_done++;
		else if (strcmp(state, "failed") == 0)
			s->n.transfers_failed++;
	}
	return rc;
}

int
store_transfer_fail_unfinished(struct store *s, const char *error, int64_t now,
    int *failed)
{
	sqlite3_stmt *st = store_bind(s, S_XFER_FAIL_OPEN, "tI", error, now);
	int rc;

	if (st == NULL)
		return STORE_ERR;
	rc = store_step_done(s, st);
	if (rc == STORE_OK) {
		s->n.transfers_failed += (unsigned long long)sqlite3_changes(s->db);
		if (failed)
			*failed = sqlite3_changes(s->db);
	}
	return rc;
}

int
store_transfer_prune(struct store *s, int64_t before, int *pruned)
{
	sqlite3_stmt *st = store_bind(s, S_XFER_PRUNE, "I", before);
	int rc;

	if (st == NULL)
		return STORE_ERR;
	rc = store_step_done(s, st);
	if (rc == STORE_OK && pruned)
		*pruned = sqlite3_changes(s->db);
	return rc;
}
