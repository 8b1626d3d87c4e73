/*
 * fixture — the gateway the harnesses share (fixture.h): built once per
 * process, its changeable state made fresh for every input.
 *
 * The files live in TEST_TMPDIR (ctest) or a directory of our own under
 * /dev/shm, so SQLite commits cost no disk sync.  Logging is off unless
 * FUZZ_VERBOSE is set: libFuzzer runs millions of inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/event.h>

#include "bridge.h"
#include "bridge_int.h"
#include "cmdsession.h"
#include "commands.h"
#include "component.h"
#include "fixture.h"
#include "route.h"
#include "netns.h"
#include "iqtrack.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "transfer.h"
#include "xmlstream.h"
/* the barevlink internals a harness needs to hand it a connection */
#include "../../barevlink/internal.h"

static char fz_dir[512];
static char fz_conf[600];
static char fz_db[600];
static char fz_template_db[600];

static struct fz fz_gw;			/* the one gateway */
static int fz_built;
static struct store *fz_template;	/* alice and bob, nothing else */

static void
fz_die(const char *what)
{
	fprintf(stderr, "fuzz fixture: %s\n", what);
	abort();
}

static int
fz_items_commands(struct gw *gw, const char *from, const char *node,
    xmpp_stanza_t *query)
{
	/* what main.c's discovery setup adds (gw_discovery_setup) */
	if (node != NULL && strcmp(node, "http://jabber.org/protocol/commands") != 0)
		return 0;
	commands_disco_items(gw, from, query);
	return 1;
}

static int
fz_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	(void)remove(path);	/* best effort */
	return 0;
}

