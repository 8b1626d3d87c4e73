/*
 * fuzz_component — stanzas from the XMPP server into the gateway, the way
 * the component link delivers them: the input is the server's stream after
 * its header, parsed by xmlstream, and every stanza goes to
 * gw_route_stanza() — messages, presence, roster pushes, iqs to the
 * gateway and to contacts, ad-hoc commands and their forms (XEP-0050),
 * XEP-0077, XEP-0100, disco, vCards, upload slots, XEP-0356 — with the
 * answers caught by the gw->send_fn seam (test_commands.c does the same).
 *
 * Oracle beyond the sanitizers: every iq get/set routed to the gateway is
 * answered (result or error, same id, to its sender) by the time the
 * gateway has shut down — a client waits forever for an unanswered one.
 *
 * A client that fills in a command form echoes the session id it was
 * given; the ids are random, so a command whose sessionid is "S" gets the
 * last id the gateway handed out, as the client would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#define NS_COMMANDS "http://jabber.org/protocol/commands"

/* get/set iqs routed and not yet answered (RFC 6120 §8.2.3: each gets
 * exactly one result or error) */
#define MAX_OPEN 64

struct run {
	char sid[128];
	char *open[MAX_OPEN];	/* "id\nrequester" */
	int nopen;
	int overflow;
};

static char *
iq_key(const char *id, const char *jid)
{
	size_t n = strlen(id) + strlen(jid) + 2;
	char *k = malloc(n);

	if (k == NULL)
		abort();
	snprintf(k, n, "%s\n%s", id, jid);
	return k;
}

/* an iq the gateway sends: does it answer one of the open requests? */
static void
answered(struct run *r, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st), *type, *id, *to;
	char *k;

	if (name == NULL || strcmp(name, "iq") != 0 ||
	    (type = xmpp_stanza_get_type(st)) == NULL ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0) ||
	    (id = xmpp_stanza_get_id(st)) == NULL ||
	    (to = xmpp_stanza_get_to(st)) == NULL)
		return;
	k = iq_key(id, to);
	for (int i = 0; i < r->nopen; i++)
		if (strcmp(r->open[i], k) == 0) {
			free(r->open[i]);
			r->open[i] = r->open[--r->nopen];
			break;
		}
	free(k);
}

/* a get/set the server routes to us: it must be answered */
static void
expect_answer(struct run *r, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st), *type, *id, *from;

	if (name == NULL || strcmp(name, "iq") != 0 ||
	    (type = xmpp_stanza_get_type(st)) == NULL ||
	    (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) ||
	    (id = xmpp_stanza_get_id(st)) == NULL ||
	    (from = xmpp_stanza_get_from(st)) == NULL)
		return;
	for (int i = 0; i < r->nopen; i++) {
		char *k = iq_key(id, from);
		int dup = strcmp(r->open[i], k) == 0;

		free(k);
		if (dup)
			return;	/* the same id twice: one answer is enough */
	}
	if (r->nopen == MAX_OPEN) {
		r->overflow = 1;
		return;
	}
	r->open[r->nopen++] = iq_key(id, from);
}

/* what the gateway sends: remember the last command session id */
static void
catch_sid(struct fz *f, xmpp_stanza_t *st)
{
	struct run *r = f->arg;
	xmpp_stanza_t *cmd = xmpp_stanza_get_child_by_name_and_ns(st,
	    "command", NS_COMMANDS);
	const char *sid;

	if (cmd != NULL &&
	    (sid = xmpp_stanza_get_attribute(cmd, "sessionid")) != NULL)
		snprintf(r->sid, sizeof r->sid, "%s", sid);
	answered(r, st);
}

/* a stanza from the server, before it is routed */
static void
on_stanza(struct fz *f, xmpp_stanza_t *st)
{
	struct run *r = f->arg;
	xmpp_stanza_t *cmd = xmpp_stanza_get_child_by_name_and_ns(st,
	    "command", NS_COMMANDS);
	const char *sid;

	if (cmd != NULL && r->sid[0] != '\0' &&
	    (sid = xmpp_stanza_get_attribute(cmd, "sessionid")) != NULL &&
	    strcmp(sid, "S") == 0)
		xmpp_stanza_set_attribute(cmd, "sessionid", r->sid);
	expect_answer(r, st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	struct fz *f;

	if (size > 256 * 1024)
		return 0;
	memset(&r, 0, sizeof r);
	f = fz_open();
	f->arg = &r;
	f->on_send = catch_sid;
	f->on_stanza = on_stanza;
	fz_server_stream(f, NULL, data, size, NULL);
	fz_close(f);
	if (r.nopen > 0 && !r.overflow) {
		fprintf(stderr, "%d iq get/set never answered, e.g. id/from %s\n",
		    r.nopen, r.open[0]);
		abort();
	}
	for (int i = 0; i < r.nopen; i++)
		free(r.open[i]);
	return 0;
}
