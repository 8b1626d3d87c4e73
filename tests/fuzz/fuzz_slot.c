/*
 * fuzz_slot — the XEP-0363 upload slot the server's upload service hands
 * back, and the URLs in it.  bob offers alice a file over his pipe (the
 * transcripts' SI offer); the gateway asks the upload service for a slot at
 * once (transfer_in.c); the input answers that request: it is the inside of
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
struct run {
	char id[128];
	char to[256];
};

/* the gateway's upload slot request: its id and where it went */
static void
catch_request(struct fz *f, xmpp_stanza_t *st)
{
	struct run *r = f->arg;
	const char *id = xmpp_stanza_get_id(st), *to = xmpp_stanza_get_to(st);

	if (xmpp_stanza_get_child_by_name_and_ns(st, "request", NS_UPLOAD) &&
	    id != NULL && to != NULL) {
		snprintf(r->id, sizeof r->id, "%s", id);
		snprintf(r->to, sizeof r->to, "%s", to);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	struct fz *f;
	char head[512];
	int fd, i;

	if (size < 1 || size > 64 * 1024)
		return 0;
	memset(&r, 0, sizeof r);
	f = fz_open();
	f->arg = &r;
	f->on_send = catch_request;
	fd = fz_pipe_open(f);
	if (write(fd, BOB_HEADER, strlen(BOB_HEADER)) != (ssize_t)strlen(BOB_HEADER) ||
	    fz_pipe_wait_up(f) == -1)
		abort();
	fz_user_online(f);
	if (write(fd, BOB_OFFER, strlen(BOB_OFFER)) != (ssize_t)strlen(BOB_OFFER))
		abort();
	for (i = 0; i < 1000 && r.id[0] == '\0'; i++)
		fz_settle(f, 1);
	if (r.id[0] == '\0') {
		fprintf(stderr, "the gateway asked for no upload slot\n");
		abort();
	}
	snprintf(head, sizeof head, "<iq type='%s' id='%s' from='%s' to='"
	    FZ_COMPONENT "'>", data[0] & 1 ? "error" : "result", r.id, r.to);
	fz_server_stream(f, head, data + 1, size - 1, "</iq>");
	fz_feed_and_wait(f, fd, "", 0);
	fz_close(f);
	return 0;
}
