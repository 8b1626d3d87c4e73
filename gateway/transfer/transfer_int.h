/*
 * transfer_int.h — what the files of the transfer module share, and only
 * they: transfer.c (one transfer's life cycle and the peer's iqs),
 * transfer_in.c (Barev -> XMPP), transfer_out.c (XMPP -> Barev),
 * transfer_spool.c (the spool directory), transfer_http.c and
 * transfer_serve.c (HTTP), and the module's state (struct xfer_module).
 * The module's interface is transfer.h; nothing outside gateway/transfer/
 * includes this.
 */
#ifndef GW_TRANSFER_INT_H
#define GW_TRANSFER_INT_H

#include <sys/queue.h>
#include <limits.h>
#include <stdint.h>

#include <strophe.h>

#include "store.h"
#include "transfer.h"
#include "transfer_limits.h"

struct gw;

#define NS_SI		"http://jabber.org/protocol/si"
#define NS_SI_FT	"http://jabber.org/protocol/si/profile/file-transfer"
#define NS_FNEG		"http://jabber.org/protocol/feature-neg"
#define NS_XDATA	"jabber:x:data"
#define NS_BS		"http://jabber.org/protocol/bytestreams"
#define NS_OOB		"jabber:x:oob"
#define NS_UPLOAD	"urn:xmpp:http:upload:0"

#define XFER_PURPLE_MAX		((uint64_t)2 << 30)	/* >= 2 GiB breaks purple (§6.6) */
#define XFER_STREAMHOSTS_MS	60000	/* accepted offer -> streamhosts */
#define XFER_ANSWER_MS		300000	/* our offer -> accept/decline (a human clicks) */
#define XFER_SLOT_MS		30000
#define XFER_PIPE_WAIT_MS	60000	/* fetched, the peer's pipe still down */
#define XFER_PROGRESS_MS	30000	/* large transfers: a line this often */
#define XFER_REFUSAL_NOTE_MS	60000	/* offers over a limit: a note per contact+reason */

enum xfer_state {
	XS_IN_OFFERED,		/* we accepted; waiting for streamhosts */
	XS_IN_RECEIVING,	/* SOCKS5 into the spool (the upload runs alongside) */
	XS_IN_SLOT,		/* all received; XEP-0363 slot request in flight */
	XS_IN_UPLOADING,	/* all received; the PUT sends the rest */
	XS_OUT_DOWNLOADING,	/* GET into the spool */
	XS_OUT_WAITING,		/* fetched; waiting for the peer's pipe */
	XS_OUT_OFFERED,		/* SI offer sent; waiting for the answer */
	XS_OUT_SENDING,		/* SOCKS5 from the spool */
};

/* Barev -> XMPP: the upload, alongside the receive */
enum xfer_up {
	XU_IDLE,		/* nothing in flight (not asked yet, or failed early) */
	XU_SLOT,		/* slot request in flight */
	XU_PUT,			/* PUT running, fed from the spool as bytes land */
	XU_DONE,		/* the server has every byte */
};

struct xfer {
	LIST_ENTRY(xfer) entry;
	struct gw *gw;
	uint64_t serial;
	int64_t row, ident, contact;
	int out;			/* XMPP -> Barev */
	enum xfer_state state;
	enum xfer_up up;
	int received;			/* every byte is in the spool */
	int last_try;			/* the upload after the receive: failures are final */
	char sid[72];
	char bs_id[96];			/* the bytestreams iq's id */
	char *name;
	uint64_t size;
	char path[PATH_MAX];		/* spool file; "" once gone */
	int fd;
	char user_jid[STORE_JID_MAX];	/* alice@example.org */
	char contact_jid[STORE_JID_MAX];	/* bob\40…@barev.example.org */
	char peer_name[STORE_NAME_MAX + 1];	/* how the user knows the peer */
	char me[STORE_NICK_MAX + STORE_ADDR_MAX + 2];	/* alice@201:1::1 */
	char peer[STORE_NICK_MAX + STORE_ADDR_MAX + 2];	/* bob@201:2::2 */
	char my_addr[STORE_ADDR_MAX], peer_addr[STORE_ADDR_MAX];
	char *initiator;		/* the offer's from, for the SOCKS5 hash */
	char *get_url;			/* the slot's GET url while the PUT runs */
	/* XMPP -> Barev: the message that carried the link, for its outcome
	 * (XEP-0184 receipt or a message error on it) */
	char *msg_from;			/* her full JID */
	char *msg_to;			/* the contact JID as she wrote it */
	char *msg_id;			/* NULL: the message had no id */
	int want_receipt;
	char **sh_jid;			/* streamhost jids, by index */
	size_t nsh;
	struct s5 *s5;
	struct xfer_http *http;
	struct event *timer;		/* the current phase's deadline */
	struct event *tick;		/* progress */
	uint64_t reported;
};

