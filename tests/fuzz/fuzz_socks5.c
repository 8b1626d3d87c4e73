/*
 * fuzz_socks5 — the SOCKS5 data plane (BAREV.md §6.3-6.6), both roles, on
 * real TCP connections over ::1 as a peer's bytes arrive.
 *
 * Input: [role] then the peer's bytes.
 *   role even: we receive a file.  The peer is the streamhost: the input is
 *     what it answers (method selection, connect reply, file bytes); a
 *     second streamhost that refuses the connection follows it.
 *   role odd: we send a file.  The peer connects to our data port: the input
 *     is its greeting, connect request and whatever follows.
 * The peer writes the input and reads until the gateway's side closes; the
 * transfer must finish (done) exactly once.  After writing, the peer shuts
 * its side down (EOF) unless role bits 1 and 2 are set; then it stays open
 * like purple and pascal do, and the gateway's timeouts end an input that
 * stops short.
 *
 * Timeouts run in virtual time: the gateway keeps its real ones (5 s here,
 * so none expires on the clock), and the loop fires the earliest pending
 * timeout itself once nothing can happen any more — no event active, none
 * of the watched sockets ready for GRACE_MS.  Both ends are in this process
 * on ::1, where the kernel delivers a byte within the send() that wrote it,
 * so that is the moment a real timer would have been the next event, and
 * an input costs its CPU instead of 50-100 ms of waiting per timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "netns.h"
#include "vtime.h"
#include "socks5.h"

/* DST.ADDR of the transcripts' first transfer (seeds.py puts it in) */
#define DST "aa5fec79afee82d0f14cb88c1b13e631690094ff"
#define FILE_SIZE 64
#define TIMEOUT_MS 5000		/* never reached on the clock (see above) */
#define GRACE_MS 1		/* quiet this long: fire the next timeout */

/*
 * The sender's data ports, reserved from the ephemeral range in the
 * harness's own network namespace (fz_own_netns, when root).  An input
 * makes 2-4 connections on ::1 and each leaves a TIME-WAIT for 60 s; at
 * 2,000 inputs a second the kernel hands out every ephemeral port of the
 * host in turn, 41000-41999 among them, and a port held by a connect()ed
 * socket's TIME-WAIT cannot be bound even with SO_REUSEADDR: after ~10^5
 * inputs every data port was taken and s5_send_start() had none.  That is
 * the harness's churn, not the gateway's (an operator runs far fewer
 * transfers, and docs/operators.md says to reserve the range too).
 */
#define DATA_PORTS "41000-41999"

struct run {
	struct event_base *base;
	struct s5 *s5;
	const uint8_t *data;
	size_t len, off;
	int fd;			/* the peer's socket */
	int lfd;		/* our streamhost's listener (receiver role) */
	int done;
	int half_close;		/* shut our side down after the input */
	struct event *rev, *wev, *lev;
};

static void
on_done(void *arg, int ok, const char *why)
{
	struct run *r = arg;

	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr, "transfer done: ok=%d %s\n", ok, why ? why : "");
	if (r->done++) {
		fprintf(stderr, "done called twice\n");
		abort();
	}
}

static void
on_connected(void *arg, size_t host)
{
	(void)arg;
	(void)host;
}

static const struct s5_events evs = { on_connected, on_done };

static void
peer_write(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	ssize_t n;

	(void)what;
	while (r->off < r->len) {
		n = send(fd, r->data + r->off, r->len - r->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			r->off = r->len;
			break;
		}
		r->off += (size_t)n;
	}
	if (r->half_close)
		shutdown(fd, SHUT_WR);
	event_del(r->wev);
}

static void
peer_read(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		/* the gateway is through: hang up, as a peer that has read
		 * everything does (a sender waits for that, BAREV.md §6.6) */
		event_del(r->rev);
		event_del(r->wev);
		close(fd);
		r->fd = -1;
	}
}

