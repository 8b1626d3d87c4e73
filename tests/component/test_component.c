/*
 * test_component — the XEP-0114 link against a fake server on 127.0.0.1.
 *
 * The fake server lives on the same event base as the component and speaks
 * from a script: it answers the stream header with a known id, checks the
 * <handshake> hash against a value computed outside this code base
 * (sha1sum), and then accepts, rejects (not-authorized, conflict) or hangs
 * up.  Every wait is bounded: the loop runs one round at a time until the
 * condition holds or a deadline timer fires.  The component's log lines are
 * captured from stderr and checked for the phrases operators grep for.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "component.h"
#include "log.h"
#include "xmlstream.h"

#define JID	"barev.test"
#define SECRET	"s3cret"
#define STREAM_ID "3BF9E6B1-id.42"
/* printf '%s' '3BF9E6B1-id.42s3cret' | sha1sum */
#define EXPECTED_HASH "16753cc398be9b7589c2b50a92ae584fb24177d8"

static int failures;
static struct event_base *base;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		failures++;						\
	}								\
} while (0)

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- bounded waiting ---- */

static int timed_out;

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = 1;
}

/* run the loop until pred() or ms elapsed; returns pred() */
static int
wait_for(int (*pred)(void), unsigned ms)
{
	struct event *dl = evtimer_new(base, deadline_cb, NULL);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	timed_out = 0;
	evtimer_add(dl, &tv);
	while ((pred == NULL || !pred()) && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(dl);
	return pred != NULL && pred();
}

/* ---- the fake server ---- */

/* FAKE_RESTARTS: up and restarted (system-shutdown, as Prosody says it),
 * conflict twice (the backoff grows), then up and restarted again */
enum fake_mode { FAKE_ACCEPT, FAKE_NOT_AUTHORIZED, FAKE_CONFLICT,
    FAKE_RESTARTS };

static struct fake {
	struct evconnlistener *l;
	uint16_t port;
	enum fake_mode mode;
	struct bufferevent *bev;
	int accepts;
	uint64_t accept_ms[64];
	char in[65536];
	size_t inlen;
	int sent_header;
	int handshakes;
	int hash_ok;
	int closing;
} fk;

static void
fake_drop(void)
{
	if (fk.bev != NULL)
		bufferevent_free(fk.bev);
	fk.bev = NULL;
}

static void
fake_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)arg;
	if (fk.closing)
		fake_drop();	/* the stream error is out: hang up */
}

static void
fake_send(const char *s)
{
	if (fk.bev != NULL)	/* after a failed check the link may be gone */
		bufferevent_write(fk.bev, s, strlen(s));
}

static void
fake_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	char *hs, *end;

	(void)arg;
	if (n > sizeof fk.in - 1 - fk.inlen)
		n = sizeof fk.in - 1 - fk.inlen;
	evbuffer_remove(in, fk.in + fk.inlen, n);
	fk.inlen += n;
	fk.in[fk.inlen] = '\0';

	if (!fk.sent_header && strstr(fk.in, "<stream:stream") != NULL &&
	    strstr(fk.in, "xmlns='jabber:component:accept'") != NULL &&
	    strstr(fk.in, "to='" JID "'>") != NULL) {
		fk.sent_header = 1;
		fake_send("<?xml version='1.0'?><stream:stream xmlns:stream="
		    "'http://etherx.jabber.org/streams' xmlns='jabber:"
		    "component:accept' from='" JID "' id='" STREAM_ID "'>");
	}
	if ((hs = strstr(fk.in, "<handshake>")) != NULL &&
	    (end = strstr(hs, "</handshake>")) != NULL) {
		*end = '\0';
		fk.handshakes++;
		fk.hash_ok = strcmp(hs + strlen("<handshake>"),
		    EXPECTED_HASH) == 0;
		/* forget what was read so later checks see new bytes only */
		fk.inlen = 0;
		fk.in[0] = '\0';
		if (fk.mode == FAKE_ACCEPT && fk.hash_ok) {
			fake_send("<handshake/>");
			return;
		}
		if (fk.mode == FAKE_RESTARTS &&
		    (fk.accepts == 1 || fk.accepts >= 4)) {
			fake_send("<handshake/>");
			fake_send("<stream:error><system-shutdown xmlns='urn:"
			    "ietf:params:xml:ns:xmpp-streams'/></stream:error>"
			    "</stream:stream>");
			fk.closing = 1;
			return;
		}
		fake_send(fk.mode != FAKE_NOT_AUTHORIZED ?
		    "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:"
		    "xmpp-streams'/></stream:error></stream:stream>" :
		    "<stream:error><not-authorized xmlns='urn:ietf:params:"
		    "xml:ns:xmpp-streams'/></stream:error></stream:stream>");
		fk.closing = 1;
	}
}

