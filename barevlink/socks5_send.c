/*
 * socks5_send — the sending side of a Barev file's data connection
 * (BAREV.md §6.3; XEP-0065 as the streamhost): listen on a port of the
 * identity's address, accept the offering peer's address only, answer its
 * SOCKS5 handshake for the DST.ADDR hash, then send the file.
 *
 * The one idea: the file goes out with sendfile() in slices of at most
 * S5_SEND_SLICE per writable event, so one fast transfer does not starve
 * the loop, and the end waits until the peer has read every byte (drain).
 */
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "socks5.h"
#include "socks5_int.h"

static int
peer_matches(struct s5 *s, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		return memcmp(&a->sin6_addr, &s->peer, sizeof(s->peer)) == 0;
	}
	if (ss->ss_family == AF_INET && IN6_IS_ADDR_V4MAPPED(&s->peer)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		return memcmp(&a->sin_addr, &s->peer.s6_addr[12], 4) == 0;
	}
	return 0;
}

static void
s_accept(struct s5 *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char txt[INET6_ADDRSTRLEN];
	int fd;

	for (;;) {
		len = sizeof(ss);
		fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1)
			return;
		if (!peer_matches(s, &ss)) {
			txt[0] = '\0';
			if (ss.ss_family == AF_INET6)
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
				    txt, sizeof(txt));
			log_warn("socks5", "data connection from %s refused: not the peer",
			    txt[0] ? txt : "a non-IPv6 address");
			s->refused++;
			close(fd);
			continue;
		}
		s5_nonblock_nodelay(fd);
		s->fd = fd;
		s5_close_listener(s);	/* one data connection per transfer */
		s->state = S_GREET;
		s5_expect_bytes(s, 2);
		s5_timer(s, s->idle_ms);	/* the handshake must not hang */
		if (s5_watch(s, s->fd, EV_READ | EV_PERSIST, 0) == -1)
			s5_finish(s, 0, "out of memory");
		return;
	}
}

/* Stream a slice with sendfile(); shutdown(SHUT_WR) after the last byte. */
static void
s_send(struct s5 *s)
{
	uint64_t budget = S5_SEND_SLICE;
	char why[96];

	while (s->bytes < s->size && budget > 0) {
		off_t off = (off_t)s->bytes;
		uint64_t left = s->size - s->bytes;
		size_t n = (size_t)(left < budget ? left : budget);
		ssize_t w = sendfile(s->fd, s->file, &off, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			snprintf(why, sizeof(why), "the receiver's connection failed: %s",
			    strerror(errno));
			s5_finish(s, 0, why);
			return;
		}
		if (w == 0) {
			s5_finish(s, 0, "the spool file is shorter than announced");
			return;
		}
		s->bytes += (uint64_t)w;
		budget -= (uint64_t)w;
	}
	if (s->bytes < s->size)
		return;
	shutdown(s->fd, SHUT_WR);
	s->state = S_DRAIN;
	s->drain_left_ms = s->drain_ms;
	if (s5_watch(s, s->fd, EV_READ | EV_PERSIST, 0) == -1) {
		s5_finish(s, 0, "out of memory");
		return;
	}
	s5_timer(s, S5_DRAIN_POLL_MS);
}

/*
 * Anything from the receiver while or after we send: only EOF matters.
 * 1 when it finished the transfer: `s` may be freed by the done callback
 * then, so the caller must not touch it again.
 */
static int
s_peer_readable(struct s5 *s)
{
	char junk[512];
	ssize_t n = recv(s->fd, junk, sizeof(junk), 0);
	char why[96];

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return 0;
	if (s->state == S_DRAIN && n == 0) {
		s5_finish(s, 1, NULL);	/* it read everything and closed */
		return 1;
	}
	snprintf(why, sizeof(why), "the receiver closed the connection after %llu of %llu bytes",
	    (unsigned long long)s->bytes, (unsigned long long)s->size);
	s5_finish(s, 0, why);
	return 1;
}

/* The reply is out: the file's bytes follow. */
static void
s_handshake_done(struct s5 *s)
{
	event_del(s->tmr);
	s->state = S_DATA;
	if (s->cb.connected)
		s->cb.connected(s->arg, 0);
	if (s5_watch(s, s->fd, EV_READ | EV_WRITE | EV_PERSIST, s->idle_ms) == -1)
		s5_finish(s, 0, "out of memory");
}

