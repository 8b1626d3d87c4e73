/*
 * main — barev-gateway's entry point: command line, configuration, the
 * event loop, signals and systemd notification.
 *
 *	barev-gateway --config FILE		run in the foreground
 *	barev-gateway --config FILE --test-config
 *	barev-gateway --config FILE --health	ask the running daemon (status.h)
 *
 * Signals arrive as libevent events, so handlers run on the loop like
 * everything else: TERM/INT stop gracefully (the link is closed with
 * </stream:stream>, the loop ends once nothing is left to flush, bounded),
 * HUP re-reads the file and applies what is safe without dropping the link.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "component.h"
#include "config.h"
#include "bridge.h"
#include "cmdsession.h"
#include "commands.h"
#include "gw.h"
#include "route.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "service.h"
#include "status.h"
#include "transfer.h"
#include "upkeep.h"
#include "xmlstream.h"

#define GW_STOP_BOUND_MS	3000	/* longest a graceful stop may take */
#define GW_HEALTH_TIMEOUT_MS	5000	/* --health: the daemon must answer */

/* ---- systemd (no-ops without it) ---- */

static void gw_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
gw_notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	(void)sd_notify(0, buf);
#else
	(void)fmt;
#endif
}

static void
gw_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	gw_notify("WATCHDOG=1");
}

static int
gw_watchdog_start(struct gw *gw)
{
#ifdef HAVE_SYSTEMD
	uint64_t usec = 0;
	struct timeval tv;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	/* half the interval, as sd_watchdog_enabled(3) advises */
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	gw->ev_watchdog = event_new(gw->base, -1, EV_PERSIST, gw_watchdog_cb,
	    gw);
	if (gw->ev_watchdog == NULL || event_add(gw->ev_watchdog, &tv) == -1)
		return -1;
	log_debug("gateway", "systemd watchdog every %llu ms",
	    (unsigned long long)(usec / 1000));
#else
	(void)gw;
#endif
	return 0;
}

/* ---- component link events ---- */

static void
gw_link_up(void *arg)
{
	struct gw *gw = arg;

	if (!gw->link_ever_up)
		gw_notify("READY=1\nSTATUS=component link up as %s",
		    gw->cfg.component_jid);
	else
		gw_notify("STATUS=component link up as %s",
		    gw->cfg.component_jid);
	gw->link_ever_up = 1;
	bridge_component_up(gw);
}

static void
gw_link_down(void *arg, const char *why)
{
	struct gw *gw = arg;

	/* component/ has logged it already */
	gw_notify("STATUS=component link down: %s", why);
	bridge_component_down(gw);
}

static void
gw_link_stanza(void *arg, xmpp_stanza_t *st)
{
	gw_route_stanza(arg, st);
}

/* after comp_shutdown(): </stream:stream> is out, so the loop may end;
 * a short grace lets the other modules' last bytes drain too */
static void
gw_link_closed(void *arg)
{
	struct gw *gw = arg;

	gw->link_closed = 1;
	gw_stop_progress(gw);
}



/* ---- signals ---- */

static void
gw_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gw *gw = arg;
	struct timeval tv = { GW_STOP_BOUND_MS / 1000,
	    (GW_STOP_BOUND_MS % 1000) * 1000 };

	(void)what;
	if (gw->stopping)
		return;
	gw->stopping = 1;
	log_info("gateway", "%s: shutting down", strsignal((int)sig));
	gw_notify("STOPPING=1");
	/* before the link closes, so peers see us go unavailable and
	 * nothing accepted is lost */
	bridge_shutdown(gw);
	comp_shutdown(gw->comp);
	/*
	 * The loop ends when the link reports `closed` (gw_link_closed), at
	 * the latest after GW_STOP_BOUND_MS.  Drop our own events: a second
	 * TERM/INT now kills with the default action, which is what an
	 * impatient operator wants.
	 */
	event_del(gw->ev_term);
	event_del(gw->ev_int);
	event_del(gw->ev_hup);
	if (gw->ev_watchdog != NULL)
		event_del(gw->ev_watchdog);
	event_base_loopexit(gw->base, &tv);
}

