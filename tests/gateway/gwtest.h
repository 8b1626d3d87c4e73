/*
 * gwtest — small helpers the gateway unit tests share (linked into every
 * tests/gateway/test_*.c program), so a fix to one reaches all of them.
 */
#ifndef GWTEST_H
#define GWTEST_H

#include "gw.h"

/* The component JID every gwt_world_start() gateway has. */
#define GWT_JID "barev.example.org"

/* A TCP port on ::1 that nothing listens on right now (bound, read back,
 * closed); exits with 2 if the system cannot give one. */
int gwt_free_port(void);

/* Both strings present and equal (NULL never equals anything). */
int gwt_streq(const char *a, const char *b);

/*
 * The gateway as the unit tests run it, without a server: dir/gw.conf
 * written (component GWT_JID, database `db`, admin admin@example.org, Barev
 * on ::1 at a free port, refuse_outside_yggdrasil = false, then the lines
 * of `extra`, may be NULL) and loaded, the store opened, the bridge
 * started, every stanza out handed to `send_fn`, and a component that is
 * never connected.  0, or -1 with the reason on stderr.
 */
int gwt_world_start(struct gw *gw, const char *dir, const char *db,
    const char *extra, int (*send_fn)(struct gw *, xmpp_stanza_t *));

/* Everything gwt_world_start() set up, shut down and freed. */
void gwt_world_stop(struct gw *gw);

/* `xml` parsed and routed as if the server had sent it; exits 2 when it
 * does not parse (a broken test, not a finding) */
void gwt_deliver(struct gw *gw, const char *xml);

/*
 * What the gateway sent: gwt_capture() as the world's send_fn keeps a
 * copy of every stanza (the first GWT_SENT_MAX) in gwt_sent[].
 */
#define GWT_SENT_MAX 1024
extern xmpp_stanza_t *gwt_sent[GWT_SENT_MAX];
extern int gwt_nsent;
int gwt_capture(struct gw *gw, xmpp_stanza_t *st);
/* forget (and free) what was captured */
void gwt_forget_sent(void);
/* the first stanza captured since gwt_forget_sent() with this name, type,
 * from and to (NULL = any; type "" = no type), or NULL */
xmpp_stanza_t *gwt_find_sent(const char *name, const char *type,
    const char *from, const char *to);

#endif
