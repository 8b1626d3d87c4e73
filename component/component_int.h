/*
 * component_int.h — what the files of component/ share, and only they:
 * component.c (the link's life cycle and the interface), component_dial.c
 * (looking the server up and connecting) and component_stream.c (the
 * XEP-0114 stream: handshake, stanzas, errors, keepalive, goodbye).  The
 * interface is component.h.
 */
#ifndef COMP_INT_H
#define COMP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "component.h"
#include "log.h"
#include "xmlstream.h"

/*
 * Connect, and header + handshake.  A server answers in milliseconds; one
 * that accepted the TCP connection while still starting may never answer
 * it (seen with Prosody restarts), so give up soon and dial again.
 */
#define COMP_HANDSHAKE_TIMEOUT_S	5
/* a link this old resets the backoff: a server that drops the link within
 * seconds again and again backs us off; one that ran a while and then
 * died (a crash, kill -9) is a new incident, back in 1-2 s */
#define COMP_RESET_AFTER_UP_S		10
#define COMP_ID_MAX			1024	/* longest stream id we hash */
#define COMP_DRAIN_MS			5000	/* reading on after our goodbye */
#define NS_STREAMS	"http://etherx.jabber.org/streams"
#define NS_XMPP_STREAMS	"urn:ietf:params:xml:ns:xmpp-streams"

struct comp {
	struct event_base *base;
	char *jid;
	char *secret;
	char *host;
	uint16_t port;
	unsigned keepalive_s;
	unsigned backoff_min_ms;
	unsigned backoff_max_ms;
	size_t max_stanza;
	struct comp_events ev;
	void *arg;

	enum comp_state state;
	int stopped;		/* before comp_start, after comp_shutdown */
	int ever_up;
	int got_header;
	struct addrinfo *ai;	/* this round's addresses, one per attempt */
	struct addrinfo *ai_next;	/* NULL: resolve again first */
	struct evdns_base *dns;	/* made on the first name (not address) */
	struct evdns_getaddrinfo_request *dns_req;
	int resolving;
	int fd;			/* only while CONNECTING */
	struct event *connect_ev;
	struct xs_conn *xs;	/* HANDSHAKING, UP, or closing after shutdown */
	struct event *hs_timer;
	struct event *ka_timer;
	struct event *retry_timer;
	struct event *fail_ev;
	struct event *closed_ev;	/* tells the owner after comp_shutdown */
	struct event *drain_timer;	/* bounds the read after our goodbye */
	int draining;		/* our </stream:stream> is out; still reading */
	unsigned backoff_ms;	/* bound of the last delay; 0 = start over */
	uint64_t up_since_ms;
	uint64_t last_tx_ms;

	int failing;		/* a teardown is pending: ignore input */
	int restarting;		/* the server said system-shutdown */
	enum log_level fail_lvl;
	char fail_why[512];
};

/* ---- component.c: life cycle ---- */
struct timeval comp_tv(unsigned ms);
/* "host:port", or "[v6]:port" so the port stays readable */
void comp_hostport(const struct comp *c, char *buf, size_t len);
/* why the link failed (the first reason counts); the teardown is deferred */
void comp_fail(struct comp *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- component_dial.c: resolve and connect ---- */
void comp_connect(struct comp *c);
void comp_dial(struct comp *c);
void comp_connect_cb(evutil_socket_t fd, short what, void *arg);

/* ---- component_stream.c: the XEP-0114 stream ---- */
extern const struct xs_callbacks comp_xs_cb;
void comp_hs_timeout_cb(evutil_socket_t fd, short what, void *arg);
void comp_ka_cb(evutil_socket_t fd, short what, void *arg);
void comp_drain_done(evutil_socket_t fd, short what, void *arg);

#endif