static void
peer_start(struct run *r, int fd)
{
	r->fd = fd;
	r->off = 0;
	r->rev = event_new(r->base, fd, EV_READ | EV_PERSIST, peer_read, r);
	r->wev = event_new(r->base, fd, EV_WRITE | EV_PERSIST, peer_write, r);
	if (r->rev == NULL || r->wev == NULL || event_add(r->rev, NULL) == -1 ||
	    event_add(r->wev, NULL) == -1)
		abort();
}

/* receiver role: our fake streamhost takes the (first) connection */
static void
host_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct run *r = arg;
	int fd;

	(void)what;
	if (r->rev != NULL)
		return;		/* the second host is never ours */
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) == -1)
		return;
	peer_start(r, fd);
}

static int
listen_any(uint16_t *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
	    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sl) == -1 ||
	    listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == -1)
		abort();
	*port = ntohs(sa.sin6_port);
	return fd;
}

static int
connect_to(uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
	    .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = htons(port) };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd == -1 || (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1 &&
	    errno != EINPROGRESS))
		abort();
	return fd;
}

/* One step of the loop in virtual time (vtime.c): run what is ready, or
 * wait GRACE_MS for a socket, or fire the earliest timeout. */
static void
step(struct event_base *base)
{
	if (fz_vtime_step(base, GRACE_MS, 1, -1, NULL, NULL) == -1) {
		fprintf(stderr, "nothing left to wait for, transfer not done\n");
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	struct run r = { .fd = -1, .lfd = -1 };
	int file;
	uint16_t port;
	struct timespec t0, t;
	char content[FILE_SIZE];

	if (!inited) {
		log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
		fz_own_netns(DATA_PORTS);
		inited = 1;
	}
	if (size < 1 || size > 64 * 1024)
		return 0;
	r.data = data + 1;
	r.len = size - 1;
	r.half_close = (data[0] & 6) != 6;
	if ((r.base = event_base_new()) == NULL ||
	    (file = memfd_create("fuzz-s5", 0)) == -1)
		abort();
	if (data[0] % 2 == 0) {
		struct s5_host hosts[2] = { { "::1", 0 }, { "::1", 1 } };
		struct s5_recv_params p = { .src_addr = "::1", .hosts = hosts,
		    .nhosts = 2, .dst = DST, .size = FILE_SIZE, .fd = file,
		    .connect_timeout_ms = TIMEOUT_MS,
		    .idle_timeout_ms = TIMEOUT_MS };

		r.lfd = listen_any(&hosts[0].port);
		r.lev = event_new(r.base, r.lfd, EV_READ | EV_PERSIST,
		    host_accept, &r);
		if (r.lev == NULL || event_add(r.lev, NULL) == -1)
			abort();
		r.s5 = s5_recv_start(r.base, &p, &evs, &r);
	} else {
		struct s5_send_params p = { .bind_addr = "::1",
		    .port_min = 41000, .port_max = 41999, .peer_addr = "::1",
		    .dst = DST, .fd = file, .size = FILE_SIZE,
		    .accept_timeout_ms = TIMEOUT_MS,
		    .idle_timeout_ms = TIMEOUT_MS,
		    .drain_timeout_ms = TIMEOUT_MS };

		memset(content, 'x', sizeof content);
		if (write(file, content, sizeof content) != sizeof content)
			abort();
		r.s5 = s5_send_start(r.base, &p, &evs, &r, &port);
		if (r.s5 != NULL)
			peer_start(&r, connect_to(port));
	}
	if (r.s5 == NULL)
		abort();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!r.done) {
		step(r.base);
		clock_gettime(CLOCK_MONOTONIC, &t);
		/* every step has a timeout, fired as soon as all is quiet:
		 * 40 s on the clock is a busy loop */
		if (t.tv_sec - t0.tv_sec > 40) {
			fprintf(stderr, "the transfer never finished\n");
			abort();
		}
	}
	s5_free(r.s5);
	if (r.rev != NULL)
		event_free(r.rev);
	if (r.wev != NULL)
		event_free(r.wev);
	if (r.lev != NULL)
		event_free(r.lev);
	if (r.fd != -1)
		close(r.fd);
	if (r.lfd != -1)
		close(r.lfd);
	close(file);
	event_base_free(r.base);
	return 0;
}
