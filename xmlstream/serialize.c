/*
 * Stanza → bytes, with the caller choosing the attribute quote style
 * (Barev iqs must be single-quoted, presence and messages double-quoted:
 * BAREV.md §3-5) and whether childless elements self-close (pascal cannot
 * frame <presence/>: BAREV.md §3).
 *
 * Attribute order is fixed (xmlns, then the routing attributes, then the
 * rest by name) so the same stanza always gives the same bytes; libstrophe
 * keeps attributes in a hash table whose order means nothing.
 *
 * Escaping is minimal — & < > and the quote in use, raw UTF-8 otherwise
 * (pascal shows &#233; literally) — with one exception: tab, newline and
 * carriage return inside attribute values, and carriage return in text,
 * are written as character references, because a parser normalises the
 * raw characters away and the output must re-parse to the same tree.
 *
 * Whatever the caller passes, text and attribute values come out as well-
 * formed XML 1.0: a byte sequence that is not UTF-8 (overlong forms,
 * surrogates, beyond U+10FFFF, truncated) and a character XML forbids (C0
 * controls other than tab, newline and carriage return; U+FFFE, U+FFFF)
 * are each replaced by U+FFFD.  One bad byte in a file name or a peer's
 * message must not make the server close the component stream (it would
 * disconnect every user) or a Barev peer drop the pipe; replacing rather
 * than refusing keeps the rest of the text readable.  Element and attribute
 * names are not checked: they come from the parser or from the code.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "xmlstream.h"

/* Output accumulates on the stack and spills to the heap when large. */
struct xs_sbuf {
	char	*p;
	size_t	 len, cap;
	int	 failed;
	char	 inl[2048];
};

static void
xs_sbuf_init(struct xs_sbuf *b)
{
	b->p = b->inl;
	b->len = 0;
	b->cap = sizeof b->inl;
	b->failed = 0;
}

static void
xs_sbuf_release(struct xs_sbuf *b)
{
	if (b->p != b->inl)
		free(b->p);
}

