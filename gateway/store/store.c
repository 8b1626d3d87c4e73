/*
 * store — SQLite persistence for identities, contacts, queues and facts:
 * the connection (open, migrations, copy, transactions, error reasons)
 * and the statements.  The tables' functions are store_people.c,
 * store_queue.c and store_facts.c; store_int.h is what they share.
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
#include "store_int.h"

struct schema_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct schema_migration schema_migrations[];
extern const int schema_count;

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

sqlite3_stmt *
store_stmt(struct store *s, enum stmt_id id)
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

void
store_copy_col(char *dst, size_t len, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, len, "%s", v ? (const char *)v : "");
}

char *
store_dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	return v ? strdup((const char *)v) : NULL;
}

/* Step a statement that returns no rows; map constraint errors. */
int
store_step_done(struct store *s, sqlite3_stmt *st)
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

int
store_exec(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = store_stmt(s, id);

	return st ? store_step_done(s, st) : STORE_ERR;
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

sqlite3_stmt *
store_bind(struct store *s, enum stmt_id id, const char *types, ...)
{
	sqlite3_stmt *st = store_stmt(s, id);
	va_list ap;

	if (st == NULL)
		return NULL;
	va_start(ap, types);
	stmt_vbind(st, types, ap);
	va_end(ap);
	return st;
}

int
store_done(struct store *s, sqlite3_stmt *st)
{
	return st ? store_step_done(s, st) : STORE_ERR;
}

int
store_inserted(struct store *s, sqlite3_stmt *st, int64_t *idp)
{
	int rc = store_done(s, st);

	if (rc == STORE_OK && idp)
		*idp = sqlite3_last_insert_rowid(s->db);
	return rc;
}

int
store_count_of(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = store_stmt(s, id);
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

int store_begin(struct store *s) { return store_exec(s, S_BEGIN); }
int store_commit(struct store *s) { return store_exec(s, S_COMMIT); }

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
	(void)store_exec(s, S_ROLLBACK);
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

/* Run a statement expected to return zero or one row; `row` copies it. */
int
store_one_row(struct store *s, sqlite3_stmt *st, void (*row)(sqlite3_stmt *, void *),
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
