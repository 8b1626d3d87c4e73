/*
 * store — SQLite persistence for identities, contacts, queues and facts.
 *
 * The one idea: a statement is named by an enum, prepared on first use and
 * kept, so every query is a prepared statement and the hot paths (outbox,
 * inbox) cost a bind, a step and a reset.  Writes outside an explicit
 * store_begin() are each their own transaction (SQLite autocommit), which
 * is exactly "one logical change, one transaction" for single-row changes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

struct schema_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct schema_migration schema_migrations[];
extern const int schema_count;

enum stmt_id {
	S_IDENT_ADD, S_IDENT_GET_JID, S_IDENT_GET, S_IDENT_FIND, S_IDENT_NICK,
	S_IDENT_DEL, S_IDENT_ALL, S_IDENT_COUNT,
	S_CONT_ADD, S_CONT_GET, S_CONT_FIND, S_CONT_DEL, S_CONT_GATEWAY,
	S_CONT_ALL, S_CONT_OF,
	S_OUT_ADD, S_OUT_QUEUED, S_OUT_STATE, S_OUT_EXTRA, S_OUT_DEL, S_OUT_EXPIRED,
	S_OUT_DROP_SENDING, S_OUT_CONTACTS, S_OUT_COUNT, S_OUT_QUEUED_OF,
	S_IN_ADD, S_IN_ALL, S_IN_DEL, S_IN_COUNT,
	S_KV_SET, S_KV_GET,
	S_AV_SET, S_AV_TOKEN, S_AV_GET, S_AV_DEL, S_AV_ALL, S_AV_ORPHANS,
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_XFER_ADD, S_XFER_STATE, S_XFER_FAIL_OPEN, S_XFER_PRUNE,
	S_MAX
};

static const char *const stmt_sql[S_MAX] = {
	[S_IDENT_ADD] = "INSERT INTO identities (jid, nick, address, port, created_at)"
	    " VALUES (?, ?, ?, ?, strftime('%s','now'))",
	[S_IDENT_GET_JID] = "SELECT id, jid, nick, address, port FROM identities WHERE jid = ?",
	[S_IDENT_GET] = "SELECT id, jid, nick, address, port FROM identities WHERE id = ?",
	[S_IDENT_FIND] = "SELECT id, jid, nick, address, port FROM identities"
	    " WHERE nick = ? COLLATE NOCASE AND address = ?",
	[S_IDENT_NICK] = "UPDATE identities SET nick = ? WHERE id = ?",
	[S_IDENT_DEL] = "DELETE FROM identities WHERE id = ?",
	[S_IDENT_ALL] = "SELECT id, jid, nick, address, port FROM identities ORDER BY id",
	[S_IDENT_COUNT] = "SELECT count(*) FROM identities",
	[S_CONT_ADD] = "INSERT INTO contacts (identity_id, nick, address, port, name, created_at)"
	    " VALUES (?, ?, ?, ?, ?, strftime('%s','now'))",
	[S_CONT_GET] = "SELECT id, identity_id, nick, address, port, name, was_gateway FROM contacts WHERE id = ?",
	[S_CONT_FIND] = "SELECT id, identity_id, nick, address, port, name, was_gateway FROM contacts"
	    " WHERE identity_id = ? AND nick = ? COLLATE NOCASE AND address = ?",
	[S_CONT_DEL] = "DELETE FROM contacts WHERE id = ?",
	[S_CONT_GATEWAY] = "UPDATE contacts SET was_gateway = ? WHERE id = ?",
	[S_CONT_ALL] = "SELECT id, identity_id, nick, address, port, name, was_gateway FROM contacts ORDER BY id",
	[S_CONT_OF] = "SELECT id, identity_id, nick, address, port, name, was_gateway FROM contacts"
	    " WHERE identity_id = ? ORDER BY id",
	[S_OUT_ADD] = "INSERT INTO outbox (contact_id, body, xmpp_id, from_jid, want_receipt, created_at,"
	    " state) VALUES (?, ?, ?, ?, ?, ?, ?)",
	[S_OUT_QUEUED] = "SELECT id, contact_id, body, xmpp_id, from_jid, want_receipt, created_at, extra"
	    " FROM outbox WHERE contact_id = ? AND state = 'queued' ORDER BY id",
	[S_OUT_STATE] = "UPDATE outbox SET state = ? WHERE id = ?",
	[S_OUT_EXTRA] = "UPDATE outbox SET extra = ? WHERE id = ?",
	[S_OUT_DEL] = "DELETE FROM outbox WHERE id = ?",
	[S_OUT_EXPIRED] = "SELECT id, contact_id, body, xmpp_id, from_jid, want_receipt, created_at, extra"
	    " FROM outbox WHERE created_at < ? ORDER BY id",
	[S_OUT_DROP_SENDING] = "DELETE FROM outbox WHERE state = 'sending'",
	[S_OUT_CONTACTS] = "SELECT DISTINCT contact_id FROM outbox WHERE state = 'queued'",
	[S_OUT_COUNT] = "SELECT count(*) FROM outbox",
	[S_OUT_QUEUED_OF] = "SELECT count(*) FROM outbox WHERE contact_id = ? AND state = 'queued'",
	[S_IN_ADD] = "INSERT INTO inbox (contact_id, stanza_id, xml, created_at) VALUES (?, ?, ?, ?)",
	[S_IN_ALL] = "SELECT id, stanza_id, xml FROM inbox ORDER BY id",
	[S_IN_DEL] = "DELETE FROM inbox WHERE id = ?",
	[S_IN_COUNT] = "SELECT count(*) FROM inbox",
	[S_KV_SET] = "INSERT INTO kv (key, value) VALUES (?, ?)"
	    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[S_KV_GET] = "SELECT value FROM kv WHERE key = ?",
	[S_AV_SET] = "INSERT INTO avatars (owner_kind, owner_id, token, sha1, mime, data, updated_at)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner_kind, owner_id) DO UPDATE SET"
	    " token = excluded.token, sha1 = excluded.sha1, mime = excluded.mime,"
	    " data = excluded.data, updated_at = excluded.updated_at",
	[S_AV_TOKEN] = "INSERT INTO avatars (owner_kind, owner_id, token, updated_at)"
	    " VALUES (?, ?, ?, ?) ON CONFLICT (owner_kind, owner_id) DO UPDATE SET"
	    " token = excluded.token, updated_at = excluded.updated_at",
	[S_AV_GET] = "SELECT owner_kind, owner_id, token, sha1, mime, updated_at, data"
	    " FROM avatars WHERE owner_kind = ? AND owner_id = ?",
	[S_AV_DEL] = "DELETE FROM avatars WHERE owner_kind = ? AND owner_id = ?",
	[S_AV_ALL] = "SELECT owner_kind, owner_id, token, sha1, mime, updated_at"
	    " FROM avatars ORDER BY owner_kind, owner_id",
	[S_AV_ORPHANS] = "DELETE FROM avatars WHERE"
	    " (owner_kind = 'contact' AND owner_id NOT IN (SELECT id FROM contacts)) OR"
	    " (owner_kind = 'identity' AND owner_id NOT IN (SELECT id FROM identities))",
	[S_XFER_ADD] = "INSERT INTO transfers (contact_id, direction, sid, name, size, state,"
	    " spool_path, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[S_XFER_STATE] = "UPDATE transfers SET state = ?, url = coalesce(?, url),"
	    " error = coalesce(?, error), updated_at = ? WHERE id = ?",
	[S_XFER_FAIL_OPEN] = "UPDATE transfers SET state = 'failed', error = ?, updated_at = ?"
	    " WHERE state NOT IN ('done', 'failed')",
	[S_XFER_PRUNE] = "DELETE FROM transfers WHERE state IN ('done', 'failed')"
	    " AND updated_at < ?",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_MAX];
	struct store_counters n;
	int last_rc;		/* primary code of the last failed step */
	int last_errno;		/* the OS error behind it, 0 if none */
	/* store_copy_from(): the source and the change count right after
	 * the last copy (nothing written since: nothing to copy) */
	const struct store *copied_from;
	sqlite3_int64 copied_changes;
};