LIST_HEAD(xfer_list, xfer);

/*
 * The module's state, one per gateway (gw->xfer), instead of file
 * statics: made by the first transfer_start(), kept across a stop (a
 * serial is never reused while a callback may still name it), freed by
 * transfer_free().
 */
struct xfer_module {
	struct transfer_events ev;	/* the bridge's */
	void *ev_arg;
	/* transfer.c */
	struct xfer_list all;		/* every transfer in flight */
	struct xfer_list ended;		/* ended; spool files still to remove */
	uint64_t next_serial;
	struct event *reaper;
	/* transfer_http.c: the resolver lives while clients do */
	struct evdns_base *dns;
	unsigned http_live;		/* struct xfer_http alive */
	struct ssl_ctx_st *ssl;		/* client TLS context */
	char *ssl_ca;			/* the ca_file it was built with */
	int keep_tls;			/* transfer_test_keep_tls() */
	/* transfer_in.c: offers refused over a limit, when each contact's
	 * user was last told */
	struct xl_notes refusal_notes;
	/* transfer_serve.c */
	struct evhttp *server;
	/* transfer_spool.c */
	struct event *sweeper;		/* expires served files */
	uint64_t served_bytes;		/* in SPOOL/served: counts against spool_quota */
};
/* gw->xfer, made on first use; NULL only on no memory */
struct xfer_module *xfer_module(struct gw *gw);

/* ---- transfer.c: life cycle ---- */
/* NULL once the transfer ended: for callbacks that may outlive it */
struct xfer *xfer_by_serial(struct gw *gw, uint64_t serial);
void xfer_human_size(uint64_t n, char *buf, size_t len);
/* a chat message to the user, from the contact or (from_gateway) the gateway */
xmpp_stanza_t *xfer_user_message(struct xfer *x, const char *body, int from_gateway);
/* give `st` to the bridge for the user: from the contact's JID, or held
 * while the link is down */
void xfer_to_user(struct xfer *x, xmpp_stanza_t *st);
/* a note from the gateway JID */
void xfer_tell(struct xfer *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void xfer_tell_delivered(struct xfer *x);
/* the one end of every transfer (why NULL: the caller told the user) */
void xfer_end(struct xfer *x, int ok, const char *why);
/* tell the user why, then xfer_end */
void xfer_fail(struct xfer *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* the SOCKS5 stream ended (s5_events.done): it is freed, and a failure
 * fails the transfer with the stream's reason; 1 = it went well, go on */
int xfer_s5_ended(struct xfer *x, int ok, const char *why);
/* the current phase's deadline */
void xfer_arm(struct xfer *x, unsigned ms);
uint64_t xfer_bytes(struct xfer *x);
struct xfer *xfer_new(struct gw *gw, int64_t contact, int out);
char *xfer_clean_name(const char *in);
char *xfer_name_of_url(const char *url);
uint64_t xfer_max_size(struct gw *gw);
/* send and release */
int xfer_send_to_peer(struct xfer *x, xmpp_stanza_t *st);
const char *xfer_attr_of(xmpp_stanza_t *st, const char *name);

/* ---- transfer_in.c: Barev -> XMPP ---- */
int xfer_in_offer(struct gw *gw, int64_t contact, xmpp_stanza_t *iq, xmpp_stanza_t *si);
int xfer_in_streamhosts(struct gw *gw, struct xfer *x, xmpp_stanza_t *iq, xmpp_stanza_t *q);

/* ---- transfer_out.c: XMPP -> Barev ---- */
void xfer_out_offer(struct xfer *x);
void xfer_out_accepted(struct xfer *x);

/* ---- transfer_spool.c: SPOOL/tmp and SPOOL/served ---- */
int xfer_spool_create(struct xfer *x);
/* at start: the folders, leftovers removed, served files counted */
void xfer_spool_prepare(struct gw *gw);
/* expire served files while running */
int xfer_spool_sweep_start(struct gw *gw);
void xfer_spool_stop(struct gw *gw);

#endif