static void
fake_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	(void)arg;
	fake_drop();	/* EOF or error from the component */
}

static void
fake_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	fake_drop();
	if (fk.accepts < 64)
		fk.accept_ms[fk.accepts] = now_ms();
	fk.accepts++;
	fk.inlen = 0;
	fk.in[0] = '\0';
	fk.sent_header = fk.closing = 0;
	fk.bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(fk.bev, fake_read_cb, fake_write_cb, fake_event_cb,
	    NULL);
	bufferevent_enable(fk.bev, EV_READ | EV_WRITE);
}

static void
fake_start(enum fake_mode mode)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;

	memset(&fk, 0, sizeof fk);
	fk.mode = mode;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fk.l = evconnlistener_new_bind(base, fake_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof sin);
	if (fk.l == NULL) {
		perror("listen");
		exit(2);
	}
	getsockname(evconnlistener_get_fd(fk.l), (struct sockaddr *)&sin, &len);
	fk.port = ntohs(sin.sin_port);
}

static void
fake_stop(void)
{
	fake_drop();
	evconnlistener_free(fk.l);
	fk.l = NULL;
}

/* ---- the component's owner ---- */

static struct owner {
	int ups, downs;
	char why[512];
	int stanzas;
	int closed;
	char body[256];
	char from[256];
} ow;

static void
ow_up(void *arg)
{
	(void)arg;
	ow.ups++;
}

static void
ow_down(void *arg, const char *why)
{
	(void)arg;
	ow.downs++;
	snprintf(ow.why, sizeof ow.why, "%s", why);
}

static void
ow_stanza(void *arg, xmpp_stanza_t *st)
{
	xmpp_stanza_t *b = xmpp_stanza_get_child_by_name(st, "body");
	char *t = b != NULL ? xmpp_stanza_get_text(b) : NULL;
	const char *from = xmpp_stanza_get_from(st);

	(void)arg;
	ow.stanzas++;
	snprintf(ow.body, sizeof ow.body, "%s", t != NULL ? t : "");
	snprintf(ow.from, sizeof ow.from, "%s", from != NULL ? from : "");
	if (t != NULL)
		xmpp_free(xs_ctx(), t);
}

static void
ow_closed(void *arg)
{
	(void)arg;
	ow.closed++;
}

static const struct comp_events ow_events = {
	.up = ow_up, .down = ow_down, .stanza = ow_stanza, .closed = ow_closed,
};

static const char *comp_host = "127.0.0.1";
static unsigned comp_backoff_min_ms;	/* 0: the default */

static struct comp *
new_comp(uint16_t port, unsigned keepalive_s, size_t max_stanza)
{
	struct comp_config cfg = {
		.jid = JID, .secret = SECRET, .host = comp_host,
		.port = port, .keepalive_s = keepalive_s,
		.max_stanza = max_stanza, .backoff_min_ms = comp_backoff_min_ms,
	};
	struct comp *c;

	memset(&ow, 0, sizeof ow);
	if ((c = comp_new(base, &cfg, &ow_events, NULL)) == NULL) {
		fprintf(stderr, "comp_new failed\n");
		exit(2);
	}
	return c;
}

/* ---- stderr capture ---- */

static int saved_stderr = -1;
static char logpath[] = "/tmp/test_component_logXXXXXX";
static char logbuf[65536];

