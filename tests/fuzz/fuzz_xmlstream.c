/*
 * fuzz_xmlstream — the XML stream parser as a socket feeds it: arbitrary
 * bytes in arbitrary chunk splits (a peer's TCP segments), then EOF.
 *
 * Input: [split][mode] then the stream bytes.  `split` 0 feeds everything
 * at once, else chunks of 1..split bytes (a PRNG seeded by it); `mode`
 * bit 0 selects small limits (4 KiB stanzas, depth 6) so the limit paths
 * are reached, bit 1 resets the parser after the first stanza (the
 * component's stream restart), bit 2 frees it from inside a callback.
 *
 * Oracle beyond the sanitizers: on_close comes exactly once, and every
 * stanza serialized (both quote styles) parses back into the same stanza
 * (compared ignoring whitespace, which XML itself normalizes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmlstream.h"

#define WRAP_HDR "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"

struct run {
	struct xs_parser *p;
	int closes;
	int stanzas;
	unsigned mode;
	int reparse;		/* inside the round-trip check */
	char *again;		/* the reparsed stanza, canonical */
	int again_n;
};

static void
squeeze(char *s)
{
	char *w = s;

	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			*w++ = *s;
	*w = '\0';
}

static void
on_header(void *arg, xmpp_stanza_t *h)
{
	char *s = xs_serialize_str(h, XS_SER_SELFCLOSE, NULL);

	(void)arg;
	free(s);
}

static void
roundtrip(xmpp_stanza_t *st);

static void
on_stanza(void *arg, xmpp_stanza_t *st)
{
	struct run *r = arg;

	if (r->reparse) {
		if (r->again_n++ == 0)
			r->again = xs_serialize_str(st, 0, NULL);
		return;
	}
	r->stanzas++;
	roundtrip(st);
	if ((r->mode & 2) && r->stanzas == 1) {
		if (xs_parser_reset(r->p) != 0)
			abort();
	} else if ((r->mode & 4) && r->stanzas == 2) {
		xs_parser_free(r->p);
		r->p = NULL;
	}
}

static void
on_close(void *arg, enum xs_close why, const char *detail)
{
	struct run *r = arg;

	(void)why;
	(void)detail;
	if (r->reparse)
		return;
	if (++r->closes > 1) {
		fprintf(stderr, "on_close called twice\n");
		abort();
	}
}

static const struct xs_callbacks cbs = { on_header, on_stanza, on_close };

/*
 * The round trip's parser: one stream kept open across stanzas and inputs
 * (a new libxml2 context per check cost more than the input itself).  It is
 * only kept while it is back between stanzas, exactly one stanza out of
 * each check; anything else (an error, nothing or more out) and it is
 * thrown away, so no input can leave it in a state the next one sees.
 */
static struct xs_parser *rt_parser;
static struct run rt_run = { .reparse = 1 };

static void
rt_drop(void)
{
	xs_parser_free(rt_parser);
	rt_parser = NULL;
}

/* serialized -> parsed -> serialized must be the same stanza */
static void
roundtrip(xmpp_stanza_t *st)
{
	static const unsigned flags[] = { 0, XS_SER_SINGLE_QUOTES,
	    XS_SER_SELFCLOSE | XS_SER_SINGLE_QUOTES };
	struct xs_limits lim = { .max_stanza = 1 << 22, .max_depth = 200 };
	struct run *rr = &rt_run;
	char *canon, *ser;
	size_t i, len;
	int rc;

	if ((canon = xs_serialize_str(st, 0, NULL)) == NULL)
		abort();
	squeeze(canon);
	for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		if ((ser = xs_serialize_str(st, flags[i], &len)) == NULL)
			abort();
		if (rt_parser == NULL) {
			if ((rt_parser = xs_parser_new(&lim, &cbs, rr)) == NULL)
				abort();
			if (xs_parser_feed(rt_parser, WRAP_HDR, strlen(WRAP_HDR)) != 0)
				abort();
		}
		rr->again = NULL;
		rr->again_n = 0;
		rc = xs_parser_feed(rt_parser, ser, len);
		if (rc != 0 || rr->again_n != 1)
			rt_drop();
		/*
		 * A prefix declared on the stream root is not carried into
		 * the stanza (by design), so the stanza alone may not parse:
		 * only a reparse that gave a stanza is compared.
		 */
		if (rr->again != NULL) {
			squeeze(rr->again);
			if (rr->again_n != 1 || strcmp(rr->again, canon) != 0) {
				fprintf(stderr, "round trip differs (flags %u):\n"
				    "  sent:  %s\n  back:  %s\n", flags[i], ser,
				    rr->again);
				abort();
			}
		}
		free(rr->again);
		rr->again = NULL;
		free(ser);
	}
	free(canon);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	struct xs_limits small = { .max_stanza = 4096, .max_depth = 6 };
	struct run r = { 0 };
	uint32_t rnd;
	unsigned split;
	size_t off, n;

	if (!inited) {
		if (xs_init() == -1)
			abort();
		inited = 1;
	}
	if (size < 2)
		return 0;
	split = data[0];
	rnd = split * 2654435761u + 1;
	r.mode = data[1];
	data += 2;
	size -= 2;
	if ((r.p = xs_parser_new(r.mode & 1 ? &small : NULL, &cbs, &r)) == NULL)
		abort();
	for (off = 0; off < size && r.p != NULL; off += n) {
		n = size - off;
		if (split != 0) {
			rnd = rnd * 1103515245u + 12345u;
			n = 1 + (rnd >> 16) % split;
			if (n > size - off)
				n = size - off;
		}
		if (xs_parser_feed(r.p, (const char *)data + off, n) == -1)
			break;
	}
	if (r.p != NULL) {
		xs_parser_eof(r.p);
		xs_parser_free(r.p);
	}
	if (r.closes != 1 && !(r.mode & 4 && r.stanzas >= 2)) {
		fprintf(stderr, "on_close called %d times\n", r.closes);
		abort();
	}
	return 0;
}
