/*
 * component — the XEP-0114 link to the XMPP server.
 *
 * Connects (non-blocking, on the shared libevent base), opens a
 * jabber:component:accept stream, answers the stream id with
 * <handshake>hex SHA1(id + secret)</handshake>, then passes every stanza to
 * the owner and sends the owner's stanzas.  Reconnects with jittered
 * exponential backoff (1 s -> 60 s) and logs each failure once, plainly.
 * Knows nothing of Barev.
 */
#ifndef COMPONENT_H
#define COMPONENT_H

#include <stdint.h>
#include <strophe.h>

struct event_base;

struct comp_config {
	const char *jid;		/* barev.example.org */
	const char *secret;		/* never logged */
	const char *host;		/* 127.0.0.1 */
	uint16_t port;			/* 5347 */
	unsigned keepalive_s;		/* whitespace ping interval; 0 = 60 */
	unsigned backoff_min_ms;	/* 0 = 1000 */
	unsigned backoff_max_ms;	/* 0 = 60000 */
	size_t max_stanza;		/* 0 = 512 KiB (Prosody's default) */
};

enum comp_state {
	COMP_DISCONNECTED = 0,
	COMP_CONNECTING,
	COMP_HANDSHAKING,
	COMP_UP,
};

struct comp_events {
	/* the handshake succeeded: stanzas may be sent now */
	void (*up)(void *arg);
	/* the link went down, or an attempt failed (why is a log-ready
	 * phrase, already logged by us); a reconnect is already scheduled */
	void (*down)(void *arg, const char *why);
	/* one stanza from the server; borrowed (clone to keep) */
	void (*stanza)(void *arg, xmpp_stanza_t *st);
	/* optional: after comp_shutdown(), the stream is closed (flushed, or
	 * the linger ran out); the owner may end its loop now */
	void (*closed)(void *arg);
};

struct comp;

struct comp *comp_new(struct event_base *base, const struct comp_config *cfg,
    const struct comp_events *ev, void *arg);
/* start connecting (and keep reconnecting until comp_free) */
int comp_start(struct comp *c);
/* 0 when handed to the link, -1 when the link is not up (caller keeps the
 * stanza durable and retries after `up`), -2 when it serializes larger than
 * max_stanza (logged; retrying cannot help). Does not take ownership. */
int comp_send(struct comp *c, xmpp_stanza_t *st);
enum comp_state comp_state(const struct comp *c);
const char *comp_state_str(enum comp_state s);
/* seconds the link has been up (0 when down) */
long comp_uptime(const struct comp *c);
/* replace the secret (SIGHUP); takes effect on the next connect */
int comp_set_secret(struct comp *c, const char *secret);
/* send </stream:stream>, flush briefly (<= 1 s), stop reconnecting;
 * `closed` follows */
void comp_shutdown(struct comp *c);
void comp_free(struct comp *c);

#endif