static void
log_capture(void)
{
	int fd;

	memcpy(logpath + sizeof logpath - 7, "XXXXXX", 6);
	if ((fd = mkstemp(logpath)) == -1) {
		perror("mkstemp");
		exit(2);
	}
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* stop capturing, echo what was logged, keep it in logbuf */
static void
log_release(void)
{
	FILE *f = fopen(logpath, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(logbuf, 1, sizeof logbuf - 1, f);
		fclose(f);
	}
	logbuf[n] = '\0';
	unlink(logpath);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	fputs(logbuf, stderr);
}

/* ---- predicates ---- */

static int up1(void) { return ow.ups >= 1; }
static int up2(void) { return ow.ups >= 2; }
static int down1(void) { return ow.downs >= 1; }
static int got_stanza(void) { return ow.stanzas >= 1; }
static int accepts2(void) { return fk.accepts >= 2; }
static int closed1(void) { return ow.closed >= 1; }
static int server_got_close(void)
{
	return strstr(fk.in, "</stream:stream>") != NULL;
}
static int server_got_message(void)
{
	return strstr(fk.in, "</message>") != NULL;
}
static int server_got_space(void)
{
	return fk.inlen > 0 && strspn(fk.in, " ") == fk.inlen;
}

/* a message whose body (4999 bytes) is larger than max_stanza 4096 */
static xmpp_stanza_t *
big_message(const char *id)
{
	xmpp_stanza_t *m, *b, *t;
	char big[5000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	m = xmpp_message_new(xs_ctx(), "chat", "alice@example.org", id);
	b = xmpp_stanza_new(xs_ctx());
	t = xmpp_stanza_new(xs_ctx());
	xmpp_stanza_set_name(b, "body");
	xmpp_stanza_set_text(t, big);
	xmpp_stanza_add_child(b, t);
	xmpp_stanza_add_child(m, b);
	xmpp_stanza_release(t);
	xmpp_stanza_release(b);
	return m;
}

/* ---- scenarios ---- */

static void
test_handshake_stanzas_keepalive_and_hangup(void)
{
	struct comp *c;
	xmpp_stanza_t *m;
	uint64_t down_at;

	fake_start(FAKE_ACCEPT);
	c = new_comp(fk.port, 1, 4096);
	CHECK(comp_state(c) == COMP_DISCONNECTED);

	/* the gateway connects; the server checks the hash and lets it in */
	CHECK(comp_start(c) == 0);
	CHECK(wait_for(up1, 5000));
	CHECK(fk.handshakes == 1);
	CHECK(fk.hash_ok);
	CHECK(comp_state(c) == COMP_UP);

	/* a message from the server reaches the owner */
	fake_send("<message from='alice@example.org/phone' to='bob@" JID
	    "' type='chat'><body>hello gateway</body></message>");
	CHECK(wait_for(got_stanza, 3000));
	CHECK(strcmp(ow.body, "hello gateway") == 0);
	CHECK(strcmp(ow.from, "alice@example.org/phone") == 0);

	/* and one from the owner reaches the server */
	m = xmpp_message_new(xs_ctx(), "chat", "alice@example.org", "m1");
	xmpp_stanza_set_from(m, "bob@" JID);
	xmpp_message_set_body(m, "hello alice");
	CHECK(comp_send(c, m) == 0);
	CHECK(wait_for(server_got_message, 3000));
	CHECK(strstr(fk.in, "to=\"alice@example.org\"") != NULL);
	CHECK(strstr(fk.in, "<body>hello alice</body>") != NULL);
	xmpp_stanza_release(m);

	/* idle: a single space keeps the link alive */
	fk.inlen = 0;
	fk.in[0] = '\0';
	CHECK(wait_for(server_got_space, 3500));

	/* a stanza above max_stanza is refused, not sent */
	m = big_message("m2");
	CHECK(comp_send(c, m) == -2);
	xmpp_stanza_release(m);

	/* the server hangs up: down, then a reconnect after >= 1 s */
	fake_drop();
	CHECK(wait_for(down1, 3000));
	down_at = now_ms();
	CHECK(comp_state(c) != COMP_UP);
	m = xmpp_message_new(xs_ctx(), "chat", "alice@example.org", "m3");
	CHECK(comp_send(c, m) == -1);	/* not up: the caller keeps it */
	xmpp_stanza_release(m);
	CHECK(wait_for(up2, 4000));
	CHECK(fk.accepts == 2);
	CHECK(fk.accepts < 2 || fk.accept_ms[1] - down_at >= 950);
	CHECK(fk.hash_ok);

	/* shutdown: the server sees the stream closed, no reconnect follows */
	fk.inlen = 0;
	fk.in[0] = '\0';
	comp_shutdown(c);
	CHECK(wait_for(closed1, 8000));
	CHECK(wait_for(server_got_close, 2000));
	CHECK(comp_state(c) == COMP_DISCONNECTED);
	CHECK(ow.downs == 1);
	wait_for(NULL, 1600);
	CHECK(fk.accepts == 2);
	CHECK(ow.downs == 1);

	comp_free(c);
	fake_stop();
}

static void
test_not_authorized_backs_off(void)
{
	struct comp *c;
	int i;

	fake_start(FAKE_NOT_AUTHORIZED);
	c = new_comp(fk.port, 0, 0);
	log_capture();
	comp_start(c);
	CHECK(wait_for(down1, 5000));
	CHECK(ow.ups == 0);
	CHECK(strstr(ow.why, "not-authorized") != NULL);
	CHECK(wait_for(accepts2, 3000));	/* it does come back */
	/* and keeps backing off: 1-1.5 s, then 2-3 s, ... not a busy loop */
	wait_for(NULL, 2500);
	log_release();
	CHECK(fk.accepts >= 2 && fk.accepts <= 3);
	for (i = 1; i < fk.accepts && i < 64; i++)
		CHECK(fk.accept_ms[i] - fk.accept_ms[i - 1] >= 950);
	CHECK(strstr(logbuf, "component: server rejected the handshake: "
	    "not-authorized (check component_secret); retrying in ") != NULL);
	CHECK(strstr(logbuf, SECRET) == NULL);
	CHECK(strstr(logbuf, EXPECTED_HASH) == NULL);
	comp_free(c);
	fake_stop();
}

static int accepts5(void) { return fk.accepts >= 5; }

/*
 * A server that says it is shutting down is restarting: the gateway is
 * back as soon as it may, whatever it waited before.  With a 200 ms
 * minimum: up and restarted, conflict, conflict (waits of [200,400],
 * [400,800], [800,1600] ms), up and restarted again: then [200,400] ms,
 * not the [1600,3200] ms the failures had grown it to.
 */
static void
test_server_restart_resets_the_backoff(void)
{
	struct comp *c;

	fake_start(FAKE_RESTARTS);
	comp_backoff_min_ms = 200;
	c = new_comp(fk.port, 0, 0);
	comp_backoff_min_ms = 0;
	log_capture();
	comp_start(c);
	CHECK(wait_for(accepts5, 10000));
	log_release();
	CHECK(ow.ups == 2);
	/* the waits grew */
	CHECK(fk.accept_ms[3] - fk.accept_ms[2] >= 750);
	/* after the second restart: the minimum again */
	CHECK(fk.accept_ms[4] - fk.accept_ms[3] < 750);
	CHECK(strstr(logbuf, "server closed the stream: system-shutdown") !=
	    NULL);
	comp_free(c);
	fake_stop();
}

static void
test_conflict_is_explained(void)
{
	struct comp *c;

	fake_start(FAKE_CONFLICT);
	c = new_comp(fk.port, 0, 0);
	log_capture();
	comp_start(c);
	CHECK(wait_for(down1, 5000));
	log_release();
	CHECK(strstr(logbuf, ": conflict (another connection for this "
	    "component is still registered") != NULL);
	CHECK(strstr(logbuf, "retrying in") != NULL);
	comp_free(c);
	fake_stop();
}

static void
test_connection_refused(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	struct comp *c;
	char want[128];
	int fd;

	/* a port nobody listens on: bind one, note it, close it */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);

	c = new_comp(ntohs(sin.sin_port), 0, 0);
	log_capture();
	comp_start(c);
	CHECK(wait_for(down1, 5000));
	log_release();
	snprintf(want, sizeof want, "component: cannot connect to "
	    "127.0.0.1:%u: Connection refused; retrying in 1.",
	    ntohs(sin.sin_port));
	CHECK(strstr(logbuf, want) != NULL);
	comp_free(c);
}

/*
 * A server named, not numbered (a container's "prosody"): the name goes
 * through libevent's resolver, /etc/hosts first, and the link comes up.
 * "localhost" may also name ::1, where nobody listens: that costs one
 * refused attempt, then the next address of the round.
 */
static void
test_server_by_name(void)
{
	struct comp *c;

	fake_start(FAKE_ACCEPT);
	comp_host = "localhost";
	c = new_comp(fk.port, 0, 0);
	comp_host = "127.0.0.1";
	CHECK(comp_start(c) == 0);
	CHECK(wait_for(up1, 10000));
	CHECK(fk.hash_ok);
	CHECK(comp_state(c) == COMP_UP);
	comp_free(c);
	fake_stop();
}

int
main(void)
{
	if (xs_init() == -1 || (base = event_base_new()) == NULL) {
		fprintf(stderr, "setup failed\n");
		return 2;
	}
	log_set_level(LOG_LVL_INFO);

	test_connection_refused();
	test_server_by_name();
	test_server_restart_resets_the_backoff();
	test_conflict_is_explained();
	test_handshake_stanzas_keepalive_and_hangup();
	test_not_authorized_backs_off();

	event_base_free(base);
	xs_shutdown();
	if (failures > 0) {
		fprintf(stderr, "test_component: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_component: ok\n");
	return 0;
}