/* every store error is logged and counted (status, /metrics) */
#define store_err(s, ...) do {					\
	(s)->n.errors++;					\
	log_error("store", __VA_ARGS__);			\
} while (0)

static sqlite3_stmt *
stmt_get(struct store *s, enum stmt_id id)
{
	if (s->stmt[id] == NULL &&
	    sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
	    &s->stmt[id], NULL) != SQLITE_OK) {
		store_err(s, "prepare failed: %s", sqlite3_errmsg(s->db));
		return NULL;
	}
	return s->stmt[id];
}

/* Text binder that treats NULL as SQL NULL. */
static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static void
copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, len, "%s", v ? (const char *)v : "");
}

static char *
dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	return v ? strdup((const char *)v) : NULL;
}

/* Step a statement that returns no rows; map constraint errors. */
static int
step_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int ext = sqlite3_extended_errcode(s->db);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return STORE_OK;
	if (rc == SQLITE_CONSTRAINT && (ext == SQLITE_CONSTRAINT_UNIQUE ||
	    ext == SQLITE_CONSTRAINT_PRIMARYKEY))
		return STORE_DUP;
	/* kept for store_error_reason(): the user is told why, not only that */
	s->last_rc = rc & 0xff;
	s->last_errno = sqlite3_system_errno(s->db);
	store_err(s, "%s: %s", sqlite3_sql(st), sqlite3_errmsg(s->db));
	return STORE_ERR;
}

