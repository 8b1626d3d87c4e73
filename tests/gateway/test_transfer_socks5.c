/*
 * The Barev file data plane (barevlink/socks5*.c) on ::1: a file goes from
 * our sender to our receiver byte-identical; the receiver skips a dead
 * streamhost; a connection from another address is refused; a short file
 * ends in a failure on both sides; a pascal-style sender (odd SOCKS5 reply,
 * never closes) completes by the byte count.  And which streamhosts a
 * peer's offer may make the gateway connect to (gateway/transfer/transfer_limits.c):
 * only the peer's own address, never the gateway's or a local one.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "socks5.h"
#include "transfer_limits.h"

static int failures;
/* always evaluated, unlike MUST() under NDEBUG */
#define MUST(c) do { if (!(c)) { perror(#c); abort(); } } while (0)
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
	__FILE__, __LINE__, #c); failures++; } } while (0)

struct end {
	int done, ok, connected;
	char why[128];
	struct event_base *base;
	int *pending;
};

static void
on_connected(void *arg, size_t i)
{
	struct end *e = arg;

	(void)i;
	e->connected++;
}

static void
on_done(void *arg, int ok, const char *why)
{
	struct end *e = arg;

	e->done++;
	e->ok = ok;
	snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
	if (--*e->pending == 0)
		event_base_loopbreak(e->base);
}

static const struct s5_events evs = { on_connected, on_done };

static int
tmpfile_with(const unsigned char *data, size_t n)
{
	char path[256];
	const char *dir = getenv("TEST_TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/s5-XXXXXX", dir ? dir : "/tmp");
	fd = mkstemp(path);
	MUST(fd != -1);
	unlink(path);
	if (n)
		MUST(write(fd, data, n) == (ssize_t)n);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static unsigned char *
read_all(int fd, size_t n)
{
	unsigned char *b = malloc(n + 1);

	MUST(pread(fd, b, n, 0) == (ssize_t)n);
	return b;
}

static void
run(struct event_base *base, int secs)
{
	struct timeval tv = { secs, 0 };

	event_base_loopexit(base, &tv);	/* a bound, not a synchroniser */
	event_base_dispatch(base);
}

/* append: the spool file takes no splice (O_APPEND), so the receiver
 * copies through its buffer (made then, not at the start) */
static void
test_roundtrip(struct event_base *base, size_t size, int dead_first, int append)
{
	unsigned char *data = malloc(size + 1);
	int src, dst, pending = 2;
	struct end se = { .base = base, .pending = &pending };
	struct end re = { .base = base, .pending = &pending };
	char dstaddr[41];
	uint16_t port;
	struct s5 *snd, *rcv;
	struct s5_host hosts[2];

	for (size_t i = 0; i < size; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 11));
	src = tmpfile_with(data, size);
	dst = tmpfile_with(NULL, 0);
	if (append)
		MUST(fcntl(dst, F_SETFL, fcntl(dst, F_GETFL) | O_APPEND) == 0);
	s5_dst_addr("sid1", "bob@201:2::2", "alice@201:1::1", dstaddr);
	CHECK(strlen(dstaddr) == 40);
	snd = s5_send_start(base, &(struct s5_send_params){ .bind_addr = "::1",
	    .peer_addr = "::1", .dst = dstaddr, .fd = src, .size = size },
	    &evs, &se, &port);
	CHECK(snd != NULL);
	CHECK(port >= S5_PORT_MIN && port <= S5_PORT_MAX);
	hosts[0].host = "::1";
	hosts[0].port = 1;		/* nothing listens there */
	hosts[1].host = "::1";
	hosts[1].port = port;
	rcv = s5_recv_start(base, &(struct s5_recv_params){ .src_addr = "::1",
	    .hosts = dead_first ? hosts : hosts + 1, .nhosts = dead_first ? 2 : 1,
	    .dst = dstaddr, .size = size, .fd = dst }, &evs, &re);
	CHECK(rcv != NULL);
	run(base, 20);
	CHECK(se.done == 1 && se.ok == 1);
	CHECK(re.done == 1 && re.ok == 1);
	CHECK(re.connected == 1 && se.connected == 1);
	CHECK(s5_bytes(rcv) == size && s5_bytes(snd) == size);
	if (re.ok) {
		unsigned char *got = read_all(dst, size);

		CHECK(memcmp(got, data, size) == 0);
		free(got);
	}
	if (!se.ok || !re.ok)
		fprintf(stderr, "sender: %s / receiver: %s\n", se.why, re.why);
	s5_free(snd);
	s5_free(rcv);
	close(src);
	close(dst);
	free(data);
}

