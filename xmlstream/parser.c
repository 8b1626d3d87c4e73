/*
 * xs_parser: a libxml2 SAX2 push parser that turns one endless XML stream
 * into a stream header plus one libstrophe stanza per depth-1 element,
 * delivered the moment the element's end tag has been parsed.
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
#include <stdarg.h>
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

struct xs_parser {
	xmlParserCtxtPtr	 ctxt;
	struct xs_callbacks	 cb;
	void			*arg;
	size_t			 max_stanza;
	unsigned		 max_depth;

	unsigned		 depth;		/* open elements, root included */
	long			 fed;		/* bytes pushed into this ctxt */
	long			 mark;		/* where the next stanza may start */
	long			 stanza_start;
	size_t			 hiwater;	/* largest input buffer seen */

	xmpp_stanza_t		**stack;	/* open elements below the root */
	unsigned		 stack_cap;
	char			*text;		/* pending character data */
	size_t			 text_len, text_cap;
	char			*scratch;	/* NUL-terminated names/values */
	size_t			 scratch_cap;
	char			*root_name;	/* "stream:stream", for rebuilds */

	char			*leftover;	/* unparsed input kept by a reset */
	size_t			 leftover_len;

	unsigned		 busy;		/* inside feed/eof */
	unsigned		 stop:1;	/* an end is recorded, on_close due */
	unsigned		 closed:1;	/* on_close was called */
	unsigned		 doomed:1;	/* freed from a callback */
	unsigned		 replaying:1;	/* rebuilding: no callbacks */
	unsigned		 reset_req:1;	/* reset from a callback */
	enum xs_close		 why;
	char			 detail[160];
};

static void	xs_sax_start(void *, const xmlChar *, const xmlChar *,
		    const xmlChar *, int, const xmlChar **, int, int,
		    const xmlChar **);
static void	xs_sax_end(void *, const xmlChar *, const xmlChar *,
		    const xmlChar *);
static void	xs_sax_chars(void *, const xmlChar *, int);
static void	xs_sax_dtd(void *, const xmlChar *, const xmlChar *,
		    const xmlChar *);
static void	xs_sax_entity(void *, const xmlChar *, int, const xmlChar *,
		    const xmlChar *, xmlChar *);
static void	xs_sax_error(void *, xmlErrorPtr);

/*
 * Only the callbacks we need.  xmlSAXVersion(&h, 2) would also install the
 * tree builder's defaults (startDocument creates a document, getEntity
 * looks entities up): everything not named here must stay NULL.
 */
static xmlSAXHandler xs_sax = {
	.initialized = XML_SAX2_MAGIC,
	.startElementNs = xs_sax_start,
	.endElementNs = xs_sax_end,
	.characters = xs_sax_chars,
	.ignorableWhitespace = xs_sax_chars,
	.cdataBlock = xs_sax_chars,
	.internalSubset = xs_sax_dtd,
	.externalSubset = xs_sax_dtd,
	.entityDecl = xs_sax_entity,
	.serror = xs_sax_error,
};

static long
xs_pos(struct xs_parser *p)
{
	return xmlByteConsumed(p->ctxt);
}

/* Record why the stream ends and stop libxml2; first reason wins. */
static void __attribute__((format(printf, 3, 4)))
xs_fail(struct xs_parser *p, enum xs_close why, const char *fmt, ...)
{
	va_list ap;

	if (p->stop)
		return;
	p->stop = 1;
	p->why = why;
	p->detail[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(p->detail, sizeof p->detail, fmt, ap);
		va_end(ap);
	}
	xmlStopParser(p->ctxt);
}

static char *
xs_scratch(struct xs_parser *p, size_t n)
{
	char *s;

	if (n <= p->scratch_cap)
		return p->scratch;
	s = realloc(p->scratch, n);
	if (s == NULL)
		return NULL;
	p->scratch = s;
	p->scratch_cap = n;
	return s;
}

/* "prefix:local" or "local", into `dst` (room checked by the caller). */
static size_t
xs_qname(char *dst, const xmlChar *prefix, const xmlChar *local)
{
	size_t pl = 0, ll = strlen((const char *)local);

	if (prefix != NULL) {
		pl = strlen((const char *)prefix);
		memcpy(dst, prefix, pl);
		dst[pl++] = ':';
	}
	memcpy(dst + pl, local, ll + 1);
	return pl + ll;
}

