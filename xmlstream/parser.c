/*
 * xs_parser: a libxml2 SAX2 push parser that turns one endless XML stream
 * into a stream header plus one libstrophe stanza per depth-1 element,
 * delivered the moment the element's end tag has been parsed.  This file
 * feeds libxml2 and runs the parser's life; sax.c builds the stanzas.
 *
 * The one idea: nothing is ever called back from inside libxml2 except
 * on_header and on_stanza.  Errors, limits and the stream end are recorded,
 * the parser is stopped, and on_close is called once xmlParseChunk() has
 * returned, so a callback that frees the parser (or the connection around
 * it) never pulls memory from under libxml2: xs_parser_free() while `busy`
 * only marks the parser doomed and the feed loop frees it on the way out.
 *
 * Bounded memory: input goes to libxml2 in chunks of XS_CHUNK bytes and
 * after each chunk the bytes libxml2 holds unparsed (a huge attribute value
 * or start tag gives no callback) are checked against max_stanza, as are
 * the bytes of the open stanza on every callback.  No DTD is accepted, so
 * no entity but the five predefined ones exists and nothing is fetched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "xmlstream.h"
#include "internal.h"

#define XS_DEFAULT_MAX_STANZA	(64 * 1024)
#define XS_DEFAULT_MAX_DEPTH	32
/* Bytes handed to libxml2 per xmlParseChunk() call. */
#define XS_CHUNK		4096
/* Initial libxml2 input buffer is twice this (its default: 2 * 4 KiB). */
#define XS_LIBXML_BUFSIZE	256
/* An idle parser whose input buffer grew past this is rebuilt small. */
#define XS_COMPACT_AT		2048
/* Text/scratch buffers larger than this are dropped when idle. */
#define XS_KEEP_BUF		512


/* A fresh push parser sharing the process's name dictionary. */
static xmlParserCtxtPtr
xs_ctxt_new(struct xs_parser *p)
{
	xmlParserCtxtPtr ctxt;
	xmlDictPtr dict;
	int saved;

	saved = xmlDefaultBufferSize;
	xmlDefaultBufferSize = XS_LIBXML_BUFSIZE;
	ctxt = xmlCreatePushParserCtxt(&xs_sax, p, NULL, 0, NULL);
	xmlDefaultBufferSize = saved;
	if (ctxt == NULL)
		return NULL;
	dict = xs_dict_acquire();
	if (dict == NULL) {
		xmlFreeParserCtxt(ctxt);
		return NULL;
	}
	xmlDictFree(ctxt->dict);
	ctxt->dict = dict;
	ctxt->str_xml = xmlDictLookup(dict, BAD_CAST "xml", 3);
	ctxt->str_xmlns = xmlDictLookup(dict, BAD_CAST "xmlns", 5);
	ctxt->str_xml_ns = xmlDictLookup(dict, XML_XML_NAMESPACE, 36);
	/* No NOENT: entities are never substituted, let alone fetched. */
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
	return ctxt;
}

static void
xs_drop_tree(struct xs_parser *p)
{
	if (p->depth >= 2 && p->stack[0] != NULL)
		xmpp_stanza_release(p->stack[0]);
	if (p->stack != NULL)
		p->stack[0] = NULL;
	p->text_len = 0;
}

/* Swap in a new libxml2 context; the caller sets the stream state. */
static int
xs_ctxt_replace(struct xs_parser *p)
{
	xmlParserCtxtPtr ctxt;

	ctxt = xs_ctxt_new(p);
	if (ctxt == NULL)
		return -1;
	if (p->ctxt != NULL)
		xmlFreeParserCtxt(p->ctxt);
	p->ctxt = ctxt;
	p->fed = 0;
	p->mark = 0;
	p->hiwater = 0;
	return 0;
}

static int
xs_restart(struct xs_parser *p)
{
	xs_drop_tree(p);
	if (xs_ctxt_replace(p) != 0)
		return -1;
	p->depth = 0;
	p->stop = p->closed = p->reset_req = 0;
	return 0;
}