/* The sender only takes data connections from the peer's address. */
static void
test_foreign_refused(struct event_base *base)
{
	int src = tmpfile_with((const unsigned char *)"abc", 3), dst = tmpfile_with(NULL, 0);
	int pending = 2;
	struct end se = { .base = base, .pending = &pending };
	struct end re = { .base = base, .pending = &pending };
	char dstaddr[41];
	uint16_t port;
	struct s5 *snd, *rcv;
	struct s5_host h = { "::1", 0 };

	s5_dst_addr("sid2", "a@201::1", "b@201::2", dstaddr);
	snd = s5_send_start(base, &(struct s5_send_params){ .bind_addr = "::1",
	    .peer_addr = "201:2::2", .dst = dstaddr, .fd = src, .size = 3,
	    .accept_timeout_ms = 1500 }, &evs, &se, &port);
	CHECK(snd != NULL);
	h.port = port;
	rcv = s5_recv_start(base, &(struct s5_recv_params){ .hosts = &h, .nhosts = 1,
	    .dst = dstaddr, .size = 3, .fd = dst, .connect_timeout_ms = 1000 },
	    &evs, &re);
	run(base, 10);
	CHECK(s5_refused(snd) == 1);
	CHECK(re.done == 1 && re.ok == 0);
	CHECK(se.done == 1 && se.ok == 0);	/* accept timeout */
	CHECK(strstr(se.why, "never connected") != NULL);
	s5_free(snd);
	s5_free(rcv);
	close(src);
	close(dst);
}

/* The file is shorter than announced: both sides fail, nobody hangs. */
static void
test_short_file(struct event_base *base)
{
	int src = tmpfile_with((const unsigned char *)"only ten b", 10), dst = tmpfile_with(NULL, 0);
	int pending = 2;
	struct end se = { .base = base, .pending = &pending };
	struct end re = { .base = base, .pending = &pending };
	char dstaddr[41];
	uint16_t port;
	struct s5 *snd, *rcv;
	struct s5_host h = { "::1", 0 };

	s5_dst_addr("sid3", "a@201::1", "b@201::2", dstaddr);
	snd = s5_send_start(base, &(struct s5_send_params){ .bind_addr = "::1",
	    .peer_addr = "::1", .dst = dstaddr, .fd = src, .size = 100 }, &evs, &se, &port);
	h.port = port;
	rcv = s5_recv_start(base, &(struct s5_recv_params){ .hosts = &h, .nhosts = 1,
	    .dst = dstaddr, .size = 100, .fd = dst }, &evs, &re);
	run(base, 10);
	CHECK(se.done == 1 && se.ok == 0);
	CHECK(re.done == 1 && re.ok == 0);
	CHECK(strstr(re.why, "after 10 of 100") != NULL);
	s5_free(snd);
	s5_free(rcv);
	close(src);
	close(dst);
}

/* pascal as the sender: reply 05 00 00 03 14 + 20 zero bytes, data right
 * behind it in the same write, and the connection never closes. */
struct pascal { int lfd; int conn; };

static void *
pascal_sender(void *arg)
{
	struct pascal *p = arg;
	unsigned char out[27 + 5000];
	int fd = accept(p->lfd, NULL, NULL);

	MUST(fd != -1);
	MUST(recv(fd, out, 3, MSG_WAITALL) == 3);
	MUST(send(fd, "\x05\x00", 2, 0) == 2);
	MUST(recv(fd, out, 47, MSG_WAITALL) == 47);
	memcpy(out, "\x05\x00\x00\x03\x14", 5);
	memset(out + 5, 0, 22);
	for (int i = 0; i < 5000; i++)
		out[27 + i] = (unsigned char)i;
	MUST(send(fd, out, sizeof(out), 0) == (ssize_t)sizeof(out));
	p->conn = fd;		/* left open, like pascal */
	return NULL;
}

