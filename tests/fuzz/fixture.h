/*
 * fixture — a whole gateway for the harnesses that need one (pipe,
 * component link, chat commands, upload slots): the configuration, a
 * SQLite store with one user and one Barev contact, the bridge with
 * barevlink, avatar and transfer modules, and a component link.
 *
 * Every input runs against the same state, so a crasher replays alone:
 * what is expensive and holds no state an input can change is built once
 * per process (configuration, event base, the component link and its
 * fake server, the store's connection), and everything an input can
 * change is made fresh for it — the database is copied back from a
 * pristine template (store_copy_from), the bridge and its modules
 * (barevlink, avatars, transfers, relay) are started for the input and
 * freed after it, and open command sessions are expired.  fz_close()
 * checks that the bridge left no event behind on the shared base.
 *
 * The user is alice@example.org with the Barev identity alice@200:1::1;
 * her contact is bob@200:2::2 (the transcripts' names and addresses).
 * Nothing binds those addresses: a harness hands barevlink one end of a
 * socketpair as bob's inbound connection (fz_pipe_open).  The component
 * link is up, with the fixture playing the server on 127.0.0.1 for the
 * handshake; stanzas the gateway sends go to gw->send_fn (counted,
 * serialized and shown to the harness's on_send), and harnesses route
 * the server's stanzas with gw_route_stanza(), as the link does.
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
	int base_events;	/* events on the base with no bridge */
	size_t sent;		/* stanzas the gateway sent (send_fn) */
	/* per input, cleared by fz_open(); the harness may set them */
	void (*on_send)(struct fz *, xmpp_stanza_t *);	/* each one sent */
	void (*on_stanza)(struct fz *, xmpp_stanza_t *); /* fz_server_stream */
	void *arg;
};

/* once per process: config, xmlstream, discovery (idempotent) */
void fz_init(void);
/* the gateway, fresh for this input; aborts on failure (it is the harness
 * that broke) */
struct fz *fz_open(void);
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

/*
 * The server's stream as the component link reads it: its header, then
 * `pre`, `data` and `post` (either may be NULL) parsed by xmlstream; each
 * stanza goes to f->on_stanza (if set) and then gw_route_stanza(), and the
 * loop settles after each.
 */
void fz_server_stream(struct fz *f, const char *pre, const void *data,
    size_t len, const char *post);

/* route one stanza (XML text) from the server as if it came over the
 * component link, then let the loop settle */
void fz_route_xml(struct fz *f, const char *xml);
/* alice's client comes online (her available presence to a contact) */
void fz_user_online(struct fz *f);

#endif
