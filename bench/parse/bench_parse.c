/*
 * bench-parse: how much the stream engine costs on top of libxml2 itself,
 * and what an idle parser/connection weighs.
 *
 * A ~100 MB Barev-like stream is generated in memory (a header, then a
 * seeded mix of messages with and without XHTML-IM, chat states,
 * presences, pings and their results, vCard results with base64) and
 * parsed twice with the same chunk size:
 *   (a) libxml2's SAX2 push parser with empty callbacks, the floor;
 *   (b) xs_parser building every stanza, then xs_serialize of each.
 * Then memory: mallinfo2() before and after N parsers (and N xs_conns on
 * socketpairs) have read a stream header.
 *
 * Usage: bench-parse [megabytes]   (build without sanitizers)
 */
#include <sys/socket.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>
#include <libxml/parser.h>

#include "xmlstream.h"

#define CHUNK	4096

static const char header[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<stream:stream "
    "xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/"
    "streams\" from=\"bob@200:2::2\" to=\"alice@0200:0001::0001\">";

static unsigned long rng = 0x9e3779b97f4a7c15UL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static const char *const words[] = {
	"hello", "bob", "alice", "the", "meeting", "is", "at", "noon",
	"caf\xc3\xa9", "&amp;", "&lt;b&gt;", "yggdrasil", "\xd5\xa2\xd5\xa1"
	"\xd6\x80\xd5\xa5\xd6\x82", "ok", "see", "you", "&quot;soon&quot;",
};

static size_t
put_words(char *o, unsigned n)
{
	size_t len = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		len += sprintf(o + len, "%s%s", i ? " " : "",
		    words[rnd(sizeof words / sizeof words[0])]);
	return len;
}

/* One stanza in the style of BAREV.md and the transcripts. */
static size_t
put_stanza(char *o, unsigned seq)
{
	size_t n = 0;
	unsigned i, k = rnd(100);
	char text[2048];

	if (k < 35) {
		size_t t = put_words(text, 3 + rnd(25));

		n = sprintf(o, "<message to='alice@200:1::1' from='bob@200:2::2'"
		    " type='chat'><body>%.*s</body><html xmlns='http://www.w3."
		    "org/1999/xhtml'><body><font>%.*s</font></body></html><x "
		    "xmlns='jabber:x:event'><composing/></x></message>",
		    (int)t, text, (int)t, text);
	} else if (k < 55) {
		size_t t = put_words(text, 2 + rnd(20));

		n = sprintf(o, "<message to=\"bob@200:2::2\" from=\"alice@200:1"
		    "::1\" type=\"chat\"><body>%.*s</body></message>", (int)t,
		    text);
	} else if (k < 65) {
		n = sprintf(o, "<message to=\"bob@200:2::2\" from=\"alice@200:"
		    "1::1\" type=\"chat\"><composing xmlns='http://jabber.org/"
		    "protocol/chatstates'/></message>");
	} else if (k < 80) {
		n = sprintf(o, "<presence><show>%s</show><status>do not "
		    "disturb</status><x xmlns='vcard-temp:x:update'><photo>"
		    "1d84941e82994a53cc17b62a53d516f7ed0a968a</photo></x>"
		    "</presence>", rnd(2) ? "dnd" : "away");
	} else if (k < 88) {
		n = sprintf(o, "<iq type='get' id='ping-1795311974-%u' from='"
		    "alice@200:1::1' to='bob@200:2::2'><ping xmlns='urn:xmpp:"
		    "ping'/></iq>", seq);
	} else if (k < 96) {
		n = sprintf(o, "<iq type='result' to='alice@0200:0001::0001' "
		    "id='ping-1795311974-%u'/>", seq);
	} else {
		n = sprintf(o, "<iq type='result' to='bob@0200:0002::0002' id='"
		    "vcard-%u'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png"
		    "</TYPE><BINVAL>", seq);
		for (i = 0; i < 1024; i++)
			o[n++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
			    "wxyz0123456789+/"[rnd(64)];
		n += sprintf(o + n, "</BINVAL></PHOTO></vCard></iq>");
	}
	return n;
}

static char *
make_stream(size_t target, size_t *lenp, unsigned *nstanzas)
{
	char *buf = malloc(target + 8192);
	size_t len;
	unsigned seq = 0;

	if (buf == NULL)
		return NULL;
	len = sprintf(buf, "%s", header);
	while (len < target)
		len += put_stanza(buf + len, seq++);
	*lenp = len;
	*nstanzas = seq;
	return buf;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- (a) bare libxml2 ---- */

static unsigned long bare_elements;

static void
bare_start(void *ud, const xmlChar *l, const xmlChar *p, const xmlChar *u,
    int nns, const xmlChar **ns, int na, int nd, const xmlChar **a)
{
	(void)ud; (void)l; (void)p; (void)u; (void)nns; (void)ns; (void)na;
	(void)nd; (void)a;
	bare_elements++;
}

static void
bare_end(void *ud, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
	(void)ud; (void)l; (void)p; (void)u;
}

static void
bare_chars(void *ud, const xmlChar *c, int len)
{
	(void)ud; (void)c; (void)len;
}

static double
run_bare(const char *buf, size_t len)
{
	xmlSAXHandler sax;
	xmlParserCtxtPtr ctxt;
	double t0, t1;
	size_t off, n;

	memset(&sax, 0, sizeof sax);
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = bare_start;
	sax.endElementNs = bare_end;
	sax.characters = bare_chars;
	t0 = now();
	ctxt = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
	for (off = 0; off < len; off += n) {
		n = len - off < CHUNK ? len - off : CHUNK;
		if (xmlParseChunk(ctxt, buf + off, (int)n, 0) != 0) {
			fprintf(stderr, "bare parse failed at %zu\n", off);
			break;
		}
	}
	xmlFreeParserCtxt(ctxt);
	t1 = now();
	return t1 - t0;
}

/* ---- (b) xs_parser + xs_serialize ---- */

static unsigned long xs_stanzas;
static size_t xs_out_bytes;
static struct evbuffer *xs_out;

static void
xs_count_stanza(void *arg, xmpp_stanza_t *st)
{
	(void)arg;
	xs_stanzas++;
	xs_serialize(st, XS_SER_SINGLE_QUOTES, xs_out);
	xs_out_bytes += evbuffer_get_length(xs_out);
	evbuffer_drain(xs_out, evbuffer_get_length(xs_out));
}

static void
xs_closed(void *arg, enum xs_close why, const char *detail)
{
	(void)arg;
	fprintf(stderr, "xs_parser closed: %s %s\n", xs_close_str(why),
	    detail ? detail : "");
}

static double
run_xs(const char *buf, size_t len)
{
	struct xs_limits lim = { .max_stanza = 1 << 20 };
	struct xs_callbacks cb = { NULL, xs_count_stanza, xs_closed };
	struct xs_parser *p;
	double t0, t1;
	size_t off, n;

	xs_out = evbuffer_new();
	t0 = now();
	p = xs_parser_new(&lim, &cb, NULL);
	/* Same chunking as (a); the parser re-chunks at the same size. */
	for (off = 0; off < len; off += n) {
		n = len - off < CHUNK ? len - off : CHUNK;
		if (xs_parser_feed(p, buf + off, n) != 0)
			break;
	}
	xs_parser_free(p);
	t1 = now();
	evbuffer_free(xs_out);
	return t1 - t0;
}

/* ---- memory ---- */

static size_t
heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void
quiet_close(void *arg, enum xs_close why, const char *detail)
{
	(void)arg;
	(void)why;
	(void)detail;
}

static void
mem_parsers(int n)
{
	struct xs_callbacks cb = { NULL, NULL, quiet_close };
	struct xs_parser **ps = calloc(n, sizeof *ps);
	char st[4096];
	size_t before, after_hdr, after_traffic, len;
	int i, k;

	before = heap_used();
	for (i = 0; i < n; i++) {
		ps[i] = xs_parser_new(NULL, &cb, NULL);
		xs_parser_feed(ps[i], header, strlen(header));
	}
	after_hdr = heap_used();
	for (i = 0; i < n; i++) {
		for (k = 0; k < 20; k++) {
			len = put_stanza(st, k);
			xs_parser_feed(ps[i], st, len);
		}
	}
	after_traffic = heap_used();
	printf("memory per idle xs_parser: %.0f bytes after the header, "
	    "%.0f bytes after 20 stanzas (n=%d)\n",
	    (double)(after_hdr - before) / n,
	    (double)(after_traffic - before) / n, n);
	for (i = 0; i < n; i++)
		xs_parser_free(ps[i]);
	free(ps);
}

static int conn_headers;

static void
count_header(void *arg, xmpp_stanza_t *h)
{
	(void)arg;
	(void)h;
	conn_headers++;
}

static void
mem_conns(int n)
{
	struct xs_callbacks cb = { count_header, NULL, quiet_close };
	struct event_base *base = event_base_new();
	struct xs_conn **cs = calloc(n, sizeof *cs);
	int *peers = calloc(n, sizeof *peers), sv[2], i;
	size_t before, after;

	/* Warm libevent's own one-time allocations. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	before = heap_used();
	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			break;
		evutil_make_socket_nonblocking(sv[0]);
		peers[i] = sv[1];
		cs[i] = xs_conn_new(base, sv[0], NULL, &cb, NULL);
		if (write(sv[1], header, strlen(header)) < 0)
			break;
	}
	conn_headers = 0;
	while (conn_headers < i)
		event_base_loop(base, EVLOOP_ONCE);
	after = heap_used();
	printf("memory per idle xs_conn (bufferevent + parser, after the "
	    "header): %.0f bytes (n=%d)\n", (double)(after - before) / i, i);
	for (i = 0; i < n; i++) {
		xs_conn_free(cs[i]);
		close(peers[i]);
	}
	free(cs);
	free(peers);
	event_base_free(base);
}

int
main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 100, len;
	unsigned nst;
	double ta, tb, best_a = 1e9, best_b = 1e9;
	char *buf;
	int round;

	if (xs_init() != 0)
		return 1;
	buf = make_stream(mb * 1000 * 1000, &len, &nst);
	if (buf == NULL)
		return 1;
	printf("stream: %.1f MB, %u stanzas, chunk %d bytes\n", len / 1e6,
	    nst, CHUNK);
	for (round = 0; round < 3; round++) {
		ta = run_bare(buf, len);
		tb = run_xs(buf, len);
		if (ta < best_a)
			best_a = ta;
		if (tb < best_b)
			best_b = tb;
	}
	printf("(a) libxml2 SAX2 push, empty callbacks: %7.1f MB/s\n",
	    len / 1e6 / best_a);
	printf("(b) xs_parser + xs_serialize:           %7.1f MB/s "
	    "(%lu stanzas, %.1f MB out)\n", len / 1e6 / best_b,
	    xs_stanzas / 3, xs_out_bytes / 3 / 1e6);
	printf("ratio b/a: %.2f (target >= 0.40), best of 3\n",
	    best_a / best_b);
	free(buf);
	mem_parsers(1000);
	mem_conns(500);
	xs_shutdown();
	return 0;
}