void
s5_send_event(struct s5 *s, short what)
{
	int r;

	switch (s->state) {
	case S_LISTEN:
		s_accept(s);
		return;
	case S_DATA:
		if (what & EV_TIMEOUT) {
			s5_finish(s, 0, "the receiver stopped reading");
			return;
		}
		if ((what & EV_READ) && s_peer_readable(s))
			return;
		if (what & EV_WRITE)
			s_send(s);
		return;
	case S_DRAIN:
		(void)s_peer_readable(s);
		return;
	case S_GREET:
		if ((r = s5_fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		if (s->in[0] != 5) {
			s5_finish(s, 0, "the receiver does not speak SOCKS5");
			return;
		}
		s->state = S_METHODS;
		s5_expect_bytes(s, s->in[1]);
		/* FALLTHROUGH */
	case S_METHODS:
		if ((r = s5_fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		s5_queue_out(s, "\x05\x00", 2);
		if (s5_flush_out(s) != 1)
			goto closed;
		s->state = S_REQUEST;
		s5_expect_bytes(s, 5);
		/* FALLTHROUGH */
	case S_REQUEST:
		if ((r = s5_fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		if (s->in[0] != 5 || s->in[1] != 1 || (r = s5_addr_rest(s->in)) < 0) {
			s5_finish(s, 0, "the receiver sent a malformed SOCKS5 request");
			return;
		}
		s->state = S_REQUEST_REST;
		s->need = 5 + (size_t)r;	/* keep the head in s->in */
		/* FALLTHROUGH */
	case S_REQUEST_REST:
		if ((r = s5_fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		/* pascal hashes its upper-case JID forms: log, never fail (§6.5) */
		if (s->in[3] != 3 || s->in[4] != 40 || memcmp(s->in + 5, s->dst, 40) != 0)
			log_debug("socks5", "receiver's DST.ADDR is not the expected hash");
		s5_queue_dst(s, 0);	/* reply: the same address back */
		if (s5_flush_out(s) != 1)
			goto closed;
		s_handshake_done(s);
		return;
	default:
		return;
	}
closed:
	s5_finish(s, 0, "the receiver closed the data connection during the handshake");
}

void
s5_send_drain_tick(struct s5 *s)
{
	int unacked = 0;

	if (ioctl(s->fd, SIOCOUTQ, &unacked) == 0 && unacked == 0) {
		s5_finish(s, 1, NULL);	/* every byte acknowledged by the peer's TCP */
		return;
	}
	if (s->drain_left_ms <= S5_DRAIN_POLL_MS) {
		s5_finish(s, 0, "the receiver did not take the last bytes");
		return;
	}
	s->drain_left_ms -= S5_DRAIN_POLL_MS;
	s5_timer(s, S5_DRAIN_POLL_MS);
}


struct s5 *
s5_send_start(struct event_base *base, const struct s5_send_params *p,
    const struct s5_events *ev, void *arg, uint16_t *port)
{
	struct s5 *s;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	uint16_t lo = p->port_min ? p->port_min : S5_PORT_MIN;
	uint16_t hi = p->port_max ? p->port_max : S5_PORT_MAX;
	int one = 1;

	if (p->dst == NULL || strlen(p->dst) != 40)
		return NULL;
	*port = 0;
	if ((s = s5_new(base, ev, arg)) == NULL)
		return NULL;
	s->sender = 1;
	s->file = p->fd;
	s->size = p->size;
	memcpy(s->dst, p->dst, 41);
	s->accept_ms = p->accept_timeout_ms ? p->accept_timeout_ms : 60000;
	s->idle_ms = p->idle_timeout_ms ? p->idle_timeout_ms : 30000;
	s->drain_ms = p->drain_timeout_ms ? p->drain_timeout_ms : 30000;
	if (inet_pton(AF_INET6, p->peer_addr, &s->peer) != 1 ||
	    inet_pton(AF_INET6, p->bind_addr, &sa.sin6_addr) != 1) {
		log_error("socks5", "not IPv6 addresses: %s / %s", p->bind_addr, p->peer_addr);
		goto fail;
	}
	if ((s->lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		goto fail;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* the identity's address may be local only by a route (see above) */
	setsockopt(s->lfd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	for (unsigned pt = lo; pt <= hi; pt++) {
		sa.sin6_port = htons((uint16_t)pt);
		if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			*port = (uint16_t)pt;
			break;
		}
		if (errno != EADDRINUSE) {
			log_error("socks5", "cannot bind [%s]:%u: %s", p->bind_addr, pt,
			    strerror(errno));
			goto fail;
		}
	}
	if (*port == 0 || listen(s->lfd, 4) == -1) {
		log_error("socks5", "no free data port on [%s] in %u-%u", p->bind_addr,
		    lo, hi);
		goto fail;
	}
	s->state = S_LISTEN;
	if (s5_watch(s, s->lfd, EV_READ | EV_PERSIST, 0) == -1)
		goto fail;
	s5_timer(s, s->accept_ms);
	return s;
fail:
	s5_free(s);
	return NULL;
}
