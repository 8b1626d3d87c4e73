/*
 * socks5 — the Barev file data plane (see socks5.h; BAREV.md §6).
 *
 * One idea: a transfer is a small state machine over one socket, with one
 * fd event and one timer.  Handshake bytes are read exactly (never more
 * than the step needs, so no file byte is ever swallowed by the SOCKS5
 * parser); file bytes go socket -> pipe -> file with splice() (receiver;
 * through one fixed buffer where splice is not possible) or out with
 * sendfile() (sender), so memory does not grow with the file.
 */
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <strophe.h>

#include "log.h"
#include "socks5.h"

#define S5_BUF		(256 * 1024)	/* receiver's one buffer, if it copies */
#define S5_SEND_SLICE	(4u << 20)	/* bytes per writable event, for fairness */
#define S5_DRAIN_POLL_MS 50

enum s5_state {
	/* receiver */
	R_START, R_CONNECT, R_GREET, R_REQUEST, R_REPLY_REST, R_DATA,
	/* sender */
	S_LISTEN, S_GREET, S_METHODS, S_REQUEST, S_REQUEST_REST, S_DATA, S_DRAIN,
	S5_DONE,
};

struct s5 {
	struct event_base *base;
	int sender;
	enum s5_state state;
	int fd;				/* the data connection */
	int lfd;			/* sender's listener */
	struct event *ev;		/* on fd or lfd */
	struct event *tmr;
	struct s5_events cb;
	void *arg;
	int file;
	uint64_t size, bytes;
	unsigned refused;
	char dst[41];
	/* receiver */
	char src[INET6_ADDRSTRLEN];
	struct s5_host *hosts;
	size_t nhosts, cur;
	void (*progress)(void *arg, uint64_t bytes);
	unsigned connect_ms, idle_ms;
	char *buf;
	int pipe[2];			/* socket -> pipe -> file, or -1 */
	/* sender */
	struct in6_addr peer;
	unsigned accept_ms, drain_ms;
	unsigned drain_left_ms;
	/* handshake: bytes to write, bytes to read exactly */
	unsigned char out[64];
	size_t out_len, out_off;
	unsigned char in[300];
	size_t need, have;
};

static void s5_fd_cb(evutil_socket_t fd, short what, void *arg);
static void s5_tmr_cb(evutil_socket_t fd, short what, void *arg);
static void r_next_host(struct s5 *s, const char *why);

void
s5_dst_addr(const char *sid, const char *initiator, const char *target,
    char out[41])
{
	size_t a = strlen(sid), b = strlen(initiator), c = strlen(target);
	unsigned char *cat = malloc(a + b + c + 1), d[20];

	out[0] = '\0';
	if (cat == NULL)
		return;
	memcpy(cat, sid, a);
	memcpy(cat + a, initiator, b);
	memcpy(cat + a + b, target, c);
	xmpp_sha1_digest(cat, a + b + c, d);
	free(cat);
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
ms_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* (Re)arm the fd event; timeout_ms 0 = none. */
static int
watch(struct s5 *s, int fd, short what, unsigned timeout_ms)
{
	struct timeval tv;

	if (s->ev)
		event_free(s->ev);
	if ((s->ev = event_new(s->base, fd, what, s5_fd_cb, s)) == NULL)
		return -1;
	ms_tv(timeout_ms, &tv);
	return event_add(s->ev, timeout_ms ? &tv : NULL);
}

static void
timer(struct s5 *s, unsigned ms)
{
	struct timeval tv;

	ms_tv(ms, &tv);
	event_add(s->tmr, &tv);
}

static void
close_conn(struct s5 *s)
{
	if (s->ev) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
}

static void
close_listener(struct s5 *s)
{
	if (s->lfd != -1) {
		if (s->ev && event_get_fd(s->ev) == s->lfd) {
			event_free(s->ev);
			s->ev = NULL;
		}
		close(s->lfd);
		s->lfd = -1;
	}
}

/* The end: release the sockets, then tell the owner (who may free us). */
static void
finish(struct s5 *s, int ok, const char *why)
{
	if (s->state == S5_DONE)
		return;
	s->state = S5_DONE;
	close_listener(s);
	close_conn(s);
	if (s->tmr)
		event_del(s->tmr);
	if (s->cb.done)
		s->cb.done(s->arg, ok, why);
}

/* Write what is left of s->out; 1 all written, 0 wait, -1 error. */
static int
flush_out(struct s5 *s)
{
	while (s->out_off < s->out_len) {
		ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
		    MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		s->out_off += (size_t)n;
	}
	return 1;
}

/* Read exactly up to s->need bytes into s->in; 1 complete, 0 wait, -1 EOF/error. */
static int
fill_in(struct s5 *s)
{
	while (s->have < s->need) {
		ssize_t n = recv(s->fd, s->in + s->have, s->need - s->have, 0);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0)
			return -1;
		s->have += (size_t)n;
	}
	return 1;
}