static int
exec_simple(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = stmt_get(s, id);

	return st ? step_done(s, st) : STORE_ERR;
}

/*
 * The one bind/step helper: statement `id`, prepared once, gets its
 * parameters from the arguments as `types` says, one letter per `?` in
 * order: 'i' int, 'I' int64_t, 't' text (NULL = SQL NULL), 'k' a row id
 * (int64_t, 0 = SQL NULL).  NULL if the statement could not be prepared.
 */
static void
stmt_vbind(sqlite3_stmt *st, const char *types, va_list ap)
{
	int64_t k;

	for (int i = 0; types[i]; i++)
		switch (types[i]) {
		case 'i':
			sqlite3_bind_int(st, i + 1, va_arg(ap, int));
			break;
		case 'I':
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 't':
			bind_text(st, i + 1, va_arg(ap, const char *));
			break;
		case 'k':
			if ((k = va_arg(ap, int64_t)) != 0)
				sqlite3_bind_int64(st, i + 1, k);
			else
				sqlite3_bind_null(st, i + 1);
			break;
		}
}

static sqlite3_stmt *
stmt_bind(struct store *s, enum stmt_id id, const char *types, ...)
{
	sqlite3_stmt *st = stmt_get(s, id);
	va_list ap;

	if (st == NULL)
		return NULL;
	va_start(ap, types);
	stmt_vbind(st, types, ap);
	va_end(ap);
	return st;
}

/* Bind and step a statement that returns no rows (step_done). */
static int
stmt_run(struct store *s, enum stmt_id id, const char *types, ...)
{
	sqlite3_stmt *st = stmt_get(s, id);
	va_list ap;

	if (st == NULL)
		return STORE_ERR;
	va_start(ap, types);
	stmt_vbind(st, types, ap);
	va_end(ap);
	return step_done(s, st);
}

/* stmt_run for an INSERT; *idp (if not NULL) gets the new row's id. */
static int
stmt_insert(struct store *s, enum stmt_id id, int64_t *idp, const char *types, ...)
{
	sqlite3_stmt *st = stmt_get(s, id);
	va_list ap;
	int rc;

	if (st == NULL)
		return STORE_ERR;
	va_start(ap, types);
	stmt_vbind(st, types, ap);
	va_end(ap);
	if ((rc = step_done(s, st)) == STORE_OK && idp)
		*idp = sqlite3_last_insert_rowid(s->db);
	return rc;
}

static int
count_of(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = stmt_get(s, id);
	int n = -1;

	if (st == NULL)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return n;
}

