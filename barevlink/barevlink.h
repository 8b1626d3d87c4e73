/*
 * barevlink — the Barev side: every provisioned local user is a Barev peer.
 *
 * Owns the listeners (one per distinct address+port), dials (source-bound to
 * the identity's address), the allowlist check before a byte is read, the
 * header exchange and peer identification, the one-pipe-per-pair rule,
 * keepalive pings and redial backoff.  BAREV.md is the contract.
 *
 * Knows nothing of XMPP servers or SQLite: the gateway core tells it which
 * identities and contacts exist (by the store's integer ids) and gets events
 * back.  Addresses cross this interface as RFC 5952 text.
 */
#ifndef BAREVLINK_H
#define BAREVLINK_H

#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

struct event_base;

struct bl_config {
	/* every value 0 = the default in brackets */
	unsigned header_timeout_ms;	/* [15000] no header from the peer -> close */
	unsigned silent_initiator_ms;	/* [2000] inbound silent this long -> we send our header first */
	unsigned ping_idle_ms;		/* [60000] silence before we ping */
	unsigned ping_timeout_ms;	/* [10000] */
	unsigned ping_misses;		/* [3] missed pings -> pipe closed */
	unsigned dial_timeout_ms;	/* [15000] connect() + header */
	unsigned backoff_min_ms;	/* [1000] redial backoff, jittered, doubling */
	unsigned backoff_max_ms;	/* [300000] */
	unsigned pace_ms;		/* [20] gap between stanzas to one pipe */
	size_t max_stanza;		/* [262144] */
	unsigned max_depth;		/* [16] */
	unsigned max_dials;		/* [64] outgoing dials in flight at once */
	unsigned dial_jitter_ms;	/* [250] first dials spread over [0, this] */
};

/* Presence of one identity as Barev peers see it (BAREV.md §3). */
struct bl_presence {
	int available;			/* 0 -> <presence type="unavailable"> + close */
	const char *show;		/* NULL, "away", "dnd" (xa -> away is the caller's job or ours: we map xa->away, chat->NULL) */
	const char *status;		/* NULL or text */
	const char *photo;		/* NULL/"" or hex SHA1 */
};

enum bl_pipe_state { BL_PIPE_NONE = 0, BL_PIPE_DIALING, BL_PIPE_HANDSHAKE, BL_PIPE_UP };

struct bl_events {
	/* a pipe to (identity, contact) is up: headers exchanged, our presence sent */
	void (*pipe_up)(void *arg, int64_t ident, int64_t contact);
	/* it is gone; `why` is a log-ready phrase */
	void (*pipe_down)(void *arg, int64_t ident, int64_t contact, const char *why);
	/*
	 * A stanza from the peer that barevlink did not handle itself (pings
	 * and ping results are handled inside).  Borrowed: clone to keep.
	 * Presence, message, iq (vCard, SI, bytestreams, unknown) come here.
	 */
	void (*stanza)(void *arg, int64_t ident, int64_t contact, xmpp_stanza_t *st);
	/* a unit queued with bl_send_* and a non-zero token was fully handed to
	 * the kernel (tokens of units lost with a dying pipe never come) */
	void (*sent)(void *arg, int64_t ident, int64_t contact, uint64_t token);
	/* a bl_ping() came back (ok=1) or timed out / pipe died (ok=0) */
	void (*ping_done)(void *arg, int64_t ident, int64_t contact, uint64_t cookie, int ok);
	/* a listener was bound (ok=1) or failed to bind (ok=0, err says why) */
	void (*listener)(void *arg, const char *addr, uint16_t port, int ok, const char *err);
	/*
	 * May `local` (an identity's address) and `remote` talk at all?  Asked
	 * before every dial, and for every connection from an allowlisted
	 * source before a byte is read; 0 refuses: the dial is not made (nor
	 * retried until the next bl_contact_want()), the connection is
	 * closed.  NULL allows everything.  The policy (e.g. "Yggdrasil only")
	 * is the caller's: barevlink itself only knows its allowlist.
	 */
	int (*permit)(void *arg, const char *local, const char *remote);
	/*
	 * Just before pipe_down, when the link was cut: the pipe died without
	 * our goodbye (keepalive, a reset, an EOF or a stream error out of the
	 * blue), or by a socket error while draining.  Units the kernel took
	 * (`sent`) may never have reached the peer; the connection is reset,
	 * not closed, so none of them can still arrive later.  Not called for
	 * our own orderly close nor for a drain that ends otherwise (the peer
	 * closed after our </stream:stream>, or did not in time): those close
	 * normally, and what the kernel holds may still reach the peer.
	 */
	void (*pipe_cut)(void *arg, int64_t ident, int64_t contact);
};