static void
gw_reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gw *gw = arg;
	struct gw_config next;
	char err[1024];
	unsigned changed;
	int was_refusing;

	(void)sig;
	(void)what;
	gw_notify("RELOADING=1");
	log_info("config", "SIGHUP: reloading %s", gw->cfg.path);
	if (gw_config_load(&next, gw->cfg.path, err, sizeof err) == -1) {
		log_error("config", "%s; keeping the running configuration",
		    err);
		gw_notify("READY=1");
		return;
	}
	was_refusing = gw->cfg.refuse_outside_yggdrasil;
	changed = gw_config_reload(&gw->cfg, &next);
	if (gw->cfg.refuse_outside_yggdrasil != was_refusing)
		bridge_policy_changed(gw);
	if (changed & GW_CONFIG_CHANGED_LOG_LEVEL)
		log_set_level(gw->cfg.log_level);
	if ((changed & GW_CONFIG_CHANGED_SECRET) &&
	    comp_set_secret(gw->comp, gw->cfg.component_secret) == -1)
		log_error("config", "cannot apply the new component_secret "
		    "(out of memory)");
	if (changed == 0)
		log_info("config", "reloaded; nothing changed");
	gw_notify("READY=1");
}

/* ---- discovery: what the modules after service.c add ---- */

static int
gw_items_commands(struct gw *gw, const char *from, const char *node,
    xmpp_stanza_t *query)
{
	if (node != NULL && strcmp(node, "http://jabber.org/protocol/commands") != 0)
		return 0;
	commands_disco_items(gw, from, query);
	return 1;
}

static int
gw_discovery_setup(struct gw *gw)
{
	static const char *const features[] = {
		"http://jabber.org/protocol/commands",	/* XEP-0050 */
		"jabber:iq:gateway",			/* XEP-0100 */
		"jabber:iq:register",			/* XEP-0077 */
		"jabber:x:data",
	};

	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (gw_service_add_feature(gw, features[i]) == -1)
			return -1;
	if (gw_service_add_items_hook(gw, gw_items_commands) == -1 ||
	    gw_service_add_node_info_hook(gw, commands_disco_info_node) == -1)
		return -1;
	return 0;
}

/* ---- run ---- */

/* SIGTERM and SIGINT stop, SIGHUP reloads the configuration */
static int
gw_signals_start(struct gw *gw)
{
	if ((gw->ev_term = evsignal_new(gw->base, SIGTERM, gw_stop_cb, gw)) ==
	    NULL ||
	    (gw->ev_int = evsignal_new(gw->base, SIGINT, gw_stop_cb, gw)) ==
	    NULL ||
	    (gw->ev_hup = evsignal_new(gw->base, SIGHUP, gw_reload_cb, gw)) ==
	    NULL ||
	    event_add(gw->ev_term, NULL) == -1 ||
	    event_add(gw->ev_int, NULL) == -1 ||
	    event_add(gw->ev_hup, NULL) == -1)
		return -1;
	return 0;
}

/* Everything gw_run made, whichever step it got to, in one place. */
static void
gw_run_free(struct gw *gw, struct status *status)
{
	status_stop(status);
	upkeep_stop(gw);
	bridge_free(gw);
	transfer_free(gw);
	store_close(gw->store);
	comp_free(gw->comp);
	if (gw->ev_term != NULL)
		event_free(gw->ev_term);
	if (gw->ev_int != NULL)
		event_free(gw->ev_int);
	if (gw->ev_hup != NULL)
		event_free(gw->ev_hup);
	if (gw->ev_watchdog != NULL)
		event_free(gw->ev_watchdog);
	if (gw->base != NULL)
		event_base_free(gw->base);
	gw_service_reset(gw);
	cmd_sessions_free(gw);
	xs_shutdown();
}

