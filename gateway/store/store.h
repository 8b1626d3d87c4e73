/*
 * store — everything durable, in one SQLite file (WAL).
 *
 * Migrations (schema/NNN_name.sql, compiled in) are applied in order at
 * open and recorded in PRAGMA user_version.  Every statement is prepared
 * once and cached; every logical change is one transaction, committed
 * before the gateway acknowledges anything (DESIGN.md "Failure model").
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_NICK_MAX 64	/* bytes; Barev nicks are short handles */
#define STORE_JID_MAX 1024
#define STORE_ADDR_MAX 46	/* RFC 5952 text (INET6_ADDRSTRLEN) */
#define STORE_NAME_MAX 256

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND = 1,
	STORE_DUP = 2,		/* a UNIQUE constraint said no */
	STORE_ERR = -1,		/* logged by the store */
};

struct store_identity {
	int64_t id;
	char jid[STORE_JID_MAX];
	char nick[STORE_NICK_MAX + 1];
	char address[STORE_ADDR_MAX];
	int port;
};

struct store_contact {
	int64_t id;
	int64_t identity_id;
	char nick[STORE_NICK_MAX + 1];
	char address[STORE_ADDR_MAX];
	int port;
	char name[STORE_NAME_MAX + 1];	/* "" = none; show the nick */
	int was_gateway;	/* a barev-gateway on the last pipe that said */
};

struct store_outmsg {
	int64_t id;
	int64_t contact_id;
	char *body;
	char *xmpp_id;		/* may be NULL */
	char *from_jid;
	int want_receipt;
	int64_t created_at;
	char *extra;		/* NULL, or allow-listed children (passthru.c) */
};

struct store_inmsg {
	int64_t id;
	char *stanza_id;
	char *xml;
};

struct store;

struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *s);
int store_user_version(struct store *s);
/*
 * Tests only (the fuzz fixture): make `s` a page-for-page copy of `from`
 * (another open store with the same schema) and zero its counters and
 * error state — the whole database reset in one call, far cheaper than
 * reopening, migrating and provisioning.  A transaction left open in `s`
 * is rolled back first; when `s` wrote nothing since its last copy from
 * `from`, only the counters are reset.  STORE_OK or STORE_ERR.
 */
int store_copy_from(struct store *s, struct store *from);

/* Explicit transactions for changes that span several calls. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);	/* a no-op if SQLite already did */
/* Why the last STORE_ERR happened, in words for a user ("the gateway's
 * disk is full"); store_error_is_full() says whether space would help. */
const char *store_error_reason(const struct store *s);
int store_error_is_full(const struct store *s);

/* ---- identities ---- */
int store_identity_add(struct store *s, const char *jid, const char *nick,
    const char *addr, int port, int64_t *idp);
int store_identity_get_jid(struct store *s, const char *jid,
    struct store_identity *out);
int store_identity_get(struct store *s, int64_t id, struct store_identity *out);
/* nick compared case-insensitively, address as stored (canonical) */
int store_identity_find(struct store *s, const char *nick, const char *addr,
    struct store_identity *out);
int store_identity_set_nick(struct store *s, int64_t id, const char *nick);
int store_identity_delete(struct store *s, int64_t id);	/* cascades */
int store_identity_foreach(struct store *s,
    void (*fn)(void *arg, const struct store_identity *), void *arg);
int store_identity_count(struct store *s);

/* ---- contacts ---- */
int store_contact_add(struct store *s, int64_t identity_id, const char *nick,
    const char *addr, int port, const char *name, int64_t *idp);
int store_contact_get(struct store *s, int64_t id, struct store_contact *out);
int store_contact_find(struct store *s, int64_t identity_id, const char *nick,
    const char *addr, struct store_contact *out);
int store_contact_delete(struct store *s, int64_t id);
/* remember whether the peer said it is a barev-gateway (peercaps.c) */
int store_contact_set_gateway(struct store *s, int64_t id, int yes);
/* identity_id 0 = every contact */
int store_contact_foreach(struct store *s, int64_t identity_id,
    void (*fn)(void *arg, const struct store_contact *), void *arg);

/* ---- outbox (XMPP -> Barev) ---- */
/* a new row, 'queued', or already 'sending' (`sending`) for a message
 * handed to an open pipe at once (one write instead of two) */
int store_outbox_add(struct store *s, int64_t contact_id, const char *body,
    const char *xmpp_id, const char *from_jid, int want_receipt,
    int64_t now, int sending, int64_t *idp);
/* delete several rows in one transaction */
int store_outbox_delete_many(struct store *s, const int64_t *ids, size_t n);
/* mark many rows 'sending' (1) or 'queued' (0): one transaction, all or
 * nothing */
int store_outbox_set_sending_many(struct store *s, const int64_t *ids,
    size_t n, int sending);
