/*
 * socks5_recv — the receiving side of a Barev file's data connection
 * (BAREV.md §6.3; XEP-0065 as the target): connect to the offered
 * streamhosts in turn from the identity's address, SOCKS5 CONNECT to the
 * DST.ADDR hash, then exactly `size` bytes into the file.
 *
 * The one idea: handshake bytes are read exactly, never more than the
 * step needs, so no file byte is swallowed by the parser; file bytes go
 * socket -> pipe -> file with splice() (through one fixed buffer where
 * splice is not possible), so memory does not grow with the file.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "socks5.h"
#include "socks5_int.h"

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

void
s5_recv_try_host(struct s5 *s)
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
		s5_nonblock_nodelay(s->fd);
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
		if (s5_watch(s, s->fd, EV_WRITE, 0) == -1)
			break;
		s5_timer(s, s->connect_ms);
		return;
	}
	s5_finish(s, 0, s->nhosts ? "could not connect to any of the sender's streamhosts"
	    : "the sender offered no usable streamhost");
}

/* This host failed: log, close, try the next. */
void
s5_recv_next_host(struct s5 *s, const char *why)
{
	log_info("socks5", "streamhost [%s]:%u: %s", s->hosts[s->cur].host,
	    s->hosts[s->cur].port, why);
	s5_close_conn(s);
	event_del(s->tmr);
	s->cur++;
	s5_recv_try_host(s);
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

void
s5_recv_pipe_close(struct s5 *s)
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
	s5_recv_pipe_close(s);
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
			s5_recv_pipe_close(s);	/* not from this socket: copy */
			spliced = 0;
		}
	}
	if (!spliced) {
		if (r_buf(s) == NULL) {
			s5_finish(s, 0, "out of memory");
			return;
		}
		n = recv(s->fd, s->buf, want, 0);
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		snprintf(why, sizeof(why), "the connection closed after %llu of %llu bytes",
		    (unsigned long long)s->bytes, (unsigned long long)s->size);
		s5_finish(s, 0, why);
		return;
	}
	if ((spliced ? r_pipe_to_file(s, (size_t)n) : r_write(s, s->buf, (size_t)n)) == -1) {
		/* a full disk in the user's words: it is the likely cause */
		if (errno == ENOSPC || errno == EDQUOT)
			snprintf(why, sizeof(why), "the gateway's disk is full");
		else
			snprintf(why, sizeof(why), "cannot write the spool file: %s",
			    strerror(errno));
		s5_finish(s, 0, why);
		return;
	}
	s->bytes += (uint64_t)n;
	if (s->progress)
		s->progress(s->arg, s->bytes);
	if (s->bytes == s->size)
		s5_finish(s, 1, NULL);	/* the byte count is the end (§6.6) */
}

/* The reply is in: the file's bytes follow. */
static void
r_handshake_done(struct s5 *s)
{
	/* the reply's address is not checked: purple and pascal send
	 * different things there (BAREV.md §6.4) */
	event_del(s->tmr);
	s->state = R_DATA;
	if (s->cb.connected)
		s->cb.connected(s->arg, s->cur);
	if (s->size == 0) {
		s5_finish(s, 1, NULL);
		return;
	}
	if (s5_watch(s, s->fd, EV_READ | EV_PERSIST, s->idle_ms) == -1)
		s5_finish(s, 0, "out of memory");
}

void
s5_recv_event(struct s5 *s, short what)
{
	int err = 0, r;
	socklen_t el = sizeof(err);

	if (s->state == R_DATA) {
		if (what & EV_TIMEOUT)
			s5_finish(s, 0, "the sender stopped sending");
		else
			r_data(s);
		return;
	}
	switch (s->state) {
	case R_CONNECT:
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1 || err) {
			s5_recv_next_host(s, strerror(err ? err : errno));
			return;
		}
		s5_queue_out(s, "\x05\x01\x00", 3);
		s->state = R_GREET;
		s5_expect_bytes(s, 2);
		break;
	case R_GREET:
		if ((r = s5_flush_out(s)) == 0)
			break;
		if (r == -1 || (r = s5_fill_in(s)) == -1) {
			s5_recv_next_host(s, "closed during the greeting");
			return;
		}
		if (r == 0)
			break;
		if (s->in[0] != 5 || s->in[1] != 0) {
			s5_recv_next_host(s, "refused the greeting");
			return;
		}
		s5_queue_dst(s, 1);	/* CONNECT */
		s->state = R_REQUEST;
		s5_expect_bytes(s, 5);
		/* FALLTHROUGH */
	case R_REQUEST:
		if ((r = s5_flush_out(s)) == 0)
			break;
		if (r == -1 || (r = s5_fill_in(s)) == -1) {
			s5_recv_next_host(s, "closed during the request");
			return;
		}
		if (r == 0)
			break;
		if (s->in[0] != 5 || s->in[1] != 0) {
			s5_recv_next_host(s, "refused the connect request");
			return;
		}
		if ((r = s5_addr_rest(s->in)) < 0) {
			s5_recv_next_host(s, "sent a reply with an unknown address type");
			return;
		}
		s->state = R_REPLY_REST;
		s5_expect_bytes(s, (size_t)r);
		/* FALLTHROUGH */
	case R_REPLY_REST:
		if ((r = s5_fill_in(s)) == -1) {
			s5_recv_next_host(s, "closed during the reply");
			return;
		}
		if (r == 0)
			break;
		r_handshake_done(s);
		return;
	default:
		return;
	}
	/* wait for whichever direction the step needs next */
	if (s5_watch(s, s->fd, s->out_off < s->out_len ? EV_WRITE : EV_READ, 0) == -1)
		s5_finish(s, 0, "out of memory");
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