static void
expect_bytes(struct s5 *s, size_t n)
{
	s->need = n;
	s->have = 0;
}

static void
queue_out(struct s5 *s, const void *p, size_t n)
{
	memcpy(s->out, p, n);
	s->out_len = n;
	s->out_off = 0;
}

static void
nonblock_nodelay(int fd)
{
	int one = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Bytes still to read after the 5-byte head of a SOCKS5 request/reply:
 * the rest of the address by ATYP, then the 2 port bytes; -1 unknown ATYP. */
static int
addr_rest(const unsigned char *head)
{
	switch (head[3]) {
	case 1: return 3 + 2;
	case 3: return head[4] + 2;
	case 4: return 15 + 2;
	default: return -1;
	}
}

/* ---- receiver ---- */

static int
sockaddr_of(const char *host, uint16_t port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct addrinfo hints = { 0 }, *ai;
	char ps[8];

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void
r_try_host(struct s5 *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const struct s5_host *h;

	for (; s->cur < s->nhosts; s->cur++) {
		h = &s->hosts[s->cur];
		if (sockaddr_of(h->host, h->port, &ss, &len) == -1) {
			log_info("socks5", "streamhost %s is not a numeric address", h->host);
			continue;
		}
		if ((s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			continue;
		nonblock_nodelay(s->fd);
		if (s->src[0] && ss.ss_family == AF_INET6) {
			struct sockaddr_in6 src = { .sin6_family = AF_INET6 };
			int one = 1;

			/* As for pipes (dial.c): an identity on a routed
			 * subnet is local by a `local` route, not an interface
			 * address, and IPv6 binds those only with FREEBIND. */
			(void)setsockopt(s->fd, IPPROTO_IPV6, IPV6_FREEBIND, &one,
			    sizeof(one));
			if (inet_pton(AF_INET6, s->src, &src.sin6_addr) != 1 ||
			    bind(s->fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
				log_info("socks5", "cannot bind the data connection to %s: %s",
				    s->src, strerror(errno));
				close(s->fd);
				s->fd = -1;
				continue;
			}
		}
		if (connect(s->fd, (struct sockaddr *)&ss, len) == -1 &&
		    errno != EINPROGRESS) {
			log_info("socks5", "connect [%s]:%u: %s", h->host, h->port,
			    strerror(errno));
			close(s->fd);
			s->fd = -1;
			continue;
		}
		s->state = R_CONNECT;
		if (watch(s, s->fd, EV_WRITE, 0) == -1)
			break;
		timer(s, s->connect_ms);
		return;
	}
	finish(s, 0, s->nhosts ? "could not connect to any of the sender's streamhosts"
	    : "the sender offered no usable streamhost");
}

/* This host failed: log, close, try the next. */
static void
r_next_host(struct s5 *s, const char *why)
{
	log_info("socks5", "streamhost [%s]:%u: %s", s->hosts[s->cur].host,
	    s->hosts[s->cur].port, why);
	close_conn(s);
	event_del(s->tmr);
	s->cur++;
	r_try_host(s);
}

/* Write all of buf to the spool file; 0, or -1 with errno. */
static int
r_write(struct s5 *s, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(s->file, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
r_pipe_close(struct s5 *s)
{
	for (int i = 0; i < 2; i++)
		if (s->pipe[i] != -1) {
			close(s->pipe[i]);
			s->pipe[i] = -1;
		}
}

/*
 * The receiver's buffer, made the first time it is needed: only where the
 * kernel cannot splice (a file system without it, no pipe), so a receive
 * that splices never holds S5_BUF of our heap.  NULL with errno ENOMEM.
 */
static char *
r_buf(struct s5 *s)
{
	if (s->buf == NULL && (s->buf = malloc(S5_BUF)) == NULL)
		errno = ENOMEM;
	return s->buf;
}

/* The file system takes no splice: empty the pipe through the buffer,
 * and copy from now on.  0, or -1 with errno. */
static int
r_pipe_copy(struct s5 *s, size_t n)
{
	if (r_buf(s) == NULL)
		return -1;
	while (n > 0) {
		ssize_t r = read(s->pipe[0], s->buf, n < S5_BUF ? n : S5_BUF);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		if (r_write(s, s->buf, (size_t)r) == -1)
			return -1;
		n -= (size_t)r;
	}
	r_pipe_close(s);
	return 0;
}

/* Move the n bytes in the pipe into the spool file; 0, or -1 with errno. */
static int
r_pipe_to_file(struct s5 *s, size_t n)
{
	while (n > 0) {
		ssize_t w = splice(s->pipe[0], NULL, s->file, NULL, n, SPLICE_F_MOVE);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL)
			return r_pipe_copy(s, n);
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		n -= (size_t)w;
	}
	return 0;
}

/*
 * File bytes: never more than the size asks for.  The kernel moves them
 * socket -> pipe -> file (splice) so they are copied once, not through
 * our buffer; recv() + write() where splice is not possible.
 */
static void
r_data(struct s5 *s)
{
	uint64_t left = s->size - s->bytes;
	size_t want = left < S5_BUF ? (size_t)left : S5_BUF;
	int spliced = s->pipe[0] != -1;
	ssize_t n;
	char why[96];

	if (spliced) {
		n = splice(s->fd, NULL, s->pipe[1], NULL, want,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINVAL) {
			r_pipe_close(s);	/* not from this socket: copy */
			spliced = 0;
		}
	}
	if (!spliced) {
		if (r_buf(s) == NULL) {
			finish(s, 0, "out of memory");
			return;
		}
		n = recv(s->fd, s->buf, want, 0);
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		snprintf(why, sizeof(why), "the connection closed after %llu of %llu bytes",
		    (unsigned long long)s->bytes, (unsigned long long)s->size);
		finish(s, 0, why);
		return;
	}
	if ((spliced ? r_pipe_to_file(s, (size_t)n) : r_write(s, s->buf, (size_t)n)) == -1) {
		/* a full disk in the user's words: it is the likely cause */
		if (errno == ENOSPC || errno == EDQUOT)
			snprintf(why, sizeof(why), "the gateway's disk is full");
		else
			snprintf(why, sizeof(why), "cannot write the spool file: %s",
			    strerror(errno));
		finish(s, 0, why);
		return;
	}
	s->bytes += (uint64_t)n;
	if (s->progress)
		s->progress(s->arg, s->bytes);
	if (s->bytes == s->size)
		finish(s, 1, NULL);	/* the byte count is the end (§6.6) */
}

static void
r_event(struct s5 *s, short what)
{
	int err = 0, r;
	socklen_t el = sizeof(err);

	if (s->state == R_DATA) {
		if (what & EV_TIMEOUT)
			finish(s, 0, "the sender stopped sending");
		else
			r_data(s);
		return;
	}
	switch (s->state) {
	case R_CONNECT:
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 || err) {
			r_next_host(s, strerror(err ? err : errno));
			return;
		}
		queue_out(s, "\x05\x01\x00", 3);
		s->state = R_GREET;
		expect_bytes(s, 2);
		break;
	case R_GREET:
		if ((r = flush_out(s)) == 0)
			break;
		if (r == -1 || (r = fill_in(s)) == -1) {
			r_next_host(s, "closed during the greeting");
			return;
		}
		if (r == 0)
			break;
		if (s->in[0] != 5 || s->in[1] != 0) {
			r_next_host(s, "refused the greeting");
			return;
		}
		s->out[0] = 5; s->out[1] = 1; s->out[2] = 0; s->out[3] = 3; s->out[4] = 40;
		memcpy(s->out + 5, s->dst, 40);
		s->out[45] = 0; s->out[46] = 0;
		s->out_len = 47;
		s->out_off = 0;
		s->state = R_REQUEST;
		expect_bytes(s, 5);
		/* FALLTHROUGH */
	case R_REQUEST:
		if ((r = flush_out(s)) == 0)
			break;
		if (r == -1 || (r = fill_in(s)) == -1) {
			r_next_host(s, "closed during the request");
			return;
		}
		if (r == 0)
			break;
		if (s->in[0] != 5 || s->in[1] != 0) {
			r_next_host(s, "refused the connect request");
			return;
		}
		if ((r = addr_rest(s->in)) < 0) {
			r_next_host(s, "sent a reply with an unknown address type");
			return;
		}
		s->state = R_REPLY_REST;
		expect_bytes(s, (size_t)r);
		/* FALLTHROUGH */
	case R_REPLY_REST:
		if ((r = fill_in(s)) == -1) {
			r_next_host(s, "closed during the reply");
			return;
		}
		if (r == 0)
			break;
		/* the reply's address is not checked: purple and pascal send
		 * different things there (BAREV.md §6.4) */
		event_del(s->tmr);
		s->state = R_DATA;
		if (s->cb.connected)
			s->cb.connected(s->arg, s->cur);
		if (s->size == 0) {
			finish(s, 1, NULL);
			return;
		}
		if (watch(s, s->fd, EV_READ | EV_PERSIST, s->idle_ms) == -1)
			finish(s, 0, "out of memory");
		return;
	default:
		return;
	}
	/* wait for whichever direction the step needs next */
	if (watch(s, s->fd, s->out_off < s->out_len ? EV_WRITE : EV_READ, 0) == -1)
		finish(s, 0, "out of memory");
}

/* ---- sender ---- */

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
		nonblock_nodelay(fd);
		s->fd = fd;
		close_listener(s);	/* one data connection per transfer */
		s->state = S_GREET;
		expect_bytes(s, 2);
		timer(s, s->idle_ms);	/* the handshake must not hang */
		if (watch(s, s->fd, EV_READ | EV_PERSIST, 0) == -1)
			finish(s, 0, "out of memory");
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
			finish(s, 0, why);
			return;
		}
		if (w == 0) {
			finish(s, 0, "the spool file is shorter than announced");
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
	if (watch(s, s->fd, EV_READ | EV_PERSIST, 0) == -1) {
		finish(s, 0, "out of memory");
		return;
	}
	timer(s, S5_DRAIN_POLL_MS);
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
		finish(s, 1, NULL);	/* it read everything and closed */
		return 1;
	}
	snprintf(why, sizeof(why), "the receiver closed the connection after %llu of %llu bytes",
	    (unsigned long long)s->bytes, (unsigned long long)s->size);
	finish(s, 0, why);
	return 1;
}

static void
s_event(struct s5 *s, short what)
{
	int r;

	switch (s->state) {
	case S_LISTEN:
		s_accept(s);
		return;
	case S_DATA:
		if (what & EV_TIMEOUT) {
			finish(s, 0, "the receiver stopped reading");
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
		if ((r = fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		if (s->in[0] != 5) {
			finish(s, 0, "the receiver does not speak SOCKS5");
			return;
		}
		s->state = S_METHODS;
		expect_bytes(s, s->in[1]);
		/* FALLTHROUGH */
	case S_METHODS:
		if ((r = fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		queue_out(s, "\x05\x00", 2);
		if (flush_out(s) != 1)
			goto closed;
		s->state = S_REQUEST;
		expect_bytes(s, 5);
		/* FALLTHROUGH */
	case S_REQUEST:
		if ((r = fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		if (s->in[0] != 5 || s->in[1] != 1 || (r = addr_rest(s->in)) < 0) {
			finish(s, 0, "the receiver sent a malformed SOCKS5 request");
			return;
		}
		s->state = S_REQUEST_REST;
		s->need = 5 + (size_t)r;	/* keep the head in s->in */
		/* FALLTHROUGH */
	case S_REQUEST_REST:
		if ((r = fill_in(s)) == -1)
			goto closed;
		if (r == 0)
			return;
		/* pascal hashes its upper-case JID forms: log, never fail (§6.5) */
		if (s->in[3] != 3 || s->in[4] != 40 || memcmp(s->in + 5, s->dst, 40) != 0)
			log_debug("socks5", "receiver's DST.ADDR is not the expected hash");
		/* reply: the same address back */
		s->out[0] = 5; s->out[1] = 0; s->out[2] = 0; s->out[3] = 3; s->out[4] = 40;
		memcpy(s->out + 5, s->dst, 40);
		s->out[45] = 0; s->out[46] = 0;
		s->out_len = 47;
		s->out_off = 0;
		if (flush_out(s) != 1)
			goto closed;
		event_del(s->tmr);
		s->state = S_DATA;
		if (s->cb.connected)
			s->cb.connected(s->arg, 0);
		if (watch(s, s->fd, EV_READ | EV_WRITE | EV_PERSIST, s->idle_ms) == -1)
			finish(s, 0, "out of memory");
		return;
	default:
		return;
	}
closed:
	finish(s, 0, "the receiver closed the data connection during the handshake");
}

static void
s_drain_tick(struct s5 *s)
{
	int unacked = 0;

	if (ioctl(s->fd, SIOCOUTQ, &unacked) == 0 && unacked == 0) {
		finish(s, 1, NULL);	/* every byte acknowledged by the peer's TCP */
		return;
	}
	if (s->drain_left_ms <= S5_DRAIN_POLL_MS) {
		finish(s, 0, "the receiver did not take the last bytes");
		return;
	}
	s->drain_left_ms -= S5_DRAIN_POLL_MS;
	timer(s, S5_DRAIN_POLL_MS);
}

/* ---- events ---- */

static void
s5_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s5 *s = arg;

	(void)fd;
	if (s->sender)
		s_event(s, what);
	else
		r_event(s, what);
}

static void
s5_tmr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s5 *s = arg;

	(void)fd;
	(void)what;
	switch (s->state) {
	case R_START:
		r_try_host(s);
		break;
	case R_CONNECT: case R_GREET: case R_REQUEST: case R_REPLY_REST:
		r_next_host(s, "timed out");
		break;
	case S_LISTEN:
		finish(s, 0, "the receiver never connected for the data");
		break;
	case S_GREET: case S_METHODS: case S_REQUEST: case S_REQUEST_REST:
		finish(s, 0, "the receiver's SOCKS5 handshake timed out");
		break;
	case S_DRAIN:
		s_drain_tick(s);
		break;
	default:
		break;
	}
}

static struct s5 *
s5_new(struct event_base *base, const struct s5_events *ev, void *arg)
{
	struct s5 *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->fd = s->lfd = s->file = -1;
	s->pipe[0] = s->pipe[1] = -1;
	if (ev)
		s->cb = *ev;
	s->arg = arg;
	if ((s->tmr = evtimer_new(base, s5_tmr_cb, s)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

struct s5 *
s5_recv_start(struct event_base *base, const struct s5_recv_params *p,
    const struct s5_events *ev, void *arg)
{
	struct s5 *s;

	if (p->dst == NULL || strlen(p->dst) != 40 || p->nhosts == 0)
		return NULL;
	if ((s = s5_new(base, ev, arg)) == NULL)
		return NULL;
	s->file = p->fd;
	s->size = p->size;
	memcpy(s->dst, p->dst, 41);
	snprintf(s->src, sizeof(s->src), "%s", p->src_addr ? p->src_addr : "");
	s->connect_ms = p->connect_timeout_ms ? p->connect_timeout_ms : 10000;
	s->idle_ms = p->idle_timeout_ms ? p->idle_timeout_ms : 30000;
	s->progress = p->progress;
	s->hosts = calloc(p->nhosts, sizeof(*s->hosts));
	if (s->hosts == NULL)
		goto fail;
	/* the pipe's pages are the kernel's, bounded like the buffer */
	if (pipe2(s->pipe, O_CLOEXEC | O_NONBLOCK) == 0)
		fcntl(s->pipe[0], F_SETPIPE_SZ, S5_BUF);
	for (size_t i = 0; i < p->nhosts; i++) {
		if ((s->hosts[i].host = strdup(p->hosts[i].host)) == NULL)
			goto fail;
		s->hosts[i].port = p->hosts[i].port;
		s->nhosts++;
	}
	/* the first attempt runs from the loop, so `done` never fires
	 * before the caller has the handle */
	s->state = R_START;
	event_active(s->tmr, EV_TIMEOUT, 0);
	return s;
fail:
	s5_free(s);
	return NULL;
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
	if (watch(s, s->lfd, EV_READ | EV_PERSIST, 0) == -1)
		goto fail;
	timer(s, s->accept_ms);
	return s;
fail:
	s5_free(s);
	return NULL;
}

uint64_t s5_bytes(const struct s5 *s) { return s->bytes; }
unsigned s5_refused(const struct s5 *s) { return s->refused; }

void
s5_free(struct s5 *s)
{
	if (s == NULL)
		return;
	close_listener(s);
	close_conn(s);
	r_pipe_close(s);
	if (s->tmr)
		event_free(s->tmr);
	for (size_t i = 0; i < s->nhosts; i++)
		free((char *)s->hosts[i].host);
	free(s->hosts);
	free(s->buf);
	free(s);
}