static int
migrate(struct store *s, char *err, size_t errlen)
{
	int ver = store_user_version(s);
	char *msg = NULL;
	char pragma[64];

	if (ver < 0) {
		snprintf(err, errlen, "cannot read schema version");
		return -1;
	}
	if (schema_count > 0 && ver > schema_migrations[schema_count - 1].version) {
		snprintf(err, errlen, "database schema %d is newer than this build"
		    " knows (%d): refusing to run an older gateway on it", ver,
		    schema_migrations[schema_count - 1].version);
		return -1;
	}
	for (int i = 0; i < schema_count; i++) {
		const struct schema_migration *m = &schema_migrations[i];

		if (m->version <= ver)
			continue;
		/* one transaction per migration, user_version inside it */
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d;", m->version);
		if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->db, m->sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "migration %s failed: %s", m->name,
			    msg ? msg : "?");
			sqlite3_free(msg);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		log_info("store", "applied migration %s", m->name);
	}
	return 0;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store *s;
	char *msg = NULL;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "database: cannot open %s: %s", path,
		    s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/*
	 * WAL: readers (an operator's online backup, sqlite3 CLI) never block
	 * the daemon.  synchronous=FULL: a committed outbox row survives a
	 * power cut, which is what "durable before acknowledged" means.
	 */
	if (sqlite3_exec(s->db, "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
	    NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "database: %s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		goto fail;
	}
	if (migrate(s, err, errlen) == -1)
		goto fail;
	return s;
fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < S_MAX; i++)
		sqlite3_finalize(s->stmt[i]);
	sqlite3_close(s->db);
	free(s);
}