static void
test_pascal_sender(struct event_base *base)
{
	struct pascal p = { -1, -1 };
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(sa);
	pthread_t th;
	int dst = tmpfile_with(NULL, 0), pending = 1;
	struct end re = { .base = base, .pending = &pending };
	struct s5_host h = { "::1", 0 };
	struct s5 *rcv;
	unsigned char *got;

	p.lfd = socket(AF_INET6, SOCK_STREAM, 0);
	MUST(bind(p.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(p.lfd, 1) == 0);
	getsockname(p.lfd, (struct sockaddr *)&sa, &len);
	h.port = ntohs(sa.sin6_port);
	pthread_create(&th, NULL, pascal_sender, &p);
	rcv = s5_recv_start(base, &(struct s5_recv_params){ .hosts = &h, .nhosts = 1,
	    .dst = "0123456789012345678901234567890123456789", .size = 5000, .fd = dst },
	    &evs, &re);
	run(base, 10);
	pthread_join(th, NULL);
	CHECK(re.done == 1 && re.ok == 1);
	got = read_all(dst, 5000);
	for (int i = 0; i < 5000; i++)
		if (got[i] != (unsigned char)i) {
			CHECK(!"pascal's bytes arrive intact");
			break;
		}
	free(got);
	s5_free(rcv);
	close(p.conn);
	close(p.lfd);
	close(dst);
}

/*
 * The receiver hangs up mid-file (a cancel on the Barev side is just a
 * close, BAREV.md §6.6) and the sender's done callback frees the sender,
 * as the gateway does: the sender fails with the reason and touches
 * nothing after its callback (ASan would say so).
 */
struct hangup {
	struct s5 *snd, *rcv;
	int sdone, sok, rconnected;
	char why[128];
	struct event_base *base;
};

static void
hangup_free_rcv(evutil_socket_t fd, short what, void *arg)
{
	struct hangup *h = arg;

	(void)fd;
	(void)what;
	s5_free(h->rcv);
	h->rcv = NULL;
}

static void
hangup_rcv_connected(void *arg, size_t i)
{
	struct hangup *h = arg;

	(void)i;
	if (h->rconnected++ == 0)
		event_base_once(h->base, -1, EV_TIMEOUT, hangup_free_rcv, h, NULL);
}

static void
hangup_rcv_done(void *arg, int ok, const char *why)
{
	(void)arg;
	(void)ok;
	(void)why;
}

static void
hangup_snd_done(void *arg, int ok, const char *why)
{
	struct hangup *h = arg;

	h->sdone++;
	h->sok = ok;
	snprintf(h->why, sizeof(h->why), "%s", why ? why : "");
	s5_free(h->snd);	/* what out_s5_done does */
	h->snd = NULL;
	event_base_loopbreak(h->base);
}

static void
test_receiver_hangs_up(struct event_base *base)
{
	static const struct s5_events sevs = { NULL, hangup_snd_done };
	static const struct s5_events revs = { hangup_rcv_connected, hangup_rcv_done };
	size_t size = (size_t)64 << 20;
	int src = tmpfile_with(NULL, 0), dst = tmpfile_with(NULL, 0);
	struct hangup h = { .base = base };
	char dstaddr[41];
	uint16_t port;
	struct s5_host host = { "::1", 0 };

	MUST(ftruncate(src, (off_t)size) == 0);
	s5_dst_addr("sid-hangup", "a@201::1", "b@201::2", dstaddr);
	h.snd = s5_send_start(base, &(struct s5_send_params){ .bind_addr = "::1",
	    .peer_addr = "::1", .dst = dstaddr, .fd = src, .size = size },
	    &sevs, &h, &port);
	CHECK(h.snd != NULL);
	host.port = port;
	h.rcv = s5_recv_start(base, &(struct s5_recv_params){ .src_addr = "::1",
	    .hosts = &host, .nhosts = 1, .dst = dstaddr, .size = size, .fd = dst },
	    &revs, &h);
	CHECK(h.rcv != NULL);
	run(base, 20);
	CHECK(h.rconnected == 1);
	CHECK(h.sdone == 1 && h.sok == 0);
	CHECK(strstr(h.why, "closed") != NULL || strstr(h.why, "reset") != NULL);
	if (h.sdone != 1 || h.sok != 0)
		fprintf(stderr, "sender: done %d ok %d: %s\n", h.sdone, h.sok, h.why);
	if (h.snd)
		s5_free(h.snd);
	if (h.rcv)
		s5_free(h.rcv);
	close(src);
	close(dst);
}

/* issue 15 item 3: a streamhost is a connect the peer makes us do */
static void
test_streamhost_rules(void)
{
	static const char *const own[] = { "201:1::1", "0300:1234:5678:9abc::a" };
	const char *peer = "201:2::2";
	uint16_t port = 0;

	/* what purple and pascal send: their own address, 50000 */
	CHECK(xl_streamhost("201:2::2", "50000", peer, own, 2, &port) == XL_SH_OK);
	CHECK(port == 50000);
	/* another textual form of the same address (pascal's zero padding) */
	port = 0;
	CHECK(xl_streamhost("0201:0002::0002", "50001", peer, own, 2, &port) == XL_SH_OK);
	CHECK(port == 50001);
	/* another Yggdrasil address: was accepted (any 200::/7), now not */
	CHECK(xl_streamhost("201:5::5", "50000", peer, own, 2, &port) == XL_SH_ELSEWHERE);
	CHECK(xl_streamhost("200:2::3", "50000", peer, own, 2, &port) == XL_SH_ELSEWHERE);
	/* the gateway's own identity addresses, any form, any port */
	CHECK(xl_streamhost("201:1::1", "5347", peer, own, 2, &port) == XL_SH_OWN);
	CHECK(xl_streamhost("300:1234:5678:9abc:0:0:0:a", "1337", peer, own, 2, &port) ==
	    XL_SH_OWN);
	/* even when the contact claims to be on one of them */
	CHECK(xl_streamhost("201:1::1", "50000", "201:1::1", own, 2, &port) == XL_SH_OWN);
	/* local and special addresses, even as the peer's own */
	CHECK(xl_streamhost("::1", "50000", "::1", own, 2, &port) == XL_SH_SPECIAL);
	CHECK(xl_streamhost("::", "50000", peer, own, 2, &port) == XL_SH_SPECIAL);
	CHECK(xl_streamhost("::ffff:127.0.0.1", "22", peer, own, 2, &port) == XL_SH_SPECIAL);
	CHECK(xl_streamhost("ff02::1", "50000", peer, own, 2, &port) == XL_SH_SPECIAL);
	CHECK(xl_streamhost("fe80::1", "50000", peer, own, 2, &port) == XL_SH_SPECIAL);
	/* not an IPv6 address and port */
	CHECK(xl_streamhost("127.0.0.1", "50000", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("bob.example", "50000", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost(NULL, "50000", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("201:2::2", NULL, peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("201:2::2", "0", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("201:2::2", "65536", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("201:2::2", "50000x", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("201:2::2", "-1", peer, own, 2, &port) == XL_SH_BAD);
	CHECK(xl_streamhost("201:2::2", "", peer, own, 2, &port) == XL_SH_BAD);
	/* no own addresses known: still only the peer's */
	CHECK(xl_streamhost("201:2::2", "65535", peer, NULL, 0, &port) == XL_SH_OK);
	CHECK(port == 65535);
	CHECK(strcmp(xl_streamhost_why(XL_SH_OWN), "one of the gateway's own addresses") == 0);
}

int
main(void)
{
	struct event_base *base = event_base_new();
	char h[41];

	/* transcripts/purple-pascal/05: pascal hashed its own upper-case form */
	s5_dst_addr("0", "alice@0200:0001::0001", "bob@200:2::2", h);
	CHECK(strcmp(h, "aa5fec79afee82d0f14cb88c1b13e631690094ff") == 0);

	test_roundtrip(base, 3 * 1024 * 1024 + 17, 0, 0);
	test_roundtrip(base, 3 * 1024 * 1024 + 17, 0, 1);
	test_roundtrip(base, 0, 0, 0);
	test_roundtrip(base, 1000, 1, 0);
	test_foreign_refused(base);
	test_short_file(base);
	test_pascal_sender(base);
	test_receiver_hangs_up(base);
	test_streamhost_rules();
	event_base_free(base);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures != 0;
}