/*
 * Attribute values arrive decoded except for '&': without entity
 * substitution libxml2 hands it on as "&#38;" (for its tree builder to
 * decode later), and a literal '&' cannot occur, so that is all to undo.
 */
static void
xs_copy_value(char *dst, const char *v, size_t len)
{
	const char *amp;

	while (len > 0 && (amp = memchr(v, '&', len)) != NULL) {
		memcpy(dst, v, amp - v);
		dst += amp - v;
		*dst++ = '&';
		len -= amp - v;
		v = amp;
		if (len >= 5 && memcmp(v, "&#38;", 5) == 0) {
			v += 5;
			len -= 5;
		} else {
			v++;
			len--;
		}
	}
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static xmpp_stanza_t *
xs_element(struct xs_parser *p, const xmlChar *local, const xmlChar *prefix,
    int nns, const xmlChar **ns, int nattr, const xmlChar **attr)
{
	xmpp_stanza_t *el;
	const char *v;
	char *s;
	size_t kl, vl;
	int i;

	el = xmpp_stanza_new(xs_ctx());
	if (el == NULL)
		return NULL;
	if (prefix == NULL) {
		if (xmpp_stanza_set_name(el, (const char *)local) != 0)
			goto fail;
	} else {
		s = xs_scratch(p, strlen((const char *)prefix) +
		    strlen((const char *)local) + 2);
		if (s == NULL)
			goto fail;
		xs_qname(s, prefix, local);
		if (xmpp_stanza_set_name(el, s) != 0)
			goto fail;
	}
	/* Declarations made on this element become xmlns attributes. */
	for (i = 0; i < nns; i++) {
		v = (const char *)ns[2 * i + 1];
		vl = strlen(v);
		kl = ns[2 * i] != NULL ? strlen((const char *)ns[2 * i]) + 6 :
		    5;
		s = xs_scratch(p, kl + vl + 2);
		if (s == NULL)
			goto fail;
		if (ns[2 * i] != NULL)
			xs_qname(s, BAD_CAST "xmlns", ns[2 * i]);
		else
			memcpy(s, "xmlns", 6);
		xs_copy_value(s + kl + 1, v, vl);
		if (xmpp_stanza_set_attribute(el, s, s + kl + 1) != 0)
			goto fail;
	}
	/* attr[5i]: local, prefix, URI, value, end of value. */
	for (i = 0; i < nattr; i++, attr += 5) {
		v = (const char *)attr[3];
		vl = (const char *)attr[4] - v;
		kl = strlen((const char *)attr[0]) +
		    (attr[1] != NULL ? strlen((const char *)attr[1]) + 1 : 0);
		s = xs_scratch(p, kl + vl + 2);
		if (s == NULL)
			goto fail;
		xs_qname(s, attr[1], attr[0]);
		xs_copy_value(s + kl + 1, v, vl);
		if (xmpp_stanza_set_attribute(el, s, s + kl + 1) != 0)
			goto fail;
	}
	return el;
fail:
	xmpp_stanza_release(el);
	return NULL;
}

/* Bytes of the open stanza so far, against the limit. */
static int
xs_check_size(struct xs_parser *p)
{
	long n;

	if (p->depth < 2)
		return 0;
	n = xs_pos(p) - p->stanza_start;
	if (n >= 0 && (size_t)n > p->max_stanza) {
		xs_fail(p, XS_ERR_TOO_BIG, "stanza exceeds %zu bytes",
		    p->max_stanza);
		return -1;
	}
	return 0;
}

/* Pending character data becomes one text child of the innermost element. */
static int
xs_flush_text(struct xs_parser *p)
{
	xmpp_stanza_t *t;

	if (p->text_len == 0)
		return 0;
	t = xmpp_stanza_new(xs_ctx());
	if (t == NULL)
		goto fail;
	if (xmpp_stanza_set_text_with_size(t, p->text, p->text_len) != 0 ||
	    xmpp_stanza_add_child_ex(p->stack[p->depth - 2], t, 0) != 0) {
		xmpp_stanza_release(t);
		goto fail;
	}
	p->text_len = 0;
	return 0;
fail:
	xs_fail(p, XS_ERR_IO, "out of memory");
	return -1;
}

static void
xs_root_start(struct xs_parser *p, const xmlChar *local,
    const xmlChar *prefix, int nns, const xmlChar **ns, int nattr,
    const xmlChar **attr)
{
	xmpp_stanza_t *hdr;
	char *name;

	if (strcmp((const char *)local, "stream") != 0) {
		xs_fail(p, XS_ERR_NOT_STREAM, "root element is <%.64s>",
		    (const char *)local);
		return;
	}
	/* XMPP is UTF-8 only; libxml2 may have detected UTF-16 or UCS-4. */
	if (p->ctxt->input->buf != NULL &&
	    p->ctxt->input->buf->encoder != NULL) {
		xs_fail(p, XS_ERR_XML, "stream is not UTF-8");
		return;
	}
	p->depth = 1;
	/* libxml2 calls back before consuming the start tag's '>'. */
	p->mark = xs_pos(p) + (p->ctxt->input->cur[0] == '>' ? 1 : 0);
	if (p->replaying)
		return;
	name = malloc((prefix != NULL ? strlen((const char *)prefix) : 0) +
	    strlen((const char *)local) + 2);
	if (name == NULL)
		goto nomem;
	xs_qname(name, prefix, local);
	free(p->root_name);
	p->root_name = name;
	hdr = xs_element(p, local, prefix, nns, ns, nattr, attr);
	if (hdr == NULL)
		goto nomem;
	if (p->cb.on_header != NULL)
		p->cb.on_header(p->arg, hdr);
	xmpp_stanza_release(hdr);
	if (p->doomed || p->reset_req)
		xmlStopParser(p->ctxt);
	return;
nomem:
	xs_fail(p, XS_ERR_IO, "out of memory");
}

static void
xs_sax_start(void *ud, const xmlChar *local, const xmlChar *prefix,
    const xmlChar *uri, int nns, const xmlChar **ns, int nattr,
    int ndefaulted, const xmlChar **attr)
{
	struct xs_parser *p = ud;
	xmpp_stanza_t *el, **stack;
	unsigned d, cap;

	(void)uri;
	(void)ndefaulted;
	if (p->stop)
		return;
	if (p->depth == 0) {
		xs_root_start(p, local, prefix, nns, ns, nattr, attr);
		return;
	}
	d = p->depth;		/* depth of the new element below the root */
	if (d > p->max_depth) {
		xs_fail(p, XS_ERR_TOO_DEEP, "nesting exceeds %u levels",
		    p->max_depth);
		return;
	}
	if (d == 1)
		p->stanza_start = p->mark;
	else if (xs_flush_text(p) != 0)
		return;
	if (xs_check_size(p) != 0)
		return;
	if (d > p->stack_cap) {
		cap = p->stack_cap + 8;
		stack = realloc(p->stack, cap * sizeof *stack);
		if (stack == NULL)
			goto nomem;
		p->stack = stack;
		p->stack_cap = cap;
	}
	el = xs_element(p, local, prefix, nns, ns, nattr, attr);
	if (el == NULL)
		goto nomem;
	if (d > 1 && xmpp_stanza_add_child_ex(p->stack[d - 2], el, 0) != 0) {
		xmpp_stanza_release(el);
		goto nomem;
	}
	p->stack[d - 1] = el;
	p->depth++;
	return;
nomem:
	xs_fail(p, XS_ERR_IO, "out of memory");
}

static void
xs_sax_end(void *ud, const xmlChar *local, const xmlChar *prefix,
    const xmlChar *uri)
{
	struct xs_parser *p = ud;
	xmpp_stanza_t *st;

	(void)local;
	(void)prefix;
	(void)uri;
	if (p->stop)
		return;
	if (p->depth == 1) {
		/* </stream:stream>: whatever follows is not ours to read. */
		p->depth = 0;
		xs_fail(p, XS_END_STREAM, NULL);
		return;
	}
	if (xs_flush_text(p) != 0 || xs_check_size(p) != 0)
		return;
	p->depth--;
	if (p->depth > 1)
		return;
	st = p->stack[0];
	p->stack[0] = NULL;
	p->mark = xs_pos(p);
	if (p->cb.on_stanza != NULL)
		p->cb.on_stanza(p->arg, st);
	xmpp_stanza_release(st);
	if (p->doomed || p->reset_req)
		xmlStopParser(p->ctxt);
}

static void
xs_sax_chars(void *ud, const xmlChar *ch, int len)
{
	struct xs_parser *p = ud;
	size_t need, cap;
	char *t;

	if (p->stop)
		return;
	if (p->depth < 2) {
		/* Whitespace between stanzas is not part of the next one. */
		if (p->depth == 1)
			p->mark = xs_pos(p);
		return;
	}
	if (xs_check_size(p) != 0)
		return;
	need = p->text_len + (size_t)len;
	if (need > p->max_stanza) {
		xs_fail(p, XS_ERR_TOO_BIG, "stanza exceeds %zu bytes",
		    p->max_stanza);
		return;
	}
	if (need > p->text_cap) {
		cap = p->text_cap < 256 ? 256 : p->text_cap;
		while (cap < need)
			cap *= 2;
		t = realloc(p->text, cap);
		if (t == NULL) {
			xs_fail(p, XS_ERR_IO, "out of memory");
			return;
		}
		p->text = t;
		p->text_cap = cap;
	}
	memcpy(p->text + p->text_len, ch, len);
	p->text_len = need;
}

static void
xs_sax_dtd(void *ud, const xmlChar *name, const xmlChar *eid,
    const xmlChar *sid)
{
	(void)name;
	(void)eid;
	(void)sid;
	xs_fail(ud, XS_ERR_DTD, "DOCTYPE refused");
}

static void
xs_sax_entity(void *ud, const xmlChar *name, int type, const xmlChar *pid,
    const xmlChar *sid, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)pid;
	(void)sid;
	(void)content;
	xs_fail(ud, XS_ERR_DTD, "entity declaration refused");
}