int
store_copy_from(struct store *s, struct store *from)
{
	sqlite3_backup *b;
	int rc;

	if (!sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	/* a copy re-reads the schema and re-prepares every statement:
	 * skipped when this connection wrote nothing since the last one */
	if (s->copied_from == from &&
	    sqlite3_total_changes64(s->db) == s->copied_changes)
		goto done;
	if ((b = sqlite3_backup_init(s->db, "main", from->db, "main")) == NULL) {
		store_err(s, "copy: %s", sqlite3_errmsg(s->db));
		return STORE_ERR;
	}
	rc = sqlite3_backup_step(b, -1);
	if (sqlite3_backup_finish(b) != SQLITE_OK || rc != SQLITE_DONE) {
		store_err(s, "copy: %s", sqlite3_errmsg(s->db));
		s->copied_from = NULL;
		return STORE_ERR;
	}
	s->copied_from = from;
	s->copied_changes = sqlite3_total_changes64(s->db);
done:
	memset(&s->n, 0, sizeof(s->n));
	s->last_rc = 0;
	s->last_errno = 0;
	return STORE_OK;
}

int
store_user_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int store_begin(struct store *s) { return exec_simple(s, S_BEGIN); }
int store_commit(struct store *s) { return exec_simple(s, S_COMMIT); }

void
store_rollback(struct store *s)
{
	int rc = s->last_rc, en = s->last_errno;

	/*
	 * SQLite rolls a transaction back by itself when a statement or the
	 * COMMIT fails with SQLITE_FULL, IOERR, NOMEM or BUSY: a ROLLBACK then
	 * only logs "no transaction is active", which hides the real cause.
	 */
	if (sqlite3_get_autocommit(s->db))
		return;
	(void)exec_simple(s, S_ROLLBACK);
	s->last_rc = rc;	/* the reason is the failure, not its cleanup */
	s->last_errno = en;
}

const char *
store_error_reason(const struct store *s)
{
	if (s->last_rc == SQLITE_FULL || s->last_errno == ENOSPC ||
	    s->last_errno == EDQUOT)
		return "the gateway's disk is full";
	switch (s->last_rc) {
	case SQLITE_IOERR:
		return "the gateway's disk reported an error";
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return "the gateway cannot write its database";
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return "the gateway's database is busy";
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return "the gateway's database is damaged";
	case SQLITE_NOMEM:
		return "the gateway is out of memory";
	default:
		return "the gateway's database failed";
	}
}

int
store_error_is_full(const struct store *s)
{
	return s->last_rc == SQLITE_FULL || s->last_errno == ENOSPC ||
	    s->last_errno == EDQUOT;
}

/* ---- identities ---- */

static void
row_identity(sqlite3_stmt *st, struct store_identity *o)
{
	o->id = sqlite3_column_int64(st, 0);
	copy_col(o->jid, sizeof(o->jid), st, 1);
	copy_col(o->nick, sizeof(o->nick), st, 2);
	copy_col(o->address, sizeof(o->address), st, 3);
	o->port = sqlite3_column_int(st, 4);
}

/* Run a statement expected to return zero or one row; `row` copies it. */
static int
one_row(struct store *s, sqlite3_stmt *st, void (*row)(sqlite3_stmt *, void *),
    void *out, const char *what)
{
	int rc = sqlite3_step(st), ret;

	if (rc == SQLITE_ROW) {
		if (out)
			row(st, out);
		ret = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		ret = STORE_NOTFOUND;
	} else {
		store_err(s, "%s lookup: %s", what, sqlite3_errmsg(s->db));
		ret = STORE_ERR;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

static void
row_identity_cb(sqlite3_stmt *st, void *out)
{
	row_identity(st, out);
}

static int
one_identity(struct store *s, sqlite3_stmt *st, struct store_identity *out)
{
	return one_row(s, st, row_identity_cb, out, "identity");
}

int
store_identity_add(struct store *s, const char *jid, const char *nick,
    const char *addr, int port, int64_t *idp)
{
	return stmt_insert(s, S_IDENT_ADD, idp, "ttti", jid, nick, addr, port);
}

int
store_identity_get_jid(struct store *s, const char *jid, struct store_identity *out)
{
	sqlite3_stmt *st = stmt_bind(s, S_IDENT_GET_JID, "t", jid);

	return st ? one_identity(s, st, out) : STORE_ERR;
}

int
store_identity_get(struct store *s, int64_t id, struct store_identity *out)
{
	sqlite3_stmt *st = stmt_bind(s, S_IDENT_GET, "I", id);

	return st ? one_identity(s, st, out) : STORE_ERR;
}

int
store_identity_find(struct store *s, const char *nick, const char *addr,
    struct store_identity *out)
{
	sqlite3_stmt *st = stmt_bind(s, S_IDENT_FIND, "tt", nick, addr);

	return st ? one_identity(s, st, out) : STORE_ERR;
}

int
store_identity_set_nick(struct store *s, int64_t id, const char *nick)
{
	return stmt_run(s, S_IDENT_NICK, "tI", nick, id);
}

int
store_identity_delete(struct store *s, int64_t id)
{
	return stmt_run(s, S_IDENT_DEL, "I", id);
}

int
store_identity_foreach(struct store *s,
    void (*fn)(void *, const struct store_identity *), void *arg)
{
	sqlite3_stmt *st = stmt_get(s, S_IDENT_ALL);
	struct store_identity row;
	int rc;

	if (st == NULL)
		return STORE_ERR;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_identity(st, &row);
		fn(arg, &row);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERR;
}

int store_identity_count(struct store *s) { return count_of(s, S_IDENT_COUNT); }

/* ---- contacts ---- */

static void
row_contact(sqlite3_stmt *st, struct store_contact *o)
{
	o->id = sqlite3_column_int64(st, 0);
	o->identity_id = sqlite3_column_int64(st, 1);
	copy_col(o->nick, sizeof(o->nick), st, 2);
	copy_col(o->address, sizeof(o->address), st, 3);
	o->port = sqlite3_column_int(st, 4);
	copy_col(o->name, sizeof(o->name), st, 5);
	o->was_gateway = sqlite3_column_int(st, 6) != 0;
}

static void
row_contact_cb(sqlite3_stmt *st, void *out)
{
	row_contact(st, out);
}

static int
one_contact(struct store *s, sqlite3_stmt *st, struct store_contact *out)
{
	return one_row(s, st, row_contact_cb, out, "contact");
}

int
store_contact_add(struct store *s, int64_t identity_id, const char *nick,
    const char *addr, int port, const char *name, int64_t *idp)
{
	return stmt_insert(s, S_CONT_ADD, idp, "Ittit", identity_id, nick, addr,
	    port, name && *name ? name : NULL);
}

int
store_contact_get(struct store *s, int64_t id, struct store_contact *out)
{
	sqlite3_stmt *st = stmt_bind(s, S_CONT_GET, "I", id);

	return st ? one_contact(s, st, out) : STORE_ERR;
}

int
store_contact_find(struct store *s, int64_t identity_id, const char *nick,
    const char *addr, struct store_contact *out)
{
	sqlite3_stmt *st = stmt_bind(s, S_CONT_FIND, "Itt", identity_id, nick, addr);

	return st ? one_contact(s, st, out) : STORE_ERR;
}

int
store_contact_delete(struct store *s, int64_t id)
{
	return stmt_run(s, S_CONT_DEL, "I", id);
}

int
store_contact_set_gateway(struct store *s, int64_t id, int yes)
{
	return stmt_run(s, S_CONT_GATEWAY, "iI", yes != 0, id);
}

int
store_contact_foreach(struct store *s, int64_t identity_id,
    void (*fn)(void *, const struct store_contact *), void *arg)
{
	sqlite3_stmt *st = stmt_get(s, identity_id ? S_CONT_OF : S_CONT_ALL);
	struct store_contact row;
	int rc;

	if (st == NULL)
		return STORE_ERR;
	if (identity_id)
		sqlite3_bind_int64(st, 1, identity_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_contact(st, &row);
		fn(arg, &row);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERR;
}

/* ---- outbox ---- */

int
store_outbox_add(struct store *s, int64_t contact_id, const char *body,
    const char *xmpp_id, const char *from_jid, int want_receipt, int64_t now,
    int sending, int64_t *idp)
{
	return stmt_insert(s, S_OUT_ADD, idp, "ItttiIt", contact_id, body, xmpp_id,
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
		rows[n].body = dup_col(st, 2);
		rows[n].xmpp_id = dup_col(st, 3);
		rows[n].from_jid = dup_col(st, 4);
		rows[n].want_receipt = sqlite3_column_int(st, 5);
		rows[n].created_at = sqlite3_column_int64(st, 6);
		rows[n].extra = dup_col(st, 7);
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
	sqlite3_stmt *st = stmt_bind(s, S_OUT_QUEUED, "I", contact_id);

	return st ? outbox_each(s, st, fn, arg) : STORE_ERR;
}

int
store_outbox_set_sending(struct store *s, int64_t id, int sending)
{
	return stmt_run(s, S_OUT_STATE, "tI", sending ? "sending" : "queued", id);
}

int
store_outbox_set_extra(struct store *s, int64_t id, const char *extra)
{
	return stmt_run(s, S_OUT_EXTRA, "tI", extra, id);
}

int
store_outbox_delete(struct store *s, int64_t id)
{
	return stmt_run(s, S_OUT_DEL, "I", id);
}

int
store_outbox_foreach_expired(struct store *s, int64_t before,
    int (*fn)(void *, const struct store_outmsg *), void *arg)
{
	sqlite3_stmt *st = stmt_bind(s, S_OUT_EXPIRED, "I", before);

	return st ? outbox_each(s, st, fn, arg) : STORE_ERR;
}

int
store_outbox_drop_sending(struct store *s, int *dropped)
{
	int rc = exec_simple(s, S_OUT_DROP_SENDING);

	if (dropped)
		*dropped = rc == STORE_OK ? sqlite3_changes(s->db) : 0;
	return rc;
}

int
store_outbox_foreach_contact(struct store *s, void (*fn)(void *, int64_t),
    void *arg)
{
	sqlite3_stmt *st = stmt_get(s, S_OUT_CONTACTS);
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

int store_outbox_count(struct store *s) { return count_of(s, S_OUT_COUNT); }

int
store_outbox_queued_of(struct store *s, int64_t contact_id)
{
	if (stmt_bind(s, S_OUT_QUEUED_OF, "I", contact_id) == NULL)
		return -1;
	return count_of(s, S_OUT_QUEUED_OF);
}

/* ---- inbox ---- */

int
store_inbox_add(struct store *s, int64_t contact_id, const char *stanza_id,
    const char *xml, int64_t now)
{
	return stmt_run(s, S_IN_ADD, "kttI", contact_id, stanza_id, xml, now);
}

int
store_inbox_foreach(struct store *s, int (*fn)(void *, const struct store_inmsg *),
    void *arg)
{
	sqlite3_stmt *st = stmt_get(s, S_IN_ALL);
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
	return stmt_run(s, S_IN_DEL, "I", id);
}

int store_inbox_count(struct store *s) { return count_of(s, S_IN_COUNT); }

/* ---- kv ---- */

int
store_kv_set(struct store *s, const char *key, const char *value)
{
	return stmt_run(s, S_KV_SET, "tt", key, value);
}

int
store_kv_get(struct store *s, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *st = stmt_bind(s, S_KV_GET, "t", key);
	int rc, ret;

	if (st == NULL)
		return STORE_ERR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		copy_col(buf, len, st, 0);
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
	copy_col(o->owner_kind, sizeof(o->owner_kind), st, 0);
	o->owner_id = sqlite3_column_int64(st, 1);
	copy_col(o->token, sizeof(o->token), st, 2);
	copy_col(o->sha1, sizeof(o->sha1), st, 3);
	copy_col(o->mime, sizeof(o->mime), st, 4);
	o->updated_at = sqlite3_column_int64(st, 5);
}

int
store_avatar_set(struct store *s, const char *kind, int64_t owner,
    const char *token, const char *sha1, const char *mime, const void *data,
    size_t len, int64_t now)
{
	sqlite3_stmt *st = stmt_bind(s, S_AV_SET, "tIttt", kind, owner,
	    token && *token ? token : NULL, data ? sha1 : NULL, data ? mime : NULL);

	if (st == NULL)
		return STORE_ERR;
	if (data)
		sqlite3_bind_blob64(st, 6, data, len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, now);
	return step_done(s, st);
}

int
store_avatar_set_token(struct store *s, const char *kind, int64_t owner,
    const char *token, int64_t now)
{
	return stmt_run(s, S_AV_TOKEN, "tItI", kind, owner,
	    token && *token ? token : NULL, now);
}

int
store_avatar_get(struct store *s, const char *kind, int64_t owner,
    struct store_avatar *out)
{
	sqlite3_stmt *st = stmt_bind(s, S_AV_GET, "tI", kind, owner);
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
	return stmt_run(s, S_AV_DEL, "tI", kind, owner);
}

int
store_avatar_foreach(struct store *s,
    void (*fn)(void *arg, const struct store_avatar *), void *arg)
{
	sqlite3_stmt *st = stmt_get(s, S_AV_ALL);
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
	int rc = exec_simple(s, S_AV_ORPHANS);

	if (purged)
		*purged = rc == STORE_OK ? sqlite3_changes(s->db) : 0;
	return rc;
}

/* ---- transfers (gateway/transfer.c) ---- */

int
store_transfer_add(struct store *s, int64_t contact_id, const char *direction,
    const char *sid, const char *name, uint64_t size, const char *state,
    const char *spool_path, int64_t now, int64_t *idp)
{
	return stmt_insert(s, S_XFER_ADD, idp, "ItttIttII", contact_id, direction,
	    sid, name, (int64_t)size, state, spool_path, now, now);
}

int
store_transfer_set_state(struct store *s, int64_t id, const char *state,
    const char *url, const char *error, int64_t now)
{
	sqlite3_stmt *st = stmt_bind(s, S_XFER_STATE, "tttII", state, url, error, now, id);
	int rc;

	if (st == NULL)
		return STORE_ERR;
	if ((rc = step_done(s, st)) == STORE_OK && state != NULL) {
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
	sqlite3_stmt *st = stmt_bind(s, S_XFER_FAIL_OPEN, "tI", error, now);
	int rc;

	if (st == NULL)
		return STORE_ERR;
	rc = step_done(s, st);
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
	sqlite3_stmt *st = stmt_bind(s, S_XFER_PRUNE, "I", before);
	int rc;

	if (st == NULL)
		return STORE_ERR;
	rc = step_done(s, st);
	if (rc == STORE_OK && pruned)
		*pruned = sqlite3_changes(s->db);
	return rc;
}

long long
store_memory_used(void)
{
	return (long long)sqlite3_memory_used();
}

void
store_get_counters(struct store *s, struct store_counters *out)
{
	*out = s->n;
}
