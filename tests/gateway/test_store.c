/*
 * The store: migrations at open, the constraints provisioning relies on,
 * the outbox's crash rule, and what survives closing and reopening.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

static int failed;

#define CHECK(cond) do { if (!(cond)) { failed++; \
	fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } } while (0)

static int
count_queued(void *arg, const struct store_outmsg *m)
{
	(void)m;
	(*(int *)arg)++;
	return 0;
}

/* issue 13: finished transfers are pruned; the counters /metrics shows */
static void
test_transfers(struct store *s)
{
	struct store_counters n0, n1;
	int64_t ident, contact, a, b, c;
	int pruned = -1;

	store_get_counters(s, &n0);
	CHECK(store_identity_add(s, "xfer@example.org", "xfer", "201:9::1", 1337, &ident) == STORE_OK);
	CHECK(store_contact_add(s, ident, "peer", "201:9::2", 1337, NULL, &contact) == STORE_OK);
	CHECK(store_transfer_add(s, contact, "in", "s1", "old.txt", 3, "offered", NULL, 100, &a) == STORE_OK);
	CHECK(store_transfer_set_state(s, a, "done", NULL, NULL, 100) == STORE_OK);
	CHECK(store_transfer_add(s, contact, "out", "s2", "open.txt", 3, "sending", NULL, 100, &b) == STORE_OK);
	CHECK(store_transfer_add(s, contact, "in", "s3", "new.txt", 3, "offered", NULL, 100, &c) == STORE_OK);
	CHECK(store_transfer_set_state(s, c, "failed", NULL, "x", 5000) == STORE_OK);
	store_get_counters(s, &n1);
	CHECK(n1.transfers_done == n0.transfers_done + 1);
	CHECK(n1.transfers_failed == n0.transfers_failed + 1);
	/* only finished rows older than the cut go; one in flight stays */
	CHECK(store_transfer_prune(s, 1000, &pruned) == STORE_OK && pruned == 1);
	CHECK(store_transfer_prune(s, 1000, &pruned) == STORE_OK && pruned == 0);
	/* a failing statement is counted (outbox row for no contact) */
	CHECK(store_outbox_add(s, 999999, "x", NULL, "a@b/c", 0, 1, 0, NULL) == STORE_ERR);
	store_get_counters(s, &n0);
	CHECK(n0.errors == n1.errors + 1);
	CHECK(store_identity_delete(s, ident) == STORE_OK);
}