static int
xs_is_entity_error(int code)
{
	switch (code) {
	case XML_ERR_UNDECLARED_ENTITY:
	case XML_WAR_UNDECLARED_ENTITY:
	case XML_ERR_ENTITY_IS_EXTERNAL:
	case XML_ERR_ENTITY_IS_PARAMETER:
	case XML_ERR_ENTITY_LOOP:
	case XML_ERR_ENTITY_PROCESSING:
	case XML_ERR_ENTITYREF_IN_PROLOG:
	case XML_ERR_ENTITYREF_IN_EPILOG:
	case XML_ERR_ENTITYREF_IN_DTD:
	case XML_ERR_PEREF_IN_PROLOG:
	case XML_ERR_PEREF_IN_EPILOG:
	case XML_ERR_PEREF_IN_INT_SUBSET:
	case XML_ERR_DOCTYPE_NOT_FINISHED:
	case XML_ERR_EXT_SUBSET_NOT_FINISHED:
		return 1;
	}
	return 0;
}

/* Any error, namespace errors included, ends the stream; warnings do not. */
static void
xs_sax_error(void *ud, xmlErrorPtr e)
{
	struct xs_parser *p = ud;
	const xmlChar *cur;
	size_t n;
	enum xs_close why = XS_ERR_XML;

	if (e == NULL || e->level < XML_ERR_ERROR)
		return;
	if (xs_is_entity_error(e->code))
		why = XS_ERR_DTD;
	/* "<!DOCTYPE" or "<!ENTITY" inside the stream is an attempt too. */
	cur = p->ctxt->input != NULL ? p->ctxt->input->cur : NULL;
	if (cur != NULL && cur[0] == '<' && cur[1] == '!' &&
	    (cur[2] == 'D' || cur[2] == 'E'))
		why = XS_ERR_DTD;
	n = e->message != NULL ? strcspn(e->message, "\n") : 0;
	xs_fail(p, why, "%.*s (line %d)", (int)n,
	    e->message != NULL ? e->message : "", e->line);
}

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
