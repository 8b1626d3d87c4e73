/*
 * metrics — see metrics.h.  The OpenMetrics text follows the 1.0 format:
 * one `# TYPE`/`# HELP` per family, counters as NAME_total, `# EOF` last,
 * so Prometheus (and anything that scrapes Prosody's mod_http_openmetrics)
 * reads it as it is.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "barevlink.h"
#include "bridge.h"
#include "component.h"
#include "gw.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "transfer.h"


/*
 * Open descriptors.  Since Linux 6.2 the size of /proc/self/fd is their
 * count: one stat(), whatever the number of pipes (~100k fds at full
 * scale), for every status call and scrape.  Older kernels report 0 there;
 * then the directory is read.
 */
static long
fds_used(void)
{
	DIR *d;
	struct dirent *e;
	struct stat sb;
	long n = 0;

	if (stat("/proc/self/fd", &sb) == 0 && sb.st_size > 0)
		return (long)sb.st_size;
	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* the directory's own descriptor */
}

/* resident set size, from /proc/self/statm's second field (pages) */
static long long
rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size, resident;
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	if (n != 2)
		return -1;
	return (long long)resident * sysconf(_SC_PAGESIZE);
}

static unsigned long long
fds_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	return rl.rlim_cur == RLIM_INFINITY ? 0 : (unsigned long long)rl.rlim_cur;
}

void
metrics_raise_nofile(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("gateway", "cannot read the file descriptor limit");
		return;
	}
	was = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			rl.rlim_cur = was;
	}
	/* one per pipe, dial and transfer: this bounds how many there can be */
	log_info("gateway", "file descriptors: limit %llu (soft limit was %llu,"
	    " hard limit %llu)", (unsigned long long)rl.rlim_cur,
	    (unsigned long long)was, (unsigned long long)rl.rlim_max);
}

void
metrics_snapshot(struct gw *gw, struct metrics_snap *m)
{
	struct bl_stats bs;
	struct bridge_stats br;
	struct store_counters sc;

	memset(m, 0, sizeof(*m));
	m->link_up = gw->comp != NULL && comp_state(gw->comp) == COMP_UP;
	if (gw->bl != NULL) {
		bl_get_stats(gw->bl, &bs);
		m->pipes_up = bs.pipes_up;
		m->pipes_handshake = bs.pipes_handshake;
		m->dials_in_flight = bs.dials_in_flight;
		m->dials_waiting = bs.dials_waiting;
		m->dials_max = bs.dials_max;
		m->dials_peak = bs.dials_peak;
		m->contacts_wanted = bs.contacts_wanted;
		m->dials_started = bs.dials_started;
	}
	bridge_get_stats(gw, &br);
	m->users = br.identities;	/* one identity per user JID */
	m->users_online = br.users_online;
	m->users_held = br.users_held;
	m->contacts = br.contacts;
	m->outbox = m->inbox = -1;
	if (gw->store != NULL) {
		m->outbox = store_outbox_count(gw->store);
		m->inbox = store_inbox_count(gw->store);
		store_get_counters(gw->store, &sc);
		m->transfers_done = sc.transfers_done;
		m->transfers_failed = sc.transfers_failed;
		m->store_errors = sc.errors;
	}
	m->fds_used = fds_used();
	m->fds_limit = fds_limit();
	m->rss_bytes = rss_bytes();
	m->store_mem_bytes = store_memory_used();
	m->c = gw->counters;
}

