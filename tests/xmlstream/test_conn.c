/*
 * xs_conn over a socketpair on a real event loop: what arrives becomes
 * callbacks, a silent peer times out, paced output reaches the other side
 * one unit per read, a local close flushes first, and a peer that breaks
 * the rules finds the socket closed.  The test reads the peer's end with
 * bounded polls; the loop runs until a condition or a deadline.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "xmlstream.h"
#include "../check.h"

#define HDR "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<stream:stream " \
	"xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/" \
	"streams\" from=\"bob@200:2::2\" to=\"alice@200:1::1\">"

static struct event_base *base;

struct side {
	struct xs_conn	*c;
	int		 peer;		/* the other end, blocking */
	int		 headers;
	int		 n;
	char		*st[16];
	int		 closed;
	enum xs_close	 why;
	int		 free_on_close;
	int		 free_on_stanza;
};

static void
on_header(void *arg, xmpp_stanza_t *h)
{
	struct side *s = arg;

	(void)h;
	s->headers++;
}

static void
on_stanza(void *arg, xmpp_stanza_t *st)
{
	struct side *s = arg;

	if (s->n < 16)
		s->st[s->n] = xs_serialize_str(st, XS_SER_SELFCLOSE, NULL);
	s->n++;
	if (s->free_on_stanza == s->n) {
		xs_conn_free(s->c);
		s->c = NULL;
	}
}

static void
on_close(void *arg, enum xs_close why, const char *detail)
{
	struct side *s = arg;

	(void)detail;
	s->closed++;
	s->why = why;
	if (s->free_on_close) {
		xs_conn_free(s->c);
		s->c = NULL;
	}
}

static const struct xs_callbacks cbs = { on_header, on_stanza, on_close };

static void
side_open(struct side *s, const struct xs_limits *lim)
{
	int sv[2];

	memset(s, 0, sizeof *s);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	evutil_make_socket_nonblocking(sv[0]);
	s->peer = sv[1];
	s->c = xs_conn_new(base, sv[0], lim, &cbs, s);
	CHECK(s->c != NULL);
}

static void
side_close(struct side *s)
{
	int i;

	if (s->c != NULL)
		xs_conn_free(s->c);
	close(s->peer);
	for (i = 0; i < s->n && i < 16; i++)
		free(s->st[i]);
}

static void
peer_write(struct side *s, const char *bytes)
{
	CHECK(write(s->peer, bytes, strlen(bytes)) == (ssize_t)strlen(bytes));
}

/* What the peer can read within `ms`: -1 nothing, 0 EOF, else bytes. */
static ssize_t
peer_read(struct side *s, char *buf, size_t cap, int ms)
{
	struct pollfd pfd = { s->peer, POLLIN, 0 };
	ssize_t n;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	n = read(s->peer, buf, cap - 1);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static int deadline_hit;

static void
deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	deadline_hit = 1;
}