struct bl;

struct bl *bl_new(struct event_base *base, const struct bl_config *cfg,
    const struct bl_events *ev, void *arg);
void bl_free(struct bl *bl);	/* closes everything, no events */

/* Close every pipe orderly (unavailable + </stream:stream>), stop dialling. */
void bl_shutdown(struct bl *bl);

/* --- identities (local users' Barev selves) --- */

/* addr: any IPv6 text form; port 0 = 1337.  Starts (or shares) a listener. */
int bl_identity_add(struct bl *bl, int64_t ident, const char *nick,
    const char *addr, uint16_t port);
int bl_identity_set_nick(struct bl *bl, int64_t ident, const char *nick);
/* closes its pipes, releases its listener when no identity uses it */
int bl_identity_remove(struct bl *bl, int64_t ident);
/* stores the presence; sends it on every up pipe (and closes them when
 * unavailable); new pipes get it at once after the header */
int bl_identity_set_presence(struct bl *bl, int64_t ident,
    const struct bl_presence *p);

/* --- contacts (the allowlist) --- */

/* nick + addr (+ port, 0 = 1337) of a Barev peer allowed to talk to `ident` */
int bl_contact_add(struct bl *bl, int64_t ident, int64_t contact,
    const char *nick, const char *addr, uint16_t port);
int bl_contact_remove(struct bl *bl, int64_t contact);	/* closes its pipe */
/*
 * Keep a pipe to the contact (dial now if none, redial with backoff when it
 * drops) while `want` is set; with 0 we only accept.  Idempotent.
 */
int bl_contact_want(struct bl *bl, int64_t contact, int want);
enum bl_pipe_state bl_contact_state(struct bl *bl, int64_t contact);

/* what barevlink is doing about one contact (status, tests) */
struct bl_contact_info {
	enum bl_pipe_state state;
	int want;
	int redial_pending;	/* a (re)dial timer is armed */
	int dial_waiting;	/* ready, waiting for a free dial slot */
	unsigned backoff_ms;	/* bound of the next redial; 0 = none yet */
};
int bl_contact_info(struct bl *bl, int64_t contact, struct bl_contact_info *out);

/* --- output (all fail with -1 when the pipe is not up) --- */

/* <message to from type="chat"><body>TEXT</body></message> */
int bl_send_message(struct bl *bl, int64_t contact, const char *body,
    uint64_t token);
/* body-less chat-state message(s); "paused" sends <paused/> then <active/> */
int bl_send_chatstate(struct bl *bl, int64_t contact, const char *state,
    uint64_t token);
/* any other stanza; barevlink sets from/to, iqs go out single-quoted */
int bl_send_stanza(struct bl *bl, int64_t contact, xmpp_stanza_t *st,
    uint64_t token);
/* urn:xmpp:ping; result comes as ping_done(cookie) */
int bl_ping(struct bl *bl, int64_t contact, uint64_t cookie);

/* --- status --- */

struct bl_stats {
	unsigned listeners, listeners_failed;
	unsigned pipes_up, pipes_handshake, dials_in_flight;
	unsigned dials_waiting;		/* ready, held back by max_dials */
	unsigned dials_max;		/* the cap in force */
	unsigned dials_peak;		/* most in flight at once, since bl_new() */
	unsigned contacts_wanted;	/* contacts we keep a pipe to */
	unsigned long long dials_started;	/* since bl_new() */
	unsigned long long rejected_unknown;	/* accepts closed before a read */
	unsigned long long rejected_policy;	/* allowlisted, but permit() said no */
	unsigned long long accepted;	/* accepts handed to a pipe (read) */
};
void bl_get_stats(struct bl *bl, struct bl_stats *st);
/* calls fn once per listener */
void bl_foreach_listener(struct bl *bl,
    void (*fn)(void *arg, const char *addr, uint16_t port, int ok, const char *err),
    void *arg);

/* --- helpers shared with the gateway --- */

/* canonical RFC 5952 text of any IPv6 text form; 0, or -1 if not IPv6 */
int bl_addr_canon(const char *in, char *out, size_t outlen);

#endif
