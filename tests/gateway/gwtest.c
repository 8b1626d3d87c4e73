/*
 * gwtest — see gwtest.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "bridge.h"
#include "cmdsession.h"
#include "component.h"
#include "store.h"
#include "transfer.h"
#include "xmlstream.h"
#include "gwtest.h"
#include "route.h"

int
gwt_free_port(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET6, SOCK_STREAM, 0), port;

	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, len) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1) {
		perror("free_port");
		exit(2);
	}
	port = ntohs(sa.sin6_port);
	close(fd);
	return port;
}

int
gwt_streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

int
gwt_world_start(struct gw *gw, const char *dir, const char *db,
    const char *extra, int (*send_fn)(struct gw *, xmpp_stanza_t *))
{
	struct comp_config cc = { .jid = GWT_JID, .secret = "s",
	    .host = "127.0.0.1", .port = 1 };
	struct comp_events ce = { 0 };
	char conf[1024], err[512] = "";
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/gw.conf", dir);
	if ((f = fopen(conf, "w")) == NULL) {
		perror(conf);
		return -1;
	}
	fprintf(f, "component_jid = " GWT_JID "\ncomponent_secret = s\n"
	    "database = %s\nadmins = admin@example.org\nbarev_address = ::1\n"
	    "barev_port = %d\nrefuse_outside_yggdrasil = false\n%s", db,
	    gwt_free_port(), extra != NULL ? extra : "");
	fclose(f);
	if (gw_config_load(&gw->cfg, conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	if (xs_init() == -1 || (gw->base = event_base_new()) == NULL ||
	    (gw->store = store_open(db, err, sizeof(err))) == NULL ||
	    bridge_start(gw) == -1) {
		fprintf(stderr, "setup failed: %s\n", err);
		return -1;
	}
	gw->send_fn = send_fn;
	gw->started_at = time(NULL);
	/* port 1: the link never comes up, stanzas go to send_fn */
	if ((gw->comp = comp_new(gw->base, &cc, &ce, gw)) == NULL) {
		fprintf(stderr, "setup failed: comp_new\n");
		return -1;
	}
	return 0;
}

void
gwt_world_stop(struct gw *gw)
{
	comp_free(gw->comp);
	bridge_shutdown(gw);
	bridge_free(gw);
	transfer_free(gw);
	store_close(gw->store);
	event_base_free(gw->base);
	gw_config_free(&gw->cfg);
	cmd_sessions_free(gw);
	xs_shutdown();
}

xmpp_stanza_t *gwt_sent[GWT_SENT_MAX];
int gwt_nsent;

int
gwt_capture(struct gw *gw, xmpp_stanza_t *st)
{
	(void)gw;
	if (gwt_nsent < GWT_SENT_MAX)
		gwt_sent[gwt_nsent++] = xmpp_stanza_clone(st);
	return 0;
}

void
gwt_forget_sent(void)
{
	for (int i = 0; i < gwt_nsent; i++)
		xmpp_stanza_release(gwt_sent[i]);
	gwt_nsent = 0;
}

xmpp_stanza_t *
gwt_find_sent(const char *name, const char *type, const char *from,
    const char *to)
{
	for (int i = 0; i < gwt_nsent; i++) {
		xmpp_stanza_t *s = gwt_sent[i];
		const char *t = xmpp_stanza_get_type(s);

		if ((name == NULL || gwt_streq(xmpp_stanza_get_name(s), name)) &&
		    (type == NULL || (*type == '\0' ? t == NULL :
		    gwt_streq(t, type))) &&
		    (from == NULL || gwt_streq(xmpp_stanza_get_from(s), from)) &&
		    (to == NULL || gwt_streq(xmpp_stanza_get_to(s), to)))
			return s;
	}
	return NULL;
}

void
gwt_deliver(struct gw *gw, const char *xml)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(xs_ctx(), xml);

	if (st == NULL) {
		fprintf(stderr, "cannot parse %s\n", xml);
		exit(2);
	}
	gw_route_stanza(gw, st);
	xmpp_stanza_release(st);
}