static int
gw_run(struct gw *gw)
{
	struct comp_config cc = {
		.jid = gw->cfg.component_jid,
		.secret = gw->cfg.component_secret,
		.host = gw->cfg.server_host,
		.port = gw->cfg.server_port,
	};
	static const struct comp_events ce = {
		.up = gw_link_up,
		.down = gw_link_down,
		.stanza = gw_link_stanza,
		.closed = gw_link_closed,
	};
	char err[512];
	struct status *status = NULL;
	int rc = 1;

	gw->started_at = time(NULL);
	if (xs_init() == -1) {
		log_error("gateway", "cannot initialise the XML stream engine");
		return 1;
	}
	if ((gw->base = event_base_new()) == NULL) {
		log_error("gateway", "cannot create the event loop");
		goto out;
	}
	if ((gw->store = store_open(gw->cfg.database, err, sizeof(err))) == NULL) {
		log_error("gateway", "%s", err);
		goto out;
	}
	metrics_raise_nofile();
	if (bridge_start(gw) == -1) {
		log_error("gateway", "cannot start the Barev side");
		goto out;
	}
	if (metrics_start(gw) == -1 || upkeep_start(gw) == -1) {
		log_error("gateway", "cannot start metrics and upkeep");
		goto out;
	}
	if (gw_discovery_setup(gw) == -1) {
		log_error("gateway", "cannot set up service discovery");
		goto out;
	}
	if ((gw->comp = comp_new(gw->base, &cc, &ce, gw)) == NULL) {
		log_error("gateway", "cannot create the component link");
		goto out;
	}
	if (gw_signals_start(gw) == -1) {
		log_error("gateway", "cannot install signal handlers");
		goto out;
	}
	if (gw_watchdog_start(gw) == -1) {
		log_error("gateway", "cannot start the systemd watchdog timer");
		goto out;
	}

	log_info("gateway", "barev-gateway %s starting: component %s via "
	    "%s:%u", BAREV_VERSION, gw->cfg.component_jid,
	    gw->cfg.server_host, gw->cfg.server_port);
	status = status_start(gw);	/* optional: logs why when it fails */
	gw_notify("STATUS=connecting to %s:%u", gw->cfg.server_host,
	    gw->cfg.server_port);
	comp_start(gw->comp);
	if (event_base_dispatch(gw->base) == -1) {
		log_error("gateway", "event loop failed");
		goto out;
	}
	log_info("gateway", "stopped");
	rc = 0;
out:
	gw_run_free(gw, status);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: barev-gateway --config FILE [--test-config | --health]\n"
	    "       barev-gateway --version | --help\n"
	    "\n"
	    "  -c, --config FILE   configuration file (key = value lines);\n"
	    "                      BAREV_GATEWAY_<KEY> variables override it\n"
	    "  -t, --test-config   check the configuration, print \"config "
	    "OK\" and exit\n"
	    "  -H, --health        ask the running daemon (status socket) for\n"
	    "                      its status; exit 0 only if the component\n"
	    "                      link is up\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "\n"
	    "Runs in the foreground and logs to stderr.  SIGHUP reloads the\n"
	    "configuration, SIGTERM stops gracefully.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test-config", no_argument, NULL, 't' },
		{ "health", no_argument, NULL, 'H' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gw gw;
	const char *path = NULL;
	char err[1024];
	int ch, test = 0, health = 0, rc;

	while ((ch = getopt_long(argc, argv, "c:tHVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'H':
			health = 1;
			break;
		case 'V':
			printf("barev-gateway %s\n", BAREV_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || path == NULL) {
		usage(stderr);
		return 1;
	}

	/* a peer that vanishes mid-write must be an EPIPE, not our death */
	signal(SIGPIPE, SIG_IGN);

	memset(&gw, 0, sizeof gw);
	if (gw_config_load(&gw.cfg, path, err, sizeof err) == -1) {
		if (test || health)
			fprintf(stderr, "config: %s\n", err);
		else
			log_error("config", "%s", err);
		return 1;
	}
	if (test) {
		printf("config OK\n");
		gw_config_free(&gw.cfg);
		return 0;
	}
	if (health) {
		rc = status_socket_path(&gw.cfg, err, sizeof err);
		if (rc == 1)
			rc = status_query(err, GW_HEALTH_TIMEOUT_MS, stdout,
			    stderr);
		else if (rc == 0) {
			/* not "down": say why there is nothing to ask */
			fprintf(stderr, "health: the status socket is off"
			    " (status_socket = off), so the daemon cannot be"
			    " asked; set status_socket to a path, or remove the"
			    " key for the default, to use --health\n");
			rc = 1;
		} else {
			fprintf(stderr, "health: %s\n", err);
			rc = 1;
		}
		gw_config_free(&gw.cfg);
		return rc;
	}
	log_set_level(gw.cfg.log_level);
	rc = gw_run(&gw);
	gw_config_free(&gw.cfg);
	return rc;
}