/* Run the loop until *flag >= want or `ms` pass; returns whether met. */
static int
run_until(int *flag, int want, int ms)
{
	struct event *t = evtimer_new(base, deadline, NULL);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	deadline_hit = 0;
	evtimer_add(t, &tv);
	while (*flag < want && !deadline_hit)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *flag >= want;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
test_stanza_in(void)
{
	struct side s;

	side_open(&s, NULL);
	peer_write(&s, HDR "<presence></presence><message to='alice@200:1::1'"
	    " type='chat'><body>hello</body></message>");
	CHECK(run_until(&s.n, 2, 2000));
	CHECK(s.headers == 1 && s.closed == 0);
	CHECK_STR(s.st[0], "<presence/>");
	CHECK_STR(s.st[1], "<message to=\"alice@200:1::1\" type=\"chat\">"
	    "<body>hello</body></message>");
	/* Peer ends the stream: socket closed, reason reported. */
	peer_write(&s, "</stream:stream>");
	CHECK(run_until(&s.closed, 1, 2000));
	CHECK(s.why == XS_END_STREAM);
	{
		char buf[64];

		CHECK(peer_read(&s, buf, sizeof buf, 1000) == 0);
	}
	side_close(&s);
}

static void
test_header_timeout(void)
{
	struct xs_limits lim = { .header_timeout_ms = 50 };
	struct side s;
	char buf[64];
	int never = 0;

	side_open(&s, &lim);
	s.free_on_close = 1;
	CHECK(run_until(&s.closed, 1, 2000));
	CHECK(s.why == XS_ERR_HEADER_TIMEOUT && s.c == NULL);
	CHECK(peer_read(&s, buf, sizeof buf, 1000) == 0);
	side_close(&s);

	/* A header in time stops the timer. */
	side_open(&s, &lim);
	peer_write(&s, HDR);
	CHECK(run_until(&s.headers, 1, 2000));
	run_until(&never, 1, 150);
	CHECK(s.closed == 0);
	side_close(&s);
}

/* Three units, each must be one read on the other side. */
static void
paced(unsigned pace_ms)
{
	static const char *const units[] = {
		HDR, "<presence></presence>", "<iq type='result' id='1'/>",
	};
	struct side s;
	char buf[1024];
	double t[3];
	int got = 0, i;
	xmpp_stanza_t *iq;
	ssize_t n;

	side_open(&s, NULL);
	xs_conn_set_pace(s.c, pace_ms);
	CHECK(xs_conn_send_raw(s.c, units[0], strlen(units[0])) == 0);
	CHECK(xs_conn_send_raw(s.c, units[1], strlen(units[1])) == 0);
	iq = xmpp_iq_new(xs_ctx(), "result", "1");
	CHECK(xs_conn_send(s.c, iq, XS_SER_SINGLE_QUOTES | XS_SER_SELFCLOSE)
	    == 0);
	xmpp_stanza_release(iq);
	CHECK(xs_conn_pending(s.c) == strlen(units[0]) + strlen(units[1]) +
	    strlen(units[2]));
	deadline_hit = 0;
	{
		struct event *dl = evtimer_new(base, deadline, NULL);
		struct timeval tv = { 2, 0 };

		evtimer_add(dl, &tv);
		while (got < 3 && !deadline_hit) {
			event_base_loop(base, EVLOOP_ONCE);
			while (got < 3 &&
			    (n = peer_read(&s, buf, sizeof buf, 0)) > 0) {
				t[got] = now_ms();
				if (strcmp(buf, units[got]) != 0)
					fprintf(stderr, "  read %d: %s\n", got,
					    buf);
				CHECK(strcmp(buf, units[got]) == 0);
				got++;
			}
		}
		event_free(dl);
	}
	CHECK(got == 3);
	CHECK(xs_conn_pending(s.c) == 0);
	for (i = 1; pace_ms > 0 && i < got; i++)
		CHECK(t[i] - t[i - 1] >= pace_ms * 0.8);
	side_close(&s);
}

static void
test_paced_output(void)
{
	paced(30);
	paced(0);
}

/*
 * The write-done callback: once per unit the kernel took, from the loop
 * (never inside the send), with nothing left pending by the last one; a
 * peer that reads nothing gets no call once its socket buffer is full.
 */
static int written_calls;
static size_t written_pending;	/* xs_conn_pending() at the last call */

static void
on_written(void *arg)
{
	struct side *s = arg;	/* the connection's own arg */

	written_calls++;
	written_pending = xs_conn_pending(s->c);
}

static void
test_written_callback(void)
{
	struct side s;
	char buf[70000];
	int before, sndbuf = 4096;
	size_t i;

	side_open(&s, NULL);
	written_calls = 0;
	xs_conn_on_written(s.c, on_written);
	CHECK(xs_conn_send_raw(s.c, HDR, strlen(HDR)) == 0);
	CHECK(xs_conn_send_raw(s.c, "<presence></presence>", 21) == 0);
	CHECK(written_calls == 0);		/* not inside the send */
	CHECK(run_until(&written_calls, 2, 2000));
	CHECK(written_pending == 0);
	CHECK(xs_conn_pending(s.c) == 0);

	/* the peer reads nothing: units pile up, the calls stop */
	CHECK(setsockopt(xs_conn_fd(s.c), SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    sizeof sndbuf) == 0);
	memset(buf, 'x', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	for (i = 0; i < 8; i++)
		CHECK(xs_conn_send_raw(s.c, buf, sizeof buf - 1) == 0);
	before = written_calls;
	(void)run_until(&written_calls, before + 8, 300);
	CHECK(written_calls < before + 8);
	CHECK(xs_conn_pending(s.c) > 0);
	side_close(&s);
}

/* paced: what on_written sends waits its turn too (a receipt's ping right
 * after its message must not share one of pascal's reads) */
static int answered;

static void
send_on_written(void *arg)
{
	struct side *s = arg;

	if (answered++ == 0)
		CHECK(xs_conn_send_raw(s->c, "<b/>", 4) == 0);
}

static void
test_paced_send_from_written(void)
{
	struct side s;
	char buf[64];
	double t0 = 0, t1 = 0;
	int got = 0;
	ssize_t n;

	side_open(&s, NULL);
	answered = 0;
	xs_conn_set_pace(s.c, 50);
	xs_conn_on_written(s.c, send_on_written);
	CHECK(xs_conn_send_raw(s.c, "<a/>", 4) == 0);
	deadline_hit = 0;
	{
		struct event *dl = evtimer_new(base, deadline, NULL);
		struct timeval tv = { 2, 0 };

		evtimer_add(dl, &tv);
		while (got < 2 && !deadline_hit) {
			event_base_loop(base, EVLOOP_ONCE);
			while (got < 2 &&
			    (n = peer_read(&s, buf, sizeof buf, 0)) > 0) {
				CHECK_STR(buf, got == 0 ? "<a/>" : "<b/>");
				*(got == 0 ? &t0 : &t1) = now_ms();
				got++;
			}
		}
		event_free(dl);
	}
	CHECK(got == 2);
	CHECK(t1 - t0 >= 40);
	side_close(&s);
}

static void
test_close_flushes(void)
{
	struct side s;
	char want[4096], got[4096], unit[64];
	size_t have = 0;
	ssize_t n;
	int i;

	side_open(&s, NULL);
	xs_conn_set_pace(s.c, 5);
	want[0] = '\0';
	for (i = 0; i < 5; i++) {
		snprintf(unit, sizeof unit, "<message><body>%d</body></message>",
		    i);
		strcat(want, unit);
		CHECK(xs_conn_send_raw(s.c, unit, strlen(unit)) == 0);
	}
	strcat(want, "</stream:stream>");
	CHECK(xs_conn_send_raw(s.c, "</stream:stream>", 16) == 0);
	xs_conn_close(s.c, 2000);
	CHECK(s.closed == 0);		/* never from inside the call */
	CHECK(xs_conn_send_raw(s.c, "late", 4) == -1);
	CHECK(run_until(&s.closed, 1, 3000));
	CHECK(s.why == XS_CLOSED_LOCAL);
	while ((n = peer_read(&s, got + have, sizeof got - have, 1000)) > 0)
		have += n;
	CHECK(n == 0);			/* EOF after everything */
	got[have] = '\0';
	CHECK_STR(got, want);
	side_close(&s);

	/* A peer that reads nothing: linger bounds the wait. */
	side_open(&s, NULL);
	{
		static char big[256 * 1024];
		double t0;

		memset(big, 'x', sizeof big);
		for (i = 0; i < 8; i++)
			xs_conn_send_raw(s.c, big, sizeof big);
		t0 = now_ms();
		xs_conn_close(s.c, 100);
		CHECK(run_until(&s.closed, 1, 3000));
		CHECK(s.why == XS_CLOSED_LOCAL);
		CHECK(now_ms() - t0 < 1500);
	}
	side_close(&s);
}

/* Like side_open, over loopback TCP: a socketpair never resets. */
static void
side_open_tcp(struct side *s)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int l, ours;

	memset(s, 0, sizeof *s);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK((l = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	CHECK(bind(l, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&sin, &len) == 0);
	CHECK((s->peer = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	CHECK(connect(s->peer, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK((ours = accept(l, NULL, NULL)) != -1);
	close(l);
	evutil_make_socket_nonblocking(ours);
	s->c = xs_conn_new(base, ours, NULL, &cbs, s);
	CHECK(s->c != NULL);
}

/* The peer writes what we will not have read when we close. */
static void
peer_floods(struct side *s, size_t bytes)
{
	static const char unit[] = "<message><body>unread</body></message>";
	size_t sent = 0;

	peer_write(s, HDR);
	while (sent < bytes) {
		peer_write(s, unit);
		sent += sizeof unit - 1;
	}
}

/*
 * Everything the peer can read after our close: *out gets the bytes, the
 * return is 0 for a clean EOF, else the errno that ended it (ECONNRESET
 * when the kernel reset the connection).  The loop runs meanwhile.
 */
static int
peer_read_to_end(struct side *s, char *out, size_t cap, int *closed_flag)
{
	struct pollfd pfd = { s->peer, POLLIN, 0 };
	size_t have = 0;
	double t0 = now_ms();
	ssize_t n;

	out[0] = '\0';
	while (now_ms() - t0 < 5000) {
		if (*closed_flag == 0)
			event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 10) != 1)
			continue;
		n = recv(s->peer, out + have, cap - 1 - have, 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return errno;
		have += (size_t)n;
		out[have] = '\0';
		if (have == cap - 1)
			return -1;
	}
	return ETIMEDOUT;
}

/*
 * A close with the peer's input unread must still end in a FIN after our
 * goodbye: Linux answers close() with unread input by a reset, which can
 * take our last bytes (the goodbye) with it — pipes closed when the user
 * went offline lost their unavailable presence that way.
 */
static void
test_close_with_unread_input(void)
{
	struct side s;
	char got[4096];
	int rc, never = 0;

	/* The peer answers our FIN with its own: the close ends then. */
	side_open_tcp(&s);
	peer_floods(&s, 32 * 1024);
	CHECK(xs_conn_send_raw(s.c, "</stream:stream>", 16) == 0);
	xs_conn_close(s.c, 3000);
	rc = peer_read_to_end(&s, got, sizeof got, &s.closed);
	CHECK(rc == 0);				/* EOF, not ECONNRESET */
	CHECK_STR(got, "</stream:stream>");
	CHECK(s.closed == 0);			/* it waits for the peer's FIN */
	shutdown(s.peer, SHUT_WR);
	CHECK(run_until(&s.closed, 1, 3000));
	CHECK(s.why == XS_CLOSED_LOCAL);
	CHECK(s.n == 0);			/* nothing parsed after close */
	side_close(&s);

	/* A peer that never closes: the linger time ends it, still clean. */
	side_open_tcp(&s);
	peer_floods(&s, 32 * 1024);
	CHECK(xs_conn_send_raw(s.c, "</stream:stream>", 16) == 0);
	xs_conn_close(s.c, 200);
	CHECK(run_until(&s.closed, 1, 3000));
	CHECK(s.why == XS_CLOSED_LOCAL);
	rc = peer_read_to_end(&s, got, sizeof got, &s.closed);
	CHECK(rc == 0);
	CHECK_STR(got, "</stream:stream>");
	side_close(&s);

	/* Freed at once by its owner, input unread: a FIN all the same. */
	side_open_tcp(&s);
	peer_floods(&s, 32 * 1024);
	run_until(&never, 1, 0);
	xs_conn_free(s.c);
	s.c = NULL;
	rc = peer_read_to_end(&s, got, sizeof got, &never);
	CHECK(rc == 0);
	side_close(&s);
}

/* An owner giving up on a talking peer first gets what it already sent. */
static void
test_read_now(void)
{
	struct side s;
	int i;

	side_open_tcp(&s);
	peer_write(&s, HDR);
	for (i = 0; i < 5; i++)
		peer_write(&s, "<message><body>late</body></message>");
	/* no loop turn: only read_now can have read them */
	CHECK(s.n == 0);
	CHECK(xs_conn_read_now(s.c) == 0);
	CHECK(s.headers == 1 && s.n == 5);
	CHECK(s.closed == 0);
	peer_write(&s, "</stream:stream>");
	CHECK(xs_conn_read_now(s.c) == 0);
	CHECK(s.closed == 1 && s.why == XS_END_STREAM);
	side_close(&s);
}

static void
test_bad_peer_closed(void)
{
	static const char *const bad[] = {
		"<a></b>", "<message>\xff</message>",
		"<!DOCTYPE x [<!ENTITY a 'b'>]>", "<message>&ent;</message>",
	};
	static const enum xs_close why[] = {
		XS_ERR_XML, XS_ERR_XML, XS_ERR_DTD, XS_ERR_DTD,
	};
	struct side s;
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		side_open(&s, NULL);
		s.free_on_close = 1;
		xs_conn_send_raw(s.c, "<stream:stream>", 15);
		peer_write(&s, i == 2 ? "" : HDR);
		peer_write(&s, bad[i]);
		CHECK(run_until(&s.closed, 1, 2000));
		CHECK(s.why == why[i] && s.c == NULL);
		/* Whatever was written before, then EOF. */
		while (peer_read(&s, buf, sizeof buf, 1000) > 0)
			;
		CHECK(peer_read(&s, buf, sizeof buf, 1000) == 0);
		side_close(&s);
	}

	/* Oversize stanza with a small limit. */
	{
		struct xs_limits lim = { .max_stanza = 100 };
		char big[300];

		side_open(&s, &lim);
		s.free_on_close = 1;
		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = '\0';
		peer_write(&s, HDR "<message><body>");
		peer_write(&s, big);
		CHECK(run_until(&s.closed, 1, 2000));
		CHECK(s.why == XS_ERR_TOO_BIG);
		CHECK(peer_read(&s, buf, sizeof buf, 1000) == 0);
		side_close(&s);
	}
}

static void
test_eof_and_free_in_callbacks(void)
{
	struct side s;

	side_open(&s, NULL);
	peer_write(&s, HDR "<presence></presence>");
	CHECK(run_until(&s.n, 1, 2000));
	shutdown(s.peer, SHUT_WR);
	CHECK(run_until(&s.closed, 1, 2000));
	CHECK(s.why == XS_END_EOF);
	side_close(&s);

	/* Freed by the owner mid-read: nothing more is delivered. */
	side_open(&s, NULL);
	s.free_on_stanza = 1;
	peer_write(&s, HDR "<presence></presence><presence></presence>"
	    "</stream:stream>");
	CHECK(run_until(&s.n, 1, 2000));
	{
		int never = 0;

		run_until(&never, 1, 50);
	}
	CHECK(s.n == 1 && s.closed == 0 && s.c == NULL);
	side_close(&s);

	/* Writing to a peer that went away reports, does not kill us. */
	side_open(&s, NULL);
	s.free_on_close = 1;
	close(s.peer);
	s.peer = -1;
	xs_conn_send_raw(s.c, HDR, strlen(HDR));
	CHECK(run_until(&s.closed, 1, 2000));
	CHECK(s.why == XS_ERR_IO || s.why == XS_END_EOF);
	side_close(&s);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (xs_init() != 0)
		return 2;
	base = event_base_new();
	RUN(test_stanza_in);
	RUN(test_header_timeout);
	RUN(test_paced_output);
	RUN(test_written_callback);
	RUN(test_paced_send_from_written);
	RUN(test_close_flushes);
	RUN(test_close_with_unread_input);
	RUN(test_read_now);
	RUN(test_bad_peer_closed);
	RUN(test_eof_and_free_in_callbacks);
	event_base_free(base);
	xs_shutdown();
	return CHECK_EXIT();
}
