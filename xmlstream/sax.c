/*
 * The libxml2 SAX2 side of xs_parser: callbacks that turn start/end tags
 * and character data into libstrophe stanzas — the root into the stream
 * header, each depth-1 element into one stanza handed to on_stanza when its
 * end tag is parsed — while checking depth and size, refusing DTDs and
 * entities, and turning every libxml2 error into a recorded close reason.
 *
 * Names keep their prefix (stream:error); namespace declarations made on an
 * element become its xmlns/xmlns:p attributes and nothing is invented for
 * inherited ones.  Nothing here calls on_close: see parser.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "xmlstream.h"
#include "internal.h"

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
xmlSAXHandler xs_sax = {
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

long
xs_pos(struct xs_parser *p)
{
	return xmlByteConsumed(p->ctxt);
}

void
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
