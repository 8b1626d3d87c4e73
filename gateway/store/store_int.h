/*
 * store_int.h — what the files of gateway/store/ share, and only they:
 * the statement names, struct store and the one bind/step helper
 * (store.c).  The store's interface is store.h.
 */
#ifndef GW_STORE_INT_H
#define GW_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

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

/* the statement, prepared on first use and kept; NULL logged */
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);
/*
 * The one bind/step helper: statement `id` gets its parameters from the
 * arguments as `types` says, one letter per `?` in order: 'i' int,
 * 'I' int64_t, 't' text (NULL = SQL NULL), 'k' a row id (int64_t,
 * 0 = SQL NULL).  store_bind: the bound statement, NULL if it could not
 * be prepared; store_run: bound and stepped (store_step_done);
 * store_insert: store_run, and *idp (if not NULL) gets the new row's id.
 */
sqlite3_stmt *store_bind(struct store *s, enum stmt_id id, const char *types, ...);
#define store_run(s, id, ...) \
	store_done((s), store_bind((s), (id), __VA_ARGS__))
#define store_insert(s, id, idp, ...) \
	store_inserted((s), store_bind((s), (id), __VA_ARGS__), (idp))
/* st stepped (store_step_done); STORE_ERR for NULL (not prepared) */
int store_done(struct store *s, sqlite3_stmt *st);
/* store_done, and *idp (if not NULL) gets the new row's id */
int store_inserted(struct store *s, sqlite3_stmt *st, int64_t *idp);
/* step a statement that returns no rows; constraint errors are STORE_DUP */
int store_step_done(struct store *s, sqlite3_stmt *st);
int store_exec(struct store *s, enum stmt_id id);
/* a SELECT count(*) without parameters; -1 on error */
int store_count_of(struct store *s, enum stmt_id id);
/* a statement expected to return zero or one row; `row` copies it */
int store_one_row(struct store *s, sqlite3_stmt *st,
    void (*row)(sqlite3_stmt *, void *), void *out, const char *what);
void store_copy_col(char *dst, size_t len, sqlite3_stmt *st, int col);
char *store_dup_col(sqlite3_stmt *st, int col);

#endif