static void
om_add(struct evbuffer *b, const char *type, const char *name,
    const char *help, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* one family: TYPE and HELP, then the sample lines of fmt */
static void
om_add(struct evbuffer *b, const char *type, const char *name,
    const char *help, const char *fmt, ...)
{
	va_list ap;

	evbuffer_add_printf(b, "# TYPE %s %s\n# HELP %s %s\n", name, type, name,
	    help);
	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
metrics_openmetrics(const struct metrics_snap *m, size_t *lenp)
{
	struct evbuffer *b;
	char *out;
	size_t len;

	if ((b = evbuffer_new()) == NULL)
		return NULL;
	om_add(b, "gauge", "barev_link_up", "The component link to the XMPP"
	    " server is up (1) or not (0).", "barev_link_up %d\n", m->link_up);
	om_add(b, "gauge", "barev_users", "Local users with a Barev identity.",
	    "barev_users %u\n", m->users);
	om_add(b, "gauge", "barev_users_online", "Users with an available"
	    " resource.", "barev_users_online %u\n", m->users_online);
	om_add(b, "gauge", "barev_users_held", "Users held online at their"
	    " peers through a server crash, until they log back in.",
	    "barev_users_held %u\n", m->users_held);
	om_add(b, "gauge", "barev_contacts", "Provisioned Barev contacts.",
	    "barev_contacts %u\n", m->contacts);
	om_add(b, "gauge", "barev_contacts_wanted", "Contacts the gateway keeps"
	    " a pipe to (user online or messages queued).",
	    "barev_contacts_wanted %u\n", m->contacts_wanted);
	om_add(b, "gauge", "barev_pipes", "Barev pipes by state.",
	    "barev_pipes{state=\"up\"} %u\nbarev_pipes{state=\"handshake\"} %u\n",
	    m->pipes_up, m->pipes_handshake);
	om_add(b, "gauge", "barev_dials", "Outgoing dials in flight and waiting"
	    " for a slot.", "barev_dials{state=\"in_flight\"} %u\n"
	    "barev_dials{state=\"waiting\"} %u\n", m->dials_in_flight,
	    m->dials_waiting);
	om_add(b, "gauge", "barev_dials_max", "max_concurrent_dials.",
	    "barev_dials_max %u\n", m->dials_max);
	om_add(b, "gauge", "barev_dials_peak", "Most dials in flight at once"
	    " since the start.", "barev_dials_peak %u\n", m->dials_peak);
	om_add(b, "counter", "barev_dials_started", "Outgoing dials started.",
	    "barev_dials_started_total %llu\n", m->dials_started);
	om_add(b, "gauge", "barev_queued_messages", "Messages waiting in the"
	    " store: outbox to Barev, inbox to XMPP.",
	    "barev_queued_messages{direction=\"to_barev\"} %ld\n"
	    "barev_queued_messages{direction=\"to_xmpp\"} %ld\n",
	    m->outbox, m->inbox);
	om_add(b, "counter", "barev_messages", "Message bodies relayed.",
	    "barev_messages_total{direction=\"to_barev\"} %llu\n"
	    "barev_messages_total{direction=\"to_xmpp\"} %llu\n",
	    m->c.msgs_to_barev, m->c.msgs_to_xmpp);
	om_add(b, "counter", "barev_message_bytes", "Bytes of message bodies"
	    " relayed.", "barev_message_bytes_total{direction=\"to_barev\"} %llu\n"
	    "barev_message_bytes_total{direction=\"to_xmpp\"} %llu\n",
	    m->c.bytes_to_barev, m->c.bytes_to_xmpp);
	om_add(b, "counter", "barev_transfers", "File transfers finished, by"
	    " outcome.", "barev_transfers_total{outcome=\"done\"} %llu\n"
	    "barev_transfers_total{outcome=\"failed\"} %llu\n",
	    m->transfers_done, m->transfers_failed);
	om_add(b, "counter", "barev_store_errors", "SQLite errors (each is"
	    " also logged).", "barev_store_errors_total %llu\n", m->store_errors);
	om_add(b, "gauge", "barev_fds", "File descriptors open and the limit.",
	    "barev_fds{kind=\"used\"} %ld\nbarev_fds{kind=\"limit\"} %llu\n",
	    m->fds_used, m->fds_limit);
	/* the name every Prometheus client library uses for it */
	om_add(b, "gauge", "process_resident_memory_bytes", "Resident memory"
	    " size in bytes.", "process_resident_memory_bytes %lld\n",
	    m->rss_bytes);
	om_add(b, "gauge", "barev_store_memory_bytes", "Memory SQLite holds"
	    " (page cache, statements): part of the resident memory.",
	    "barev_store_memory_bytes %lld\n", m->store_mem_bytes);
	evbuffer_add(b, "# EOF\n", 6);
	len = evbuffer_get_length(b);
	if ((out = malloc(len + 1)) != NULL) {
		evbuffer_remove(b, out, len);
		out[len] = '\0';
		if (lenp != NULL)
			*lenp = len;
	}
	evbuffer_free(b);
	return out;
}

static void
metrics_request(struct evhttp_request *req, void *arg)
{
	struct gw *gw = arg;
	struct metrics_snap m;
	struct evbuffer *body;
	char *text;
	size_t len;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	metrics_snapshot(gw, &m);
	if ((text = metrics_openmetrics(&m, &len)) == NULL ||
	    (body = evbuffer_new()) == NULL) {
		free(text);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(body, text, len);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/openmetrics-text; version=1.0.0; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

/*
 * metrics_path lives on the gateway's one HTTP listener, the transfer
 * module's (transfer_serve.c): started here for the metrics alone when the
 * gateway does not serve files itself (an upload service is set).
 */
int
metrics_start(struct gw *gw)
{
	const char *path = gw->cfg.metrics_path;
	struct evhttp *http;

	/* config.c made sure a set path has http_listen to live on */
	if (path == NULL || *path == '\0')
		return 0;
	if (xfer_serve_start(gw) == -1 || (http = xfer_serve_http(gw)) == NULL)
		return -1;
	if (http == gw->metrics_http)
		return 0;
	if (evhttp_set_cb(http, path, metrics_request, gw) != 0) {
		log_error("metrics", "metrics_path %s: cannot register it", path);
		return 0;
	}
	gw->metrics_http = http;
	log_info("metrics", "OpenMetrics on %s%s", gw->cfg.http_listen, path);
	return 0;
}
