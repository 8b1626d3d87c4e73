/*
 * fuzz_slot — the XEP-0363 upload slot the server's upload service hands
 * back, and the URLs in it.  bob offers alice a file over his pipe (the
 * transcripts' SI offer); the gateway asks the upload service for a slot at
 * once (transfer.c); the input answers that request: it is the inside of
 * the <iq/> (type result, or error if the first byte is odd) from
 * upload.example.org with the request's id — <slot><put url><header/>
 * </put><get url/></slot> — and the gateway starts its PUT to whatever the
 * slot says (only 127.0.0.1 and names it cannot resolve in a sandbox:
 * the harness ends before any network answer could matter).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "xmlstream.h"

#define NS_UPLOAD "urn:xmpp:http:upload:0"
#define BOB_HEADER "<?xml version='1.0' encoding='UTF-8'?><stream:stream " \
	"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " \
	"from='bob@" FZ_PEER_ADDR "' to='alice@" FZ_IDENT_ADDR "' version='1.0'>"
#define BOB_OFFER "<iq to='alice@" FZ_IDENT_ADDR "' from='bob@" FZ_PEER_ADDR \
	"' id='0' type='set'><si xmlns='http://jabber.org/protocol/si' " \
	"profile='http://jabber.org/protocol/si/profile/file-transfer' id='0'>" \
	"<file xmlns='http://jabber.org/protocol/si/profile/file-transfer' " \
	"name='b2a.bin' size='20000'/><feature xmlns='http://jabber.org/" \
	"protocol/feature-neg'><x xmlns='jabber:x:data' type='form'><field " \
	"var='stream-method' type='list-single'><option><value>http://" \
	"jabber.org/protocol/bytestreams</value></option></field></x>" \
	"</feature></si></iq>"
#define SERVER_HEADER "<stream:stream xmlns='jabber:component:accept' " \
	"xmlns:stream='http://etherx.jabber.org/streams' from='" FZ_COMPONENT "'>"

struct run {
	struct fz f;
	int (*count)(struct gw *, xmpp_stanza_t *);
	char id[128];
	char to[256];
};

static struct run *cur;

static int
catch_request(struct gw *gw, xmpp_stanza_t *st)
{
	const char *id = xmpp_stanza_get_id(st), *to = xmpp_stanza_get_to(st);

	if (xmpp_stanza_get_child_by_name_and_ns(st, "request", NS_UPLOAD) &&
	    id != NULL && to != NULL) {
		snprintf(cur->id, sizeof cur->id, "%s", id);
		snprintf(cur->to, sizeof cur->to, "%s", to);
	}
	return cur->count(gw, st);
}

static void
on_header(void *arg, xmpp_stanza_t *h)
{
	(void)arg;
	(void)h;
}

static void
on_stanza(void *arg, xmpp_stanza_t *st)
{
	struct run *r = arg;

	gw_route_stanza(&r->f.gw, st);
	fz_settle(&r->f, 0);
}

static void
on_close(void *arg, enum xs_close why, const char *detail)
{
	(void)arg;
	(void)why;
	(void)detail;
}

static const struct xs_callbacks cbs = { on_header, on_stanza, on_close };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xs_limits lim = { .max_stanza = 512 * 1024 };
	struct run r;
	struct xs_parser *p;
	char head[512];
	int fd, i;

	if (size < 1 || size > 64 * 1024)
		return 0;
	memset(&r, 0, sizeof r);
	cur = &r;
	fz_open(&r.f);
	r.count = r.f.gw.send_fn;
	r.f.gw.send_fn = catch_request;
	fd = fz_pipe_open(&r.f);
	if (write(fd, BOB_HEADER, strlen(BOB_HEADER)) != (ssize_t)strlen(BOB_HEADER) ||
	    fz_pipe_wait_up(&r.f) == -1)
		abort();
	fz_user_online(&r.f);
	if (write(fd, BOB_OFFER, strlen(BOB_OFFER)) != (ssize_t)strlen(BOB_OFFER))
		abort();
	for (i = 0; i < 1000 && r.id[0] == '\0'; i++)
		fz_settle(&r.f, 1);
	if (r.id[0] == '\0') {
		fprintf(stderr, "the gateway asked for no upload slot\n");
		abort();
	}
	snprintf(head, sizeof head, "<iq type='%s' id='%s' from='%s' to='"
	    FZ_COMPONENT "'>", data[0] & 1 ? "error" : "result", r.id, r.to);
	if ((p = xs_parser_new(&lim, &cbs, &r)) == NULL)
		abort();
	if (xs_parser_feed(p, SERVER_HEADER, strlen(SERVER_HEADER)) == 0 &&
	    xs_parser_feed(p, head, strlen(head)) == 0 &&
	    xs_parser_feed(p, (const char *)data + 1, size - 1) == 0)
		(void)xs_parser_feed(p, "</iq>", 5);
	xs_parser_eof(p);
	xs_parser_free(p);
	fz_feed_and_wait(&r.f, fd, "", 0);
	fz_close(&r.f);
	cur = NULL;
	return 0;
}
