/*
 * socks5 — the Barev file data plane (see socks5.h; BAREV.md §6): one
 * data connection, whichever side it is.  The receiver is
 * socks5_recv.c, the sender socks5_send.c; socks5_int.h is what they
 * share.
 *
 * One idea: a transfer is a small state machine over one socket, with one
 * fd event and one timer; every end goes through s5_finish(), which
 * releases the sockets before it tells the owner.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <strophe.h>

#include "socks5.h"
#include "socks5_int.h"

static void s5_fd_cb(evutil_socket_t fd, short what, void *arg);
static void s5_tmr_cb(evutil_socket_t fd, short what, void *arg);


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
int
s5_watch(struct s5 *s, int fd, short what, unsigned timeout_ms)
{
	struct timeval tv;

	if (s->ev)
		event_free(s->ev);
	if ((s->ev = event_new(s->base, fd, what, s5_fd_cb, s)) == NULL)
		return -1;
	ms_tv(timeout_ms, &tv);
	return event_add(s->ev, timeout_ms ? &tv : NULL);
}

void
s5_timer(struct s5 *s, unsigned ms)
{
	struct timeval tv;

	ms_tv(ms, &tv);
	event_add(s->tmr, &tv);
}

void
s5_close_conn(struct s5 *s)
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

void
s5_close_listener(struct s5 *s)
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
void
s5_finish(struct s5 *s, int ok, const char *why)
{
	if (s->state == S5_DONE)
		return;
	s->state = S5_DONE;
	s5_close_listener(s);
	s5_close_conn(s);
	if (s->tmr)
		event_del(s->tmr);
	if (s->cb.done)
		s->cb.done(s->arg, ok, why);
}

/* Write what is left of s->out; 1 all written, 0 wait, -1 error. */
int
s5_flush_out(struct s5 *s)
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
int
s5_fill_in(struct s5 *s)
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

void
s5_expect_bytes(struct s5 *s, size_t n)
{
	s->need = n;
	s->have = 0;
}

void
s5_queue_out(struct s5 *s, const void *p, size_t n)
{
	memcpy(s->out, p, n);
	s->out_len = n;
	s->out_off = 0;
}

/* A SOCKS5 request or reply naming the DST.ADDR hash as a domain (ATYP 3),
 * port 0: code is the command (1 CONNECT) or the reply (0 succeeded). */
void
s5_queue_dst(struct s5 *s, unsigned char code)
{
	s->out[0] = 5; s->out[1] = code; s->out[2] = 0; s->out[3] = 3; s->out[4] = 40;
	memcpy(s->out + 5, s->dst, 40);
	s->out[45] = 0; s->out[46] = 0;
	s->out_len = 47;
	s->out_off = 0;
}

void
s5_nonblock_nodelay(int fd)
{
	int one = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Bytes still to read after the 5-byte head of a SOCKS5 request/reply:
 * the rest of the address by ATYP, then the 2 port bytes; -1 unknown ATYP. */
int
s5_addr_rest(const unsigned char *head)
{
	switch (head[3]) {
	case 1: return 3 + 2;
	case 3: return head[4] + 2;
	case 4: return 15 + 2;
	default: return -1;
	}
}

/* ---- events ---- */

static void
s5_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s5 *s = arg;

	(void)fd;
	if (s->sender)
		s5_send_event(s, what);
	else
		s5_recv_event(s, what);
}

static void
s5_tmr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct s5 *s = arg;

	(void)fd;
	(void)what;
	switch (s->state) {
	case R_START:
		s5_recv_try_host(s);
		break;
	case R_CONNECT: case R_GREET: case R_REQUEST: case R_REPLY_REST:
		s5_recv_next_host(s, "timed out");
		break;
	case S_LISTEN:
		s5_finish(s, 0, "the receiver never connected for the data");
		break;
	case S_GREET: case S_METHODS: case S_REQUEST: case S_REQUEST_REST:
		s5_finish(s, 0, "the receiver's SOCKS5 handshake timed out");
		break;
	case S_DRAIN:
		s5_send_drain_tick(s);
		break;
	default:
		break;
	}
}

struct s5 *
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
uint64_t s5_bytes(const struct s5 *s) { return s->bytes; }
unsigned s5_refused(const struct s5 *s) { return s->refused; }

void
s5_free(struct s5 *s)
{
	if (s == NULL)
		return;
	s5_close_listener(s);
	s5_close_conn(s);
	s5_recv_pipe_close(s);
	if (s->tmr)
		event_free(s->tmr);
	for (size_t i = 0; i < s->nhosts; i++)
		free((char *)s->hosts[i].host);
	free(s->hosts);
	free(s->buf);
	free(s);
}