/* the oldest queued rows of a contact, in order; fn returns non-zero to stop */
int store_outbox_foreach_queued(struct store *s, int64_t contact_id,
    int (*fn)(void *arg, const struct store_outmsg *), void *arg);
int store_outbox_set_sending(struct store *s, int64_t id, int sending);
int store_outbox_delete(struct store *s, int64_t id);
/* the row's pass-through children (gateway peers); NULL clears */
int store_outbox_set_extra(struct store *s, int64_t id, const char *extra);
/* rows created before `before`, any state */
int store_outbox_foreach_expired(struct store *s, int64_t before,
    int (*fn)(void *arg, const struct store_outmsg *), void *arg);
/* at start: rows left 'sending' by a crash may already be at the peer;
 * they are dropped (at-most-once) and counted */
int store_outbox_drop_sending(struct store *s, int *dropped);
/* contacts with queued rows */
int store_outbox_foreach_contact(struct store *s,
    void (*fn)(void *arg, int64_t contact_id), void *arg);
int store_outbox_count(struct store *s);
/* queued rows of one contact (the partial index counts them); -1 on error */
int store_outbox_queued_of(struct store *s, int64_t contact_id);

/* ---- inbox (Barev -> XMPP while the component link is down) ---- */
int store_inbox_add(struct store *s, int64_t contact_id, const char *stanza_id,
    const char *xml, int64_t now);
int store_inbox_foreach(struct store *s,
    int (*fn)(void *arg, const struct store_inmsg *), void *arg);
int store_inbox_delete(struct store *s, int64_t id);
int store_inbox_count(struct store *s);

/* ---- small facts ---- */
int store_kv_set(struct store *s, const char *key, const char *value);
/* copies into buf; STORE_NOTFOUND when absent */
int store_kv_get(struct store *s, const char *key, char *buf, size_t len);

/* ---- avatars (XEP-0153 images of contacts and identities) ---- */
#define STORE_AVATAR_CONTACT	"contact"
#define STORE_AVATAR_IDENTITY	"identity"
#define STORE_AVATAR_TOKEN_MAX	128	/* what a peer or client advertised */

struct store_avatar {
	char owner_kind[12];		/* STORE_AVATAR_CONTACT | _IDENTITY */
	int64_t owner_id;
	char token[STORE_AVATAR_TOKEN_MAX + 1];	/* "" = none */
	char sha1[41];			/* of data; "" = no image */
	char mime[32];
	int64_t updated_at;
	unsigned char *data;		/* store_avatar_get(): malloc'd, caller frees */
	size_t len;
};

/* upsert the whole row; data NULL = no image (sha1/mime then ignored) */
int store_avatar_set(struct store *s, const char *kind, int64_t owner,
    const char *token, const char *sha1, const char *mime, const void *data,
    size_t len, int64_t now);
/* upsert only the advertised token, keeping any image */
int store_avatar_set_token(struct store *s, const char *kind, int64_t owner,
    const char *token, int64_t now);
int store_avatar_get(struct store *s, const char *kind, int64_t owner,
    struct store_avatar *out);
int store_avatar_delete(struct store *s, const char *kind, int64_t owner);
/* every row without its image (data NULL, len 0) */
int store_avatar_foreach(struct store *s,
    void (*fn)(void *arg, const struct store_avatar *), void *arg);
/* rows whose contact/identity is gone (owner_id is no foreign key) */
int store_avatar_purge_orphans(struct store *s, int *purged);

/* ---- transfers (files both ways; gateway/transfer*.c) ---- */
/* direction "in" (Barev -> XMPP) | "out"; state is free text such as
 * offered, receiving, uploading, downloading, sending, done, failed */
int store_transfer_add(struct store *s, int64_t contact_id, const char *direction,
    const char *sid, const char *name, uint64_t size, const char *state,
    const char *spool_path, int64_t now, int64_t *idp);
/* url/error NULL = keep */
int store_transfer_set_state(struct store *s, int64_t id, const char *state,
    const char *url, const char *error, int64_t now);
/* at start: rows a crash left in flight become 'failed' with `error` */
int store_transfer_fail_unfinished(struct store *s, const char *error,
    int64_t now, int *failed);
/* finished rows (done, failed) last changed before `before` are deleted;
 * nothing reads them after the end, they only grow the file */
int store_transfer_prune(struct store *s, int64_t before, int *pruned);

/* ---- counters since store_open() (status, /metrics) ---- */
struct store_counters {
	unsigned long long errors;		/* every logged store error */
	unsigned long long transfers_done;	/* rows set to 'done' */
	unsigned long long transfers_failed;	/* rows set to 'failed' */
};
void store_get_counters(struct store *s, struct store_counters *out);
/* SQLite's own heap (page cache...), for the whole process: the store is
 * its only SQLite user */
long long store_memory_used(void);

#endif
