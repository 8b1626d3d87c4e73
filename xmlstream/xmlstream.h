/*
 * xmlstream — the XML stream engine both sides share (DESIGN.md "Modules").
 *
 * Two layers:
 *  - xs_parser: a libxml2 SAX2 push parser that turns a never-ending XML
 *    stream into one libstrophe xmpp_stanza_t per depth-1 element, the moment
 *    its end tag arrives.  Pure: bytes in, callbacks out, no sockets, so it is
 *    unit-testable byte by byte.
 *  - xs_conn: a libevent bufferevent feeding an xs_parser, with a header
 *    timer and a paced output queue (one stanza per write, BAREV.md §7).
 *
 * Plus a serializer whose attribute quote style is chosen by the caller
 * (Barev iqs must use single quotes, presence/messages double: BAREV.md §3-5).
 *
 * Knows neither XMPP servers nor Barev.
 */
#ifndef XMLSTREAM_H
#define XMLSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <strophe.h>

struct event_base;
struct bufferevent;
struct evbuffer;

/* Why a stream ended.  XS_END_* are orderly; XS_ERR_* are violations. */
enum xs_close {
	XS_END_STREAM = 0,	/* peer sent </stream:stream> */
	XS_END_EOF,		/* TCP EOF (with or without a stream close) */
	XS_ERR_IO,		/* socket error */
	XS_ERR_XML,		/* not well-formed, bad UTF-8, bad namespace */
	XS_ERR_TOO_BIG,		/* stanza larger than limits.max_stanza */
	XS_ERR_TOO_DEEP,	/* nesting deeper than limits.max_depth */
	XS_ERR_DTD,		/* DOCTYPE, entity declaration, undefined entity */
	XS_ERR_HEADER_TIMEOUT,	/* no stream header within limits.header_timeout_ms */
	XS_ERR_NOT_STREAM,	/* root element is not a stream header */
	XS_CLOSED_LOCAL,	/* xs_conn_close() was called */
};

const char *xs_close_str(enum xs_close why);

struct xs_limits {
	size_t max_stanza;		/* bytes of one depth-1 element; 0 = 64 KiB */
	unsigned max_depth;		/* element depth below the root; 0 = 32 */
	unsigned header_timeout_ms;	/* xs_conn only; 0 = no timer */
};

struct xs_callbacks {
	/*
	 * The stream root arrived.  `header` is an element with the root's
	 * attributes (incl. xmlns, xmlns:stream) and no children; borrowed:
	 * valid only during the call (clone it to keep it).
	 */
	void (*on_header)(void *arg, xmpp_stanza_t *header);
	/* One complete depth-1 element; borrowed as above. */
	void (*on_stanza)(void *arg, xmpp_stanza_t *stanza);
	/*
	 * The stream ended, orderly or not.  Called at most once per parser or
	 * connection.  For xs_conn the callee may (and usually does) call
	 * xs_conn_free() from inside it.
	 */
	void (*on_close)(void *arg, enum xs_close why, const char *detail);
};

/* ---- building stanzas (build.c): NULL on no memory ---- */

/* <name type from to/>, each attribute only when not NULL */
xmpp_stanza_t *xs_stanza(const char *name, const char *type,
    const char *from, const char *to);
/* a child element <name xmlns=ns/> (ns may be NULL); the parent owns it */
xmpp_stanza_t *xs_add_child(xmpp_stanza_t *parent, const char *name,
    const char *ns);
/* a child element with `text` (NULL: empty); returns the element */
xmpp_stanza_t *xs_add_text(xmpp_stanza_t *parent, const char *name,
    const char *ns, const char *text);

/* ---- process-wide setup ---- */

/* Call once before anything else; sets up libxml2 and the shared
 * dictionary, and the libstrophe context every stanza belongs to. */
int xs_init(void);
void xs_shutdown(void);
xmpp_ctx_t *xs_ctx(void);

/* ---- parser ---- */

struct xs_parser;

struct xs_parser *xs_parser_new(const struct xs_limits *lim,
    const struct xs_callbacks *cb, void *arg);
/*
 * Feed bytes.  Returns 0 while the stream is fine, -1 once on_close has been
 * called (after an error or the end of the stream); further feeds are
 * ignored and return -1.  A callback may call xs_parser_free() only if it
 * then does not touch the parser again; xs_parser_feed() notices and
 * returns -1 without touching freed memory.
 */
int xs_parser_feed(struct xs_parser *p, const char *buf, size_t len);
/* Tell the parser the transport hit EOF: calls on_close(XS_END_EOF) unless
 * the stream already ended. */
void xs_parser_eof(struct xs_parser *p);
/* Start over for a new stream on the same object (e.g. after a component
 * handshake restart).  Forgets any partial input. */
int xs_parser_reset(struct xs_parser *p);
void xs_parser_free(struct xs_parser *p);

/* ---- serializer ---- */

