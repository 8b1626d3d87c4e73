/*
 * fixture — a whole gateway for the harnesses that need one (pipe,
 * component link, chat commands): the configuration, a fresh SQLite store
 * with one user and one Barev contact, the bridge with barevlink, avatar and
 * transfer modules, and a component link — built per input, so every input
 * runs against the same state and a crasher replays alone.
 *
 * The user is alice@example.org with the Barev identity alice@200:1::1;
 * her contact is bob@200:2::2 (the transcripts' names and addresses).
 * Nothing binds those addresses: a harness hands barevlink one end of a
 * socketpair as bob's inbound connection (fz_pipe_open).  The component
 * link is up, with the fixture playing the server on 127.0.0.1 for the
 * handshake; stanzas the gateway sends go to gw->send_fn (counted and
 * serialized), and harnesses route the server's stanzas with
 * gw_route_stanza(), as the link does.
 */
#ifndef FUZZ_FIXTURE_H
#define FUZZ_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"

#define FZ_COMPONENT	"barev.example.org"
#define FZ_USER		"alice@example.org"
#define FZ_ADMIN	"admin@example.org"
#define FZ_IDENT_ADDR	"200:1::1"
#define FZ_PEER_ADDR	"200:2::2"
/* bob's JID on the component (XEP-0106 escaped) */
#define FZ_CONTACT_JID	"bob\\40200\\3a2\\3a\\3a2@" FZ_COMPONENT

struct fz {
	struct gw gw;
	int64_t ident, contact;
	int lfd, srv;		/* our "XMPP server": listener, link */
	int link_up;
	size_t sent;		/* stanzas the gateway sent (send_fn) */
};

/* once per process: config, xmlstream, discovery (idempotent) */
void fz_init(void);
/* a fresh gateway in `f`; aborts on failure (it is the harness that broke) */
void fz_open(struct fz *f);
/* run the loop until nothing is ready (timers due within `ms` included) */
void fz_settle(struct fz *f, unsigned ms);
void fz_close(struct fz *f);

/*
 * bob connects (a socketpair end handed to barevlink as an inbound
 * connection from FZ_PEER_ADDR); returns our end, non-blocking.
 */
int fz_pipe_open(struct fz *f);
/* run the loop until bob's pipe is up; 0, or -1 after 30 s (a hang) */
int fz_pipe_wait_up(struct fz *f);
/*
 * Write `data` to our end of a connection, shut our side down and run the
 * loop until the gateway has closed its side (whatever it wrote is read
 * and dropped).  Closes `fd`.
 */
void fz_feed_and_wait(struct fz *f, int fd, const void *data, size_t len);

/* route one stanza (XML text) from the server as if it came over the
 * component link, then let the loop settle */
void fz_route_xml(struct fz *f, const char *xml);
/* alice's client comes online (her available presence to a contact) */
void fz_user_online(struct fz *f);

#endif
