/*
 * store_people — the rows that say who is who: identities (a user's Barev
 * face: JID, nick, address) and the contacts each of them has.
 *
 * The one idea: a row is copied into a fixed-size struct before the
 * statement is reset, so callers never hold SQLite memory.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ---- identities ---- */

static void
row_identity(sqlite3_stmt *st, struct store_identity *o)
{
	o->id = sqlite3_column_int64(st, 0);
	store_copy_col(o->jid, sizeof(o->jid), st, 1);
	store_copy_col(o->nick, sizeof(o->nick), st, 2);
	store_copy_col(o->address, sizeof(o->address), st, 3);
	o->port = sqlite3_column_int(st, 4);
}

static void
row_identity_cb(sqlite3_stmt *st, void *out)
{
	row_identity(st, out);
}

static int
one_identity(struct store *s, sqlite3_stmt *st, struct store_identity *out)
{
	return store_one_row(s, st, row_identity_cb, out, "identity");
}

int
store_identity_add(struct store *s, const char *jid, const char *nick,
    const char *addr, int port, int64_t *idp)
{
	return store_insert(s, S_IDENT_ADD, idp, "ttti", jid, nick, addr, port);
}

int
store_identity_get_jid(struct store *s, const char *jid, struct store_identity *out)
{
	sqlite3_stmt *st = store_bind(s, S_IDENT_GET_JID, "t", jid);

	return st ? one_identity(s, st, out) : STORE_ERR;
}

int
store_identity_get(struct store *s, int64_t id, struct store_identity *out)
{
	sqlite3_stmt *st = store_bind(s, S_IDENT_GET, "I", id);

	return st ? one_identity(s, st, out) : STORE_ERR;
}

int
store_identity_find(struct store *s, const char *nick, const char *addr,
    struct store_identity *out)
{
	sqlite3_stmt *st = store_bind(s, S_IDENT_FIND, "tt", nick, addr);

	return st ? one_identity(s, st, out) : STORE_ERR;
}

int
store_identity_set_nick(struct store *s, int64_t id, const char *nick)
{
	return store_run(s, S_IDENT_NICK, "tI", nick, id);
}

int
store_identity_delete(struct store *s, int64_t id)
{
	return store_run(s, S_IDENT_DEL, "I", id);
}

int
store_identity_foreach(struct store *s,
    void (*fn)(void *, const struct store_identity *), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, S_IDENT_ALL);
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

int store_identity_count(struct store *s) { return store_count_of(s, S_IDENT_COUNT); }

/* ---- contacts ---- */

static void
row_contact(sqlite3_stmt *st, struct store_contact *o)
{
	o->id = sqlite3_column_int64(st, 0);
	o->identity_id = sqlite3_column_int64(st, 1);
	store_copy_col(o->nick, sizeof(o->nick), st, 2);
	store_copy_col(o->address, sizeof(o->address), st, 3);
	o->port = sqlite3_column_int(st, 4);
	store_copy_col(o->name, sizeof(o->name), st, 5);
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
	return store_one_row(s, st, row_contact_cb, out, "contact");
}

int
store_contact_add(struct store *s, int64_t identity_id, const char *nick,
    const char *addr, int port, const char *name, int64_t *idp)
{
	return store_insert(s, S_CONT_ADD, idp, "Ittit", identity_id, nick, addr,
	    port, name && *name ? name : NULL);
}

int
store_contact_get(struct store *s, int64_t id, struct store_contact *out)
{
	sqlite3_stmt *st = store_bind(s, S_CONT_GET, "I", id);

	return st ? one_contact(s, st, out) : STORE_ERR;
}

int
store_contact_find(struct store *s, int64_t identity_id, const char *nick,
    const char *addr, struct store_contact *out)
{
	sqlite3_stmt *st = store_bind(s, S_CONT_FIND, "Itt", identity_id, nick, addr);

	return st ? one_contact(s, st, out) : STORE_ERR;
}

int
store_contact_delete(struct store *s, int64_t id)
{
	return store_run(s, S_CONT_DEL, "I", id);
}

int
store_contact_set_gateway(struct store *s, int64_t id, int yes)
{
	return store_run(s, S_CONT_GATEWAY, "iI", yes != 0, id);
}

int
store_contact_foreach(struct store *s, int64_t identity_id,
    void (*fn)(void *, const struct store_contact *), void *arg)
{
	sqlite3_stmt *st = store_stmt(s, identity_id ? S_CONT_OF : S_CONT_ALL);
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