struct xs_parser *
xs_parser_new(const struct xs_limits *lim, const struct xs_callbacks *cb,
    void *arg)
{
	struct xs_parser *p;

	if (xs_ctx() == NULL)
		return NULL;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	p->max_stanza = XS_DEFAULT_MAX_STANZA;
	p->max_depth = XS_DEFAULT_MAX_DEPTH;
	if (lim != NULL && lim->max_stanza != 0)
		p->max_stanza = lim->max_stanza;
	if (lim != NULL && lim->max_depth != 0)
		p->max_depth = lim->max_depth;
	if (cb != NULL)
		p->cb = *cb;
	p->arg = arg;
	if (xs_ctxt_replace(p) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

static void
xs_destroy(struct xs_parser *p)
{
	xs_drop_tree(p);
	if (p->ctxt != NULL)
		xmlFreeParserCtxt(p->ctxt);
	free(p->stack);
	free(p->text);
	free(p->scratch);
	free(p->root_name);
	free(p->leftover);
	free(p);
}

void
xs_parser_free(struct xs_parser *p)
{
	if (p == NULL)
		return;
	if (p->busy > 0) {
		p->doomed = 1;
		xmlStopParser(p->ctxt);
		return;
	}
	xs_destroy(p);
}

/* Call on_close once; the callee may free the parser. */
static int
xs_deliver_close(struct xs_parser *p)
{
	void (*fn)(void *, enum xs_close, const char *) = p->cb.on_close;
	void *arg = p->arg;
	enum xs_close why = p->why;
	char detail[sizeof p->detail];

	memcpy(detail, p->detail, sizeof detail);
	p->closed = 1;
	if (fn != NULL)
		fn(arg, why, detail[0] != '\0' ? detail : NULL);
	return -1;
}

/*
 * Rebuild an idle parser (inside the root, no stanza open, nothing
 * unparsed) whose input buffer grew: a new context is given the root's
 * start tag again with the namespaces in scope, callbacks muted.  libxml2
 * never gives buffer memory back, this does.
 */
static void
xs_compact(struct xs_parser *p)
{
	xmlParserCtxtPtr old = p->ctxt;
	long ofed = p->fed, omark = p->mark;
	char *buf, *o;
	const char *uri;
	size_t len;
	int i;

	len = strlen(p->root_name) + 3;
	for (i = 0; i < old->nsNr; i += 2) {
		len += 10 + strlen((const char *)old->nsTab[i + 1]) * 6;
		if (old->nsTab[i] != NULL)
			len += strlen((const char *)old->nsTab[i]);
	}
	if ((buf = malloc(len)) == NULL)
		return;
	o = buf;
	o += sprintf(o, "<%s", p->root_name);
	for (i = 0; i < old->nsNr; i += 2) {
		o += sprintf(o, " xmlns%s%s='",
		    old->nsTab[i] != NULL ? ":" : "",
		    old->nsTab[i] != NULL ? (const char *)old->nsTab[i] : "");
		/* The URI is as libxml2 keeps it: '&' already as "&#38;". */
		for (uri = (const char *)old->nsTab[i + 1]; *uri != '\0'; uri++) {
			if (*uri == '<')
				o += sprintf(o, "&lt;");
			else if (*uri == '\'')
				o += sprintf(o, "&apos;");
			else
				*o++ = *uri;
		}
		*o++ = '\'';
	}
	*o++ = '>';
	p->ctxt = NULL;
	if (xs_ctxt_replace(p) != 0)
		goto keep_old;
	p->depth = 0;
	p->replaying = 1;
	p->fed = o - buf;
	xmlParseChunk(p->ctxt, buf, (int)(o - buf), 0);
	p->replaying = 0;
	if (p->depth != 1 || p->stop) {
		/* Cannot happen with what we wrote; keep the old one. */
		xmlFreeParserCtxt(p->ctxt);
		goto keep_old;
	}
	free(buf);
	xmlFreeParserCtxt(old);
	return;
keep_old:
	free(buf);
	p->ctxt = old;
	p->fed = ofed;
	p->mark = omark;
	p->depth = 1;
	p->stop = 0;
	p->hiwater = 0;
}

/* After a feed: give memory back if nothing is in flight. */
static void
xs_idle(struct xs_parser *p)
{
	xmlParserInputPtr in = p->ctxt->input;

	if (p->depth != 1 || in == NULL || in->cur != in->end)
		return;
	if (p->text_cap > XS_KEEP_BUF) {
		free(p->text);
		p->text = NULL;
		p->text_cap = 0;
	}
	if (p->scratch_cap > XS_KEEP_BUF) {
		free(p->scratch);
		p->scratch = NULL;
		p->scratch_cap = 0;
	}
	if (p->hiwater > XS_COMPACT_AT || xs_dict_is_stale(p->ctxt->dict)) {
		xs_compact(p);
		return;
	}
	/* Drop consumed input now rather than when 4 KiB have piled up. */
	if (in->buf != NULL && in->cur - in->base > 0) {
		xmlParserInputShrink(in);
		p->ctxt->checkIndex = 0;
	}
}

/* A reset asked for from a callback: the rest of the input is the new
 * stream's.  libxml2 drops its buffer when stopped, so it was kept. */
static int	xs_feed(struct xs_parser *, const char *, size_t);

static int
xs_do_reset(struct xs_parser *p)
{
	char *left = p->leftover;
	size_t len = p->leftover_len;
	int rc;

	p->leftover = NULL;
	p->leftover_len = 0;
	if (xs_restart(p) != 0) {
		free(left);
		xs_fail(p, XS_ERR_IO, "out of memory");
		return -1;
	}
	rc = left != NULL ? xs_feed(p, left, len) : 0;
	free(left);
	return rc;
}

/* Push bytes through libxml2 until done or stopped. */
static int
xs_feed(struct xs_parser *p, const char *buf, size_t len)
{
	xmlParserInputPtr in;
	size_t n, held;
	int rc;

	while (len > 0 && !p->stop && !p->doomed) {
		n = len < XS_CHUNK ? len : XS_CHUNK;
		in = p->ctxt->input;
		held = (size_t)(in->end - in->base) + n;
		if (held > p->hiwater)
			p->hiwater = held;
		p->fed += n;
		rc = xmlParseChunk(p->ctxt, buf, (int)n, 0);
		buf += n;
		len -= n;
		if (p->doomed)
			return -1;
		if (p->reset_req) {
			if (xs_do_reset(p) != 0)
				return -1;
			continue;
		}
		if (p->stop)
			return -1;
		if (rc != 0) {
			xs_fail(p, XS_ERR_XML, "parser error %d", rc);
			return -1;
		}
		/* Bytes libxml2 sits on without a callback count too. */
		if ((size_t)(p->fed - xs_pos(p)) > p->max_stanza) {
			xs_fail(p, XS_ERR_TOO_BIG,
			    "more than %zu bytes without a complete tag",
			    p->max_stanza);
			return -1;
		}
	}
	return 0;
}

int
xs_parser_feed(struct xs_parser *p, const char *buf, size_t len)
{
	if (p->closed || p->stop)
		return -1;
	p->busy++;
	xs_feed(p, buf, len);
	p->busy--;
	if (p->doomed) {
		if (p->busy == 0)
			xs_destroy(p);
		return -1;
	}
	if (p->stop)
		return p->busy == 0 ? xs_deliver_close(p) : -1;
	if (p->busy == 0)
		xs_idle(p);
	return 0;
}

void
xs_parser_eof(struct xs_parser *p)
{
	if (p->closed || p->stop)
		return;
	p->stop = 1;
	p->why = XS_END_EOF;
	snprintf(p->detail, sizeof p->detail, "%s",
	    p->depth >= 2 ? "end of file inside a stanza" : "");
	if (p->busy == 0)
		xs_deliver_close(p);
}

int
xs_parser_reset(struct xs_parser *p)
{
	xmlParserInputPtr in = p->ctxt->input;
	size_t n;

	if (p->busy == 0)
		return xs_restart(p);
	/* From a callback: what libxml2 has not parsed yet is kept. */
	n = in != NULL && in->cur != NULL ? (size_t)(in->end - in->cur) : 0;
	free(p->leftover);
	p->leftover = NULL;
	p->leftover_len = 0;
	if (n > 0) {
		if ((p->leftover = malloc(n)) == NULL)
			return -1;
		memcpy(p->leftover, in->cur, n);
		p->leftover_len = n;
	}
	p->reset_req = 1;
	xmlStopParser(p->ctxt);
	return 0;
}