/* a directory we made ourselves goes when the process ends */
static void
fz_cleanup(void)
{
	(void)nftw(fz_dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

void
fz_init(void)
{
	static int done;
	const char *dir = getenv("TEST_TMPDIR");
	FILE *f;

	if (done)
		return;
	done = 1;
	fz_own_netns(NULL);
	log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	if (dir != NULL) {
		snprintf(fz_dir, sizeof fz_dir, "%s", dir);
	} else {
		snprintf(fz_dir, sizeof fz_dir, "%s/barev-fuzz.XXXXXX",
		    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (mkdtemp(fz_dir) == NULL)
			fz_die("mkdtemp");
		atexit(fz_cleanup);
	}
	/*
	 * OpenSSL would load the system's CA store for every input's first
	 * https request (the context lives as long as the transfer module):
	 * no CA at all is as good for a server that is never there.
	 */
	setenv("SSL_CERT_FILE", "/dev/null", 1);
	setenv("SSL_CERT_DIR", fz_dir, 1);
	snprintf(fz_conf, sizeof fz_conf, "%s/gw.conf", fz_dir);
	snprintf(fz_db, sizeof fz_db, "%s/gw.sqlite", fz_dir);
	snprintf(fz_template_db, sizeof fz_template_db, "%s/template.sqlite",
	    fz_dir);
	if ((f = fopen(fz_conf, "w")) == NULL)
		fz_die("cannot write the config");
	/*
	 * Open registration and an upload service, so XEP-0077 and the file
	 * paths are reachable; the only download host is a loopback address
	 * (no DNS, a refused connection at worst).
	 */
	fprintf(f, "component_jid = " FZ_COMPONENT "\n"
	    "component_secret = s\n"
	    "database = %s\n"
	    "admins = " FZ_ADMIN "\n"
	    "log_level = error\n"
	    "registration = open\n"
	    "barev_address = 200:1::99\n"
	    "upload_service = upload.example.org\n"
	    "download_hosts = 127.0.0.1\n"
	    "spool_dir = %s/spool\n"
	    "status_socket = off\n", fz_db, fz_dir);
	fclose(f);
	if (xs_init() == -1)
		fz_die("xs_init");
}

static int
fz_count_sent(struct gw *gw, xmpp_stanza_t *st)
{
	struct fz *f = (struct fz *)gw;	/* gw is the first member */
	char *xml;
	size_t len;

	/* what the component link would do with it: serialize it */
	if ((xml = xs_serialize_str(st, 0, &len)) == NULL)
		fz_die("serialize");
	free(xml);
	f->sent++;
	if (f->on_send != NULL)
		f->on_send(f, st);
	return 0;
}

/* what main.c does when the link comes up (gw_link_up) */
static void
fz_link_up_cb(void *arg)
{
	struct gw *gw = arg;

	gw->link_ever_up = 1;
	if (gw->bridge != NULL)
		bridge_component_up(gw);
	((struct fz *)gw)->link_up = 1;
}

static void
fz_link_stanza_cb(void *arg, xmpp_stanza_t *st)
{
	gw_route_stanza(arg, st);
}

/*
 * Play the XMPP server for one XEP-0114 handshake (any secret is fine),
 * so the link is really up: messages for users are delivered (to send_fn)
 * instead of waiting in the inbox.  The resync grace after a reconnect is
 * cut short, as if the server's presence answers had all come.
 */
/* the loop once, without waiting; dies if `what` takes over 30 s (a hang
 * bound, not a speed check) */
static void
fz_spin(struct fz *f, const struct timespec *t0, const char *what)
{
	struct timespec t;

	(void)event_base_loop(f->gw.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (t.tv_sec - t0->tv_sec > 30)
		fz_die(what);
}

static void
fz_link(struct fz *f)
{
	static const char hdr[] = "<?xml version='1.0'?><stream:stream "
	    "xmlns='jabber:component:accept' xmlns:stream='http://etherx."
	    "jabber.org/streams' id='fz' from='" FZ_COMPONENT "'>";
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (comp_start(f->gw.comp) == -1)
		fz_die("comp_start");
	while ((f->srv = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK)) == -1)
		fz_spin(f, &t0, "the component never connected");
	if (write(f->srv, hdr, sizeof hdr - 1) != (ssize_t)(sizeof hdr - 1))
		fz_die("server header");
	while (memmem(buf, got, "</handshake>", 12) == NULL) {
		if (got == sizeof buf)
			fz_die("no handshake from the component");
		fz_spin(f, &t0, "no handshake from the component");
		if ((n = read(f->srv, buf + got, sizeof buf - got)) > 0)
			got += (size_t)n;
	}
	if (write(f->srv, "<handshake/>", 12) != 12)
		fz_die("handshake");
	while (!f->link_up)
		fz_spin(f, &t0, "the link never came up");
}

/*
 * Once per process: the event base, the component link up against our
 * fake server, the pristine template database and the store's own
 * connection.  None of them holds anything an input can change except
 * the database, which fz_open() copies back from the template.
 */
static void
fz_build(struct fz *f)
{
	char err[512], path[700];
	struct comp_config cc = { .jid = FZ_COMPONENT, .secret = "s",
	    .host = "127.0.0.1" };
	static const struct comp_events ce = { .up = fz_link_up_cb,
	    .stanza = fz_link_stanza_cb };
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	const char *dbs[] = { fz_db, fz_template_db };

	fz_init();
	memset(f, 0, sizeof *f);
	/* discovery as main.c sets it up, in this gateway's own state */
	if (gw_service_add_feature(&f->gw,
	    "http://jabber.org/protocol/commands") == -1 ||
	    gw_service_add_feature(&f->gw, "jabber:iq:gateway") == -1 ||
	    gw_service_add_feature(&f->gw, "jabber:iq:register") == -1 ||
	    gw_service_add_feature(&f->gw, "jabber:x:data") == -1 ||
	    gw_service_add_items_hook(&f->gw, fz_items_commands) == -1 ||
	    gw_service_add_node_info_hook(&f->gw, commands_disco_info_node) == -1)
		fz_die("discovery setup");
	f->srv = -1;
	for (size_t i = 0; i < 2; i++) {
		unlink(dbs[i]);
		snprintf(path, sizeof path, "%s-wal", dbs[i]);
		unlink(path);
		snprintf(path, sizeof path, "%s-shm", dbs[i]);
		unlink(path);
	}
	if (gw_config_load(&f->gw.cfg, fz_conf, err, sizeof err) == -1)
		fz_die(err);
	log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	mkdir(f->gw.cfg.spool_dir, 0700);
	if ((f->gw.base = event_base_new()) == NULL)
		fz_die("event_base_new");
	if ((fz_template = store_open(fz_template_db, err, sizeof err)) == NULL ||
	    (f->gw.store = store_open(fz_db, err, sizeof err)) == NULL)
		fz_die(err);
	/* a port of this process's own: parallel fuzzers each get their
	 * listener (a failed bind only takes the retry path) */
	if (store_identity_add(fz_template, FZ_USER, "alice", FZ_IDENT_ADDR,
	    20000 + getpid() % 20000, &f->ident) != STORE_OK ||
	    store_contact_add(fz_template, f->ident, "bob", FZ_PEER_ADDR, 1337,
	    "Bob", &f->contact) != STORE_OK)
		fz_die("provisioning");
	f->gw.send_fn = fz_count_sent;
	f->gw.started_at = time(NULL);
	transfer_test_keep_tls(&f->gw, 1);
	if ((f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(f->lfd, (struct sockaddr *)&sa, sl) == -1 ||
	    listen(f->lfd, 1) == -1 ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &sl) == -1)
		fz_die("the server's listener");
	cc.port = ntohs(sa.sin_port);
	if ((f->gw.comp = comp_new(f->gw.base, &cc, &ce, &f->gw)) == NULL)
		fz_die("comp_new");
	fz_link(f);
	fz_settle(f, 0);
	f->base_events = event_base_get_num_events(f->gw.base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
}

/* the process ends: free what fz_build() made (LeakSanitizer's view) */
static void
fz_teardown(void)
{
	struct fz *f = &fz_gw;

	if (!fz_built)
		return;
	transfer_free(&f->gw);
	comp_free(f->gw.comp);
	store_close(f->gw.store);
	store_close(fz_template);
	event_base_free(f->gw.base);
	gw_config_free(&f->gw.cfg);
	gw_service_reset(&f->gw);
	cmd_sessions_free(&f->gw);
	if (f->srv != -1)
		close(f->srv);
	close(f->lfd);
	fz_built = 0;
}

struct fz *
fz_open(void)
{
	struct fz *f = &fz_gw;
	char buf[4096];

	if (!fz_built) {
		fz_build(f);
		fz_built = 1;
		atexit(fz_teardown);
	}
	/* what the server's end got (nothing is sent over it: send_fn) */
	while (read(f->srv, buf, sizeof buf) > 0)
		;
	if (store_copy_from(f->gw.store, fz_template) != STORE_OK)
		fz_die("cannot reset the database from its template");
	/* every command session an earlier input opened has expired */
	commands_test_clock_skew(&f->gw, 24 * 3600);
	f->sent = 0;
	f->on_send = NULL;
	f->on_stanza = NULL;
	f->arg = NULL;
	f->gw.send_fn = fz_count_sent;
	f->gw.stopping = 0;
	if (bridge_start(&f->gw) == -1)
		fz_die("bridge_start");
	/* pascal-style pacing (20 ms a stanza) only slows the fuzzer down */
	f->gw.bl->cfg.pace_ms = 0;
	/*
	 * What main.c does when the link comes up, and the resync grace
	 * after it cut short, as if the server's presence answers had all
	 * come: messages for users are delivered (to send_fn) at once
	 * instead of waiting in the inbox.
	 */
	bridge_component_up(&f->gw);
	if (f->gw.bridge->resync_ev != NULL)
		event_active(f->gw.bridge->resync_ev, EV_TIMEOUT, 0);
	fz_settle(f, 0);
	return f;
}

void
fz_settle(struct fz *f, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)event_base_loop(f->gw.base, EVLOOP_NONBLOCK);
	if (ms > 0) {
		(void)event_base_loopexit(f->gw.base, &tv);
		(void)event_base_dispatch(f->gw.base);
	}
	(void)event_base_loop(f->gw.base, EVLOOP_NONBLOCK);
}

void
fz_close(struct fz *f)
{
	int n;

	bridge_shutdown(&f->gw);
	fz_settle(f, 0);
	bridge_free(&f->gw);
	/*
	 * The next input starts from the same base: an event the bridge
	 * left on it would fire into freed memory or into the next input.
	 */
	n = event_base_get_num_events(f->gw.base,
	    EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
	if (n != f->base_events) {
		fprintf(stderr, "fuzz fixture: %d events left on the base after "
		    "the bridge was freed (%d before it started)\n", n,
		    f->base_events);
		abort();
	}
	f->on_send = NULL;
	f->on_stanza = NULL;
	f->arg = NULL;
}

int
fz_pipe_open(struct fz *f)
{
	struct bl *bl = f->gw.bl;
	struct bl_listener *l = TAILQ_FIRST(&bl->listeners);
	struct in6_addr src;
	int sv[2];

	if (l == NULL || inet_pton(AF_INET6, FZ_PEER_ADDR, &src) != 1)
		fz_die("no listener for alice");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		fz_die("socketpair");
	/* what listener_accept() does for an allowlisted source */
	if (bl_pipe_inbound(l, sv[1], &src) == NULL)
		fz_die("bl_pipe_inbound");
	return sv[0];
}

struct fz_peer {
	const unsigned char *data;
	size_t len, off;
	int fd;
	int eof;		/* the gateway closed its side */
	struct event *rev, *wev;
};

static void
fz_peer_write(evutil_socket_t fd, short what, void *arg)
{
	struct fz_peer *p = arg;
	ssize_t n;

	(void)what;
	while (p->off < p->len) {
		n = write(fd, p->data + p->off, p->len - p->off);
		if (n < 0) {
			if (errno == EAGAIN)
				return;	/* the event stays armed */
			p->off = p->len;	/* the gateway hung up */
			break;
		}
		p->off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	event_del(p->wev);
}

static void
fz_peer_read(evutil_socket_t fd, short what, void *arg)
{
	struct fz_peer *p = arg;
	char buf[16384];
	ssize_t n;

	(void)what;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (getenv("FUZZ_VERBOSE") != NULL)	/* what bob is told */
			fprintf(stderr, "to bob: %.*s\n", (int)n, buf);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		p->eof = 1;
		event_del(p->rev);
	}
}

int
fz_pipe_wait_up(struct fz *f)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (bl_contact_state(f->gw.bl, f->contact) != BL_PIPE_UP) {
		(void)event_base_loop(f->gw.base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t);
		/* a bound for a hang, not a speed check: slow CI is fine */
		if (t.tv_sec - t0.tv_sec > 30)
			return -1;
	}
	return 0;
}

void
fz_feed_and_wait(struct fz *f, int fd, const void *data, size_t len)
{
	struct fz_peer p = { .data = data, .len = len, .fd = fd };
	struct timespec t0, t;

	p.rev = event_new(f->gw.base, fd, EV_READ | EV_PERSIST, fz_peer_read, &p);
	p.wev = event_new(f->gw.base, fd, EV_WRITE | EV_PERSIST, fz_peer_write, &p);
	if (p.rev == NULL || p.wev == NULL || event_add(p.rev, NULL) == -1 ||
	    event_add(p.wev, NULL) == -1)
		fz_die("peer events");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!p.eof) {
		(void)event_base_loop(f->gw.base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t);
		/* the gateway must close a pipe whose peer went away; the
		 * header timeout (15 s) is the longest wait it may take */
		if (t.tv_sec - t0.tv_sec > 30)
			fz_die("the gateway never closed the pipe after EOF");
	}
	event_free(p.rev);
	event_free(p.wev);
	close(fd);
	fz_settle(f, 0);
}

static void
fz_srv_header(void *arg, xmpp_stanza_t *h)
{
	(void)arg;
	(void)h;
}

static void
fz_srv_stanza(void *arg, xmpp_stanza_t *st)
{
	struct fz *f = arg;

	if (f->on_stanza != NULL)
		f->on_stanza(f, st);
	gw_route_stanza(&f->gw, st);
	fz_settle(f, 0);
}

static void
fz_srv_close(void *arg, enum xs_close why, const char *detail)
{
	(void)arg;
	(void)why;
	(void)detail;
}

void
fz_server_stream(struct fz *f, const char *pre, const void *data,
    size_t len, const char *post)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:component:"
	    "accept' xmlns:stream='http://etherx.jabber.org/streams' from='"
	    FZ_COMPONENT "' id='fuzz'>";
	static const struct xs_callbacks cbs = { fz_srv_header, fz_srv_stanza,
	    fz_srv_close };
	/* what component.c allows (Prosody's default stanza size) */
	struct xs_limits lim = { .max_stanza = 512 * 1024 };
	struct xs_parser *p;

	if ((p = xs_parser_new(&lim, &cbs, f)) == NULL)
		fz_die("xs_parser_new");
	if (xs_parser_feed(p, hdr, sizeof hdr - 1) == 0 &&
	    (pre == NULL || xs_parser_feed(p, pre, strlen(pre)) == 0) &&
	    (data == NULL || xs_parser_feed(p, data, len) == 0) &&
	    post != NULL)
		(void)xs_parser_feed(p, post, strlen(post));
	xs_parser_eof(p);
	xs_parser_free(p);
}

void
fz_route_xml(struct fz *f, const char *xml)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(xs_ctx(), xml);

	if (st == NULL)
		fz_die(xml);
	gw_route_stanza(&f->gw, st);
	xmpp_stanza_release(st);
	fz_settle(f, 0);
}

void
fz_user_online(struct fz *f)
{
	fz_route_xml(f, "<presence from='" FZ_USER "/phone' to='"
	    FZ_CONTACT_JID "'><priority>1</priority></presence>");
}