enum {
	XS_SER_SINGLE_QUOTES = 1 << 0,	/* attr='v' (default attr="v") */
	XS_SER_SELFCLOSE = 1 << 1,	/* childless elements as <a/> (default <a></a>) */
};

/*
 * Append the stanza to `out`.  Attribute order is stable: xmlns first, then
 * for <iq>: type, id, from, to; for other elements: to, from, type, id; then
 * the rest in byte order.  Text escapes exactly & < > and the quote in use
 * in attributes (&amp; &lt; &gt; &quot;/&apos;); raw UTF-8 otherwise.
 * Ill-formed UTF-8 and characters XML 1.0 forbids (C0 controls but tab, LF,
 * CR; U+FFFE, U+FFFF) in text and attribute values become U+FFFD, so the
 * output is well-formed whatever the stanza holds.
 * Returns 0, or -1 on allocation failure.
 */
int xs_serialize(xmpp_stanza_t *st, unsigned flags, struct evbuffer *out);
/* Same, into a malloc'd NUL-terminated string (caller frees with free()). */
char *xs_serialize_str(xmpp_stanza_t *st, unsigned flags, size_t *lenp);
/* Same, into one malloc'd block after `head` bytes the caller fills (no
 * NUL): *lenp = the text's length.  NULL on no memory. */
void *xs_serialize_block(xmpp_stanza_t *st, unsigned flags, size_t head,
    size_t *lenp);
/* Append `s` escaped for text or for an attribute quoted with `quote`
 * ('"' or '\'', 0 = text). */
int xs_escape(struct evbuffer *out, const char *s, size_t len, char quote);
/* A malloc'd copy of `s` with the same repair as above (for names that are
 * also used outside XML: files, logs); NULL on allocation failure. */
char *xs_utf8_repair(const char *s);

/* ---- connection ---- */

struct xs_conn;

/*
 * Take over `fd` (connected, non-blocking) with a new bufferevent on `base`.
 * Reading starts at once; the header timer starts at once if set.  `fd` is
 * ours even when this fails (NULL): it is closed then.
 */
struct xs_conn *xs_conn_new(struct event_base *base, int fd,
    const struct xs_limits *lim, const struct xs_callbacks *cb, void *arg);
/* Queue raw bytes (a stream header, a pre-formatted stanza). One call = one
 * unit of the paced queue. */
int xs_conn_send_raw(struct xs_conn *c, const char *buf, size_t len);
int xs_conn_send(struct xs_conn *c, xmpp_stanza_t *st, unsigned ser_flags);
/* The same with a bound: serialized once, straight into its unit.  0;
 * -1 the connection is closed or closing; -2 longer than `max` bytes (0 =
 * no bound), nothing queued; -3 no memory.  *lenp (may be NULL) = its
 * length once serialized. */
int xs_conn_send_max(struct xs_conn *c, xmpp_stanza_t *st, unsigned ser_flags,
    size_t max, size_t *lenp);
/*
 * Pacing: with pace_ms > 0 the output queue hands the kernel one unit at a
 * time, and the next only when the previous is fully written and pace_ms
 * have passed (pascal mis-frames stanzas that share a read: BAREV.md §7).
 * With 0 (default) units go out as soon as the previous one is written.
 */
void xs_conn_set_pace(struct xs_conn *c, unsigned pace_ms);
/* Bytes and units not yet handed to the kernel. */
size_t xs_conn_pending(const struct xs_conn *c);
/*
 * Optional: fn(arg) each time everything handed to the socket so far is in
 * the kernel (the output buffer ran empty); what is still queued is
 * xs_conn_pending().  Called from the event loop, never from inside a
 * send; fn may close or free the connection.
 */
void xs_conn_on_written(struct xs_conn *c, void (*fn)(void *arg));
/* Stop the header timer (the caller saw what it wanted). */
void xs_conn_header_done(struct xs_conn *c);
/* Restart parsing with a fresh stream (XEP-0114 does not need it; kept for
 * symmetry with xs_parser_reset). */
int xs_conn_reset_stream(struct xs_conn *c);
/*
 * Parse at once what the kernel holds for this connection (bounded), as if
 * the loop had read it: callbacks run from inside this call.  For an owner
 * about to give up on a peer that is still talking, so that what the peer
 * sent before that moment is not lost with the socket.  -1 if a callback
 * freed the connection.
 */
int xs_conn_read_now(struct xs_conn *c);
/*
 * Flush what is queued, send our FIN after it and wait for the peer's, all
 * bounded by `linger_ms` (0: drop the queue), then close the socket and
 * call on_close(XS_CLOSED_LOCAL) — unless on_close already ran.  What the
 * peer sends meanwhile is discarded, never parsed.  Use it after queueing
 * </stream:stream>.
 */
void xs_conn_close(struct xs_conn *c, unsigned linger_ms);
/* Close the socket now and free; never calls on_close. */
void xs_conn_free(struct xs_conn *c);
int xs_conn_fd(const struct xs_conn *c);

#endif
