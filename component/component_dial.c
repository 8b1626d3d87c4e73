/*
 * component_dial — reaching the XMPP server: the name through libevent's
 * resolver (evdns: /etc/hosts, then resolv.conf), then a non-blocking
 * connect to each address in turn, then the stream (component_stream.c).
 *
 * The one idea: one attempt is one address; the addresses are looked up
 * anew for each round through them, so a server that moved is found.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "component.h"
#include "log.h"
#include "xmlstream.h"

#include "component_int.h"

/* ---- connecting ---- */

static void
comp_connected(struct comp *c)
{
	struct xs_limits lim = { .max_stanza = c->max_stanza };
	struct timeval tv = comp_tv(COMP_HANDSHAKE_TIMEOUT_S * 1000);
	struct evbuffer *hdr = NULL;
	static const char open1[] = "<?xml version='1.0'?><stream:stream "
	    "xmlns='jabber:component:accept' "
	    "xmlns:stream='" NS_STREAMS "' to='";
	int fd = c->fd;

	event_del(c->connect_ev);
	c->fd = -1;
	/* xs_conn owns the fd from here on, even when it fails */
	if ((c->xs = xs_conn_new(c->base, fd, &lim, &comp_xs_cb, c)) == NULL) {
		comp_fail(c, LOG_LVL_ERROR, "cannot set up the stream (out of "
		    "memory)");
		return;
	}
	c->state = COMP_HANDSHAKING;
	evtimer_add(c->hs_timer, &tv);
	log_debug("component", "connected, opening the stream to %s", c->jid);

	if ((hdr = evbuffer_new()) == NULL ||
	    evbuffer_add(hdr, open1, sizeof open1 - 1) == -1 ||
	    xs_escape(hdr, c->jid, strlen(c->jid), '\'') == -1 ||
	    evbuffer_add(hdr, "'>", 2) == -1 ||
	    xs_conn_send_raw(c->xs, (const char *)evbuffer_pullup(hdr, -1),
	    evbuffer_get_length(hdr)) == -1)
		comp_fail(c, LOG_LVL_ERROR, "cannot send the stream header "
		    "(out of memory)");
	if (hdr != NULL)
		evbuffer_free(hdr);
}

void
comp_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct comp *c = arg;
	char hp[300];
	int err = 0;
	socklen_t len = sizeof err;

	comp_hostport(c, hp, sizeof hp);
	if (what & EV_TIMEOUT) {
		comp_fail(c, LOG_LVL_WARN, "cannot connect to %s: timed out "
		    "after %d s", hp, COMP_HANDSHAKE_TIMEOUT_S);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		comp_fail(c, LOG_LVL_WARN, "cannot connect to %s: %s", hp,
		    strerror(err));
		return;
	}
	comp_connected(c);
}

static void
comp_resolved(int rc, struct evutil_addrinfo *ai, void *arg)
{
	struct comp *c = arg;

	if (rc == EVUTIL_EAI_CANCEL)
		return;		/* the attempt was stopped: c may be going */
	c->dns_req = NULL;
	c->resolving = 0;
	if (rc != 0) {
		comp_fail(c, LOG_LVL_WARN, "cannot resolve %s: %s", c->host,
		    evutil_gai_strerror(rc));
		return;
	}
	if (c->ai != NULL)
		evutil_freeaddrinfo(c->ai);
	c->ai = c->ai_next = ai;
	comp_dial(c);
}

/*
 * The server's addresses, anew for each round through them: a server in a
 * container may come back on another address.  A numeric host costs
 * nothing; a name goes to libevent's resolver (/etc/hosts, then the
 * nameservers of /etc/resolv.conf), never to a blocking getaddrinfo() that
 * would stall every pipe on the loop while DNS is slow.
 *
 * No AI_ADDRCONFIG: it ignores loopback, so on a host (or netns) whose only
 * IPv4 address is 127.0.0.1 but that has global IPv6 addresses (every
 * Yggdrasil node) it refuses "127.0.0.1" outright.
 */
static void
comp_resolve(struct comp *c)
{
	struct evutil_addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = EVUTIL_AI_NUMERICSERV | EVUTIL_AI_NUMERICHOST };
	struct evutil_addrinfo *ai;
	struct evdns_getaddrinfo_request *r;
	char port[8];

	snprintf(port, sizeof port, "%u", c->port);
	if (evutil_getaddrinfo(c->host, port, &hints, &ai) == 0) {
		comp_resolved(0, ai, c);
		return;
	}
	if (c->dns == NULL && (c->dns = evdns_base_new(c->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL) {
		comp_fail(c, LOG_LVL_WARN, "cannot resolve %s: no resolver"
		    " (/etc/resolv.conf)", c->host);
		return;
	}
	hints.ai_flags &= ~EVUTIL_AI_NUMERICHOST;
	c->resolving = 1;
	r = evdns_getaddrinfo(c->dns, c->host, port, &hints, comp_resolved, c);
	if (c->resolving)	/* else answered already (/etc/hosts) */
		c->dns_req = r;
}

void
comp_connect(struct comp *c)
{
	if (c->stopped || c->state != COMP_DISCONNECTED || c->failing)
		return;
	c->state = COMP_CONNECTING;
	if (c->ai_next == NULL)
		comp_resolve(c);	/* then comp_dial() */
	else
		comp_dial(c);
}

/* one attempt on the next address of the round */
void
comp_dial(struct comp *c)
{
	struct addrinfo *a = c->ai_next;
	struct timeval tv = comp_tv(COMP_HANDSHAKE_TIMEOUT_S * 1000);
	char hp[300];
	unsigned uto;

	c->ai_next = a->ai_next;
	comp_hostport(c, hp, sizeof hp);
	log_debug("component", "connecting to %s", hp);

	c->fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (c->fd == -1) {
		comp_fail(c, LOG_LVL_ERROR, "cannot connect to %s: socket: %s",
		    hp, strerror(errno));
		return;
	}
	/* unacknowledged data this long means a dead link (keepalives make
	 * sure there is data); the loopback never gets here */
	uto = 3 * c->keepalive_s * 1000;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto,
	    sizeof uto);
	if (connect(c->fd, a->ai_addr, a->ai_addrlen) == 0) {
		comp_connected(c);
		return;
	}
	if (errno != EINPROGRESS) {
		comp_fail(c, LOG_LVL_WARN, "cannot connect to %s: %s", hp,
		    strerror(errno));
		return;
	}
	event_del(c->connect_ev);
	event_assign(c->connect_ev, c->base, c->fd, EV_WRITE, comp_connect_cb,
	    c);
	event_add(c->connect_ev, &tv);
}