static int
xs_sbuf_grow(struct xs_sbuf *b, size_t n)
{
	size_t cap = b->cap;
	char *np;

	if (b->failed)
		return -1;
	while (cap - b->len < n)
		cap *= 2;
	if (b->p == b->inl) {
		np = malloc(cap);
		if (np != NULL)
			memcpy(np, b->p, b->len);
	} else
		np = realloc(b->p, cap);
	if (np == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

static inline void
xs_put(struct xs_sbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n && xs_sbuf_grow(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void
xs_putc(struct xs_sbuf *b, char c)
{
	if (b->cap == b->len && xs_sbuf_grow(b, 1) != 0)
		return;
	b->p[b->len++] = c;
}

/*
 * Which bytes need escaping, per context: bit 0 text, bit 1 attribute in
 * double quotes, bit 2 attribute in single quotes; bit 3 (every context)
 * bytes that may have to be replaced: C0 controls XML forbids and every
 * non-ASCII byte, whose sequence is checked.
 */
#define XS_ESC_TEXT	1
#define XS_ESC_DQ	2
#define XS_ESC_SQ	4
#define XS_ESC_CHK	8

#define XS_C		XS_ESC_CHK
#define XS_C8		XS_C, XS_C, XS_C, XS_C, XS_C, XS_C, XS_C, XS_C
#define XS_C64		XS_C8, XS_C8, XS_C8, XS_C8, XS_C8, XS_C8, XS_C8, XS_C8

static const unsigned char xs_esc[256] = {
	/* 0x00-0x1f: only tab, newline and carriage return are XML */
	XS_C, XS_C, XS_C, XS_C, XS_C, XS_C, XS_C, XS_C,
	XS_C, XS_ESC_DQ | XS_ESC_SQ, XS_ESC_DQ | XS_ESC_SQ, XS_C,
	XS_C, 7, XS_C, XS_C,
	XS_C8, XS_C8,
	['&'] = 7, ['<'] = 7, ['>'] = 7,
	['"'] = XS_ESC_DQ, ['\''] = XS_ESC_SQ,
	[0x80] = XS_C64, XS_C64,
};

/*
 * Length of the well-formed UTF-8 sequence at u[0..len) (RFC 3629 table,
 * so no overlongs, surrogates or values past U+10FFFF), or 0 with *bad set
 * to the length of its maximal ill-formed prefix (at least 1), which is
 * replaced by one U+FFFD as Unicode recommends.
 */
static size_t
xs_utf8_len(const unsigned char *u, size_t len, size_t *bad)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef) {
		n = 3;
		if (u[0] == 0xe0)
			lo = 0xa0;
		else if (u[0] == 0xed)
			hi = 0x9f;
	} else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
		n = 4;
		if (u[0] == 0xf0)
			lo = 0x90;
		else if (u[0] == 0xf4)
			hi = 0x8f;
	} else {
		*bad = 1;
		return 0;
	}
	for (i = 1; i < n; i++) {
		if (i >= len || u[i] < lo || u[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	/* U+FFFE and U+FFFF are well-formed UTF-8 but not XML characters */
	if (n == 3 && u[0] == 0xef && u[1] == 0xbf && u[2] >= 0xbe) {
		*bad = 3;
		return 0;
	}
	return n;
}

static void
xs_put_escaped(struct xs_sbuf *b, const char *s, size_t len, char quote)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned mask;
	size_t i, run = 0, n, bad = 1;
	const char *rep;

	mask = quote == '"' ? XS_ESC_DQ : quote == '\'' ? XS_ESC_SQ :
	    XS_ESC_TEXT;
	mask |= XS_ESC_CHK;
	for (i = 0; i < len; i++) {
		if ((xs_esc[u[i]] & mask) == 0)
			continue;
		if (u[i] >= 0x80 &&
		    (n = xs_utf8_len(u + i, len - i, &bad)) != 0) {
			i += n - 1;	/* a good character stays in the run */
			continue;
		}
		xs_put(b, s + run, i - run);
		run = i + 1;
		switch (u[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		case '\t':
			rep = "&#9;";
			break;
		case '\n':
			rep = "&#10;";
			break;
		case '\r':
			rep = "&#13;";
			break;
		default:
			/* a forbidden control or an ill-formed sequence */
			rep = "\xef\xbf\xbd";	/* U+FFFD */
			if (u[i] >= 0x80) {
				i += bad - 1;
				run = i + 1;
			}
			break;
		}
		xs_put(b, rep, strlen(rep));
	}
	xs_put(b, s + run, len - run);
}

/* Sort key: xmlns, then the routing attributes in per-element order. */
static int
xs_attr_rank(const char *name, int is_iq)
{
	static const char *const iq_order[] = { "type", "id", "from", "to" };
	static const char *const other[] = { "to", "from", "type", "id" };
	const char *const *order = is_iq ? iq_order : other;
	int i;

	if (strcmp(name, "xmlns") == 0)
		return 0;
	for (i = 0; i < 4; i++) {
		if (strcmp(name, order[i]) == 0)
			return i + 1;
	}
	return 5;
}

static int
xs_attr_before(const char *a, int ra, const char *b, int rb)
{
	if (ra != rb)
		return ra < rb;
	return ra == 5 && strcmp(a, b) < 0;
}

#define XS_ATTRS_INLINE	16

static void
xs_put_attrs(struct xs_sbuf *b, xmpp_stanza_t *st, const char *name,
    char quote)
{
	const char *inl[2 * XS_ATTRS_INLINE], **kv = inl, *k, *v;
	int rinl[XS_ATTRS_INLINE], *rank = rinl;
	int n, i, j, r, is_iq;

	n = xmpp_stanza_get_attribute_count(st);
	if (n <= 0)
		return;
	if (n > XS_ATTRS_INLINE) {
		kv = calloc(2 * (size_t)n, sizeof *kv);
		rank = calloc((size_t)n, sizeof *rank);
		if (kv == NULL || rank == NULL) {
			b->failed = 1;
			goto out;
		}
	}
	n = xmpp_stanza_get_attributes(st, kv, 2 * n) / 2;
	is_iq = strcmp(name, "iq") == 0;
	/* Insertion sort: a handful of attributes, no allocation. */
	for (i = 0; i < n; i++) {
		k = kv[2 * i];
		v = kv[2 * i + 1];
		r = xs_attr_rank(k, is_iq);
		for (j = i; j > 0 &&
		    xs_attr_before(k, r, kv[2 * (j - 1)], rank[j - 1]); j--) {
			kv[2 * j] = kv[2 * (j - 1)];
			kv[2 * j + 1] = kv[2 * (j - 1) + 1];
			rank[j] = rank[j - 1];
		}
		kv[2 * j] = k;
		kv[2 * j + 1] = v;
		rank[j] = r;
	}
	for (i = 0; i < n; i++) {
		xs_putc(b, ' ');
		xs_put(b, kv[2 * i], strlen(kv[2 * i]));
		xs_putc(b, '=');
		xs_putc(b, quote);
		v = kv[2 * i + 1] != NULL ? kv[2 * i + 1] : "";
		xs_put_escaped(b, v, strlen(v), quote);
		xs_putc(b, quote);
	}
out:
	if (kv != inl)
		free(kv);
	if (rank != rinl)
		free(rank);
}

static void
xs_put_stanza(struct xs_sbuf *b, xmpp_stanza_t *st, unsigned flags)
{
	xmpp_stanza_t *c;
	const char *name, *text;
	char quote = (flags & XS_SER_SINGLE_QUOTES) ? '\'' : '"';
	size_t nl;

	if (xmpp_stanza_is_text(st)) {
		text = xmpp_stanza_get_text_ptr(st);
		if (text != NULL)
			xs_put_escaped(b, text, strlen(text), 0);
		return;
	}
	name = xmpp_stanza_get_name(st);
	if (name == NULL)
		return;
	nl = strlen(name);
	xs_putc(b, '<');
	xs_put(b, name, nl);
	xs_put_attrs(b, st, name, quote);
	c = xmpp_stanza_get_children(st);
	if (c == NULL && (flags & XS_SER_SELFCLOSE)) {
		xs_put(b, "/>", 2);
		return;
	}
	xs_putc(b, '>');
	for (; c != NULL; c = xmpp_stanza_get_next(c))
		xs_put_stanza(b, c, flags);
	xs_put(b, "</", 2);
	xs_put(b, name, nl);
	xs_putc(b, '>');
}

int
xs_serialize(xmpp_stanza_t *st, unsigned flags, struct evbuffer *out)
{
	struct xs_sbuf b;
	int rc = -1;

	xs_sbuf_init(&b);
	xs_put_stanza(&b, st, flags);
	if (!b.failed && evbuffer_add(out, b.p, b.len) == 0)
		rc = 0;
	xs_sbuf_release(&b);
	return rc;
}

char *
xs_serialize_str(xmpp_stanza_t *st, unsigned flags, size_t *lenp)
{
	struct xs_sbuf b;
	char *s;

	xs_sbuf_init(&b);
	xs_put_stanza(&b, st, flags);
	xs_putc(&b, '\0');
	if (b.failed) {
		xs_sbuf_release(&b);
		return NULL;
	}
	if (b.p == b.inl) {
		if ((s = malloc(b.len)) == NULL)
			return NULL;
		memcpy(s, b.p, b.len);
	} else
		s = b.p;
	if (lenp != NULL)
		*lenp = b.len - 1;
	return s;
}

void *
xs_serialize_block(xmpp_stanza_t *st, unsigned flags, size_t head,
    size_t *lenp)
{
	struct xs_sbuf b;
	char *blk = NULL;

	xs_sbuf_init(&b);
	xs_put_stanza(&b, st, flags);
	if (!b.failed && (blk = malloc(head + b.len)) != NULL) {
		memcpy(blk + head, b.p, b.len);
		*lenp = b.len;
	}
	xs_sbuf_release(&b);
	return blk;
}

int
xs_escape(struct evbuffer *out, const char *s, size_t len, char quote)
{
	struct xs_sbuf b;
	int rc = -1;

	xs_sbuf_init(&b);
	xs_put_escaped(&b, s, len, quote);
	if (!b.failed && evbuffer_add(out, b.p, b.len) == 0)
		rc = 0;
	xs_sbuf_release(&b);
	return rc;
}

char *
xs_utf8_repair(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i, n, bad;
	struct xs_sbuf b;
	char *out;

	xs_sbuf_init(&b);
	for (i = 0; i < len; i++) {
		bad = 1;
		if (u[i] >= 0x80 && (n = xs_utf8_len(u + i, len - i, &bad)) != 0) {
			xs_put(&b, s + i, n);
			i += n - 1;
		} else if (u[i] >= 0x80 || (xs_esc[u[i]] & XS_ESC_CHK)) {
			xs_put(&b, "\xef\xbf\xbd", 3);
			i += bad - 1;
		} else
			xs_putc(&b, s[i]);
	}
	xs_putc(&b, '\0');
	if (b.failed || (out = malloc(b.len)) == NULL) {
		xs_sbuf_release(&b);
		return NULL;
	}
	memcpy(out, b.p, b.len);
	xs_sbuf_release(&b);
	return out;
}