/* 003: outbox.attempts is gone (written, never read) */
static void
test_no_attempts(const char *db)
{
	sqlite3 *h;
	sqlite3_stmt *st;

	CHECK(sqlite3_open(db, &h) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(h, "SELECT count(*) FROM pragma_table_info('outbox')"
	    " WHERE name = 'attempts'", -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/*
 * store_copy_from (the fuzz fixture's reset): the copy has the template's
 * rows and nothing else, the counters start over, a transaction left open
 * is rolled back, and a copy after nothing was written still holds.
 */
static void
test_copy_from(const char *dir)
{
	char tdb[128], wdb[128], err[256];
	struct store *t, *w;
	struct store_identity id;
	struct store_counters n;
	int64_t ident;

	snprintf(tdb, sizeof(tdb), "%s/template.sqlite", dir);
	snprintf(wdb, sizeof(wdb), "%s/work.sqlite", dir);
	t = store_open(tdb, err, sizeof(err));
	w = store_open(wdb, err, sizeof(err));
	CHECK(t != NULL && w != NULL);
	if (t == NULL || w == NULL)
		return;
	CHECK(store_identity_add(t, "tpl@example.org", "tpl", "201:7::1", 1337, &ident) == STORE_OK);
	CHECK(store_copy_from(w, t) == STORE_OK);
	CHECK(store_identity_get_jid(w, "tpl@example.org", &id) == STORE_OK && id.id == ident);
	/* an input adds, fails a statement and leaves a transaction open */
	CHECK(store_identity_add(w, "new@example.org", "new", "201:7::2", 1337, NULL) == STORE_OK);
	CHECK(store_outbox_add(w, 999999, "x", NULL, "a@b/c", 0, 1, 0, NULL) == STORE_ERR);
	CHECK(store_begin(w) == STORE_OK);
	CHECK(store_identity_delete(w, ident) == STORE_OK);
	CHECK(store_copy_from(w, t) == STORE_OK);
	CHECK(store_identity_get_jid(w, "new@example.org", &id) == STORE_NOTFOUND);
	CHECK(store_identity_get_jid(w, "tpl@example.org", &id) == STORE_OK);
	CHECK(store_identity_count(w) == 1);
	store_get_counters(w, &n);
	CHECK(n.errors == 0);
	/* nothing written since: the copy is skipped, the rows still right */
	CHECK(store_copy_from(w, t) == STORE_OK);
	CHECK(store_identity_count(w) == 1);
	CHECK(store_identity_add(w, "again@example.org", "again", "201:7::3", 1337, NULL) == STORE_OK);
	CHECK(store_copy_from(w, t) == STORE_OK);
	CHECK(store_identity_count(w) == 1);
	store_close(w);
	store_close(t);
}

int
main(void)
{
	char path[] = "/tmp/test_store_XXXXXX", db[64], err[256];
	struct store *s;
	struct store_identity id;
	struct store_contact c;
	int64_t ident, contact, row1, row2;
	int n = 0, dropped = -1;

	if (mkdtemp(path) == NULL)
		return 2;
	snprintf(db, sizeof(db), "%s/gw.sqlite", path);
	s = store_open(db, err, sizeof(err));
	CHECK(s != NULL);
	if (s == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	CHECK(store_user_version(s) >= 1);

	CHECK(store_identity_add(s, "alice@example.org", "Alice", "201:1::1", 1337, &ident) == STORE_OK);
	/* one identity per JID, one (nick, address) per gateway */
	CHECK(store_identity_add(s, "alice@example.org", "other", "201:1::2", 1337, NULL) == STORE_DUP);
	CHECK(store_identity_add(s, "bob@example.org", "ALICE", "201:1::1", 1337, NULL) == STORE_DUP);
	CHECK(store_identity_find(s, "alice", "201:1::1", &id) == STORE_OK && id.id == ident);
	CHECK(store_identity_get_jid(s, "nobody@example.org", &id) == STORE_NOTFOUND);

	CHECK(store_contact_add(s, ident, "bob", "201:2::2", 1337, "Bob B.", &contact) == STORE_OK);
	CHECK(store_contact_add(s, ident, "BOB", "201:2::2", 1338, NULL, NULL) == STORE_DUP);
	CHECK(store_contact_find(s, ident, "Bob", "201:2::2", &c) == STORE_OK &&
	    strcmp(c.name, "Bob B.") == 0);

	/* the outbox: a row handed to a pipe is not sent again after a crash */
	CHECK(store_outbox_add(s, contact, "one", "m1", "alice@example.org/a", 1, 100, 0, &row1) == STORE_OK);
	CHECK(store_outbox_add(s, contact, "two", NULL, "alice@example.org/a", 0, 101, 0, &row2) == STORE_OK);
	CHECK(store_outbox_set_sending(s, row1, 1) == STORE_OK);
	CHECK(store_outbox_foreach_queued(s, contact, count_queued, &n) == STORE_OK && n == 1);
	store_close(s);

	/* reopen: everything is still there; the crash rule applies */
	s = store_open(db, err, sizeof(err));
	CHECK(s != NULL);
	if (s == NULL)
		return 1;
	CHECK(store_identity_get_jid(s, "alice@example.org", &id) == STORE_OK &&
	    strcmp(id.nick, "Alice") == 0);
	CHECK(store_outbox_drop_sending(s, &dropped) == STORE_OK && dropped == 1);
	CHECK(store_outbox_count(s) == 1);

	test_transfers(s);

	/* deleting the identity takes its contacts and queues with it */
	CHECK(store_identity_delete(s, ident) == STORE_OK);
	CHECK(store_contact_get(s, contact, &c) == STORE_NOTFOUND);
	CHECK(store_outbox_count(s) == 0);
	store_close(s);
	test_no_attempts(db);
	test_copy_from(path);

	unlink(db);
	snprintf(err, sizeof(err), "rm -rf %s", path);
	if (system(err) != 0)
		fprintf(stderr, "could not remove %s\n", path);
	if (failed)
		fprintf(stderr, "%d checks failed\n", failed);
	else
		printf("test_store: all checks passed\n");
	return failed != 0;
}
