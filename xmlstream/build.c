/*
 * build — the few stanza builders every side repeats, on libstrophe's own
 * calls, each result checked: a stanza with its name and addresses, a
 * child element, a child element with text.  All in xs_ctx().
 */
#include "xmlstream.h"

xmpp_stanza_t *
xs_stanza(const char *name, const char *type, const char *from,
    const char *to)
{
	xmpp_stanza_t *st = xmpp_stanza_new(xs_ctx());

	if (st == NULL)
		return NULL;
	if (xmpp_stanza_set_name(st, name) != XMPP_EOK ||
	    (type != NULL && xmpp_stanza_set_type(st, type) != XMPP_EOK) ||
	    (from != NULL && xmpp_stanza_set_from(st, from) != XMPP_EOK) ||
	    (to != NULL && xmpp_stanza_set_to(st, to) != XMPP_EOK)) {
		xmpp_stanza_release(st);
		return NULL;
	}
	return st;
}

xmpp_stanza_t *
xs_add_child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	xmpp_stanza_t *ch;

	if ((ch = xmpp_stanza_new(xs_ctx())) == NULL)
		return NULL;
	if (xmpp_stanza_set_name(ch, name) != XMPP_EOK ||
	    (ns != NULL && xmpp_stanza_set_ns(ch, ns) != XMPP_EOK) ||
	    xmpp_stanza_add_child_ex(parent, ch, 0) != XMPP_EOK) {
		xmpp_stanza_release(ch);
		return NULL;
	}
	return ch;	/* the parent holds the only reference */
}

xmpp_stanza_t *
xs_add_text(xmpp_stanza_t *parent, const char *name, const char *ns,
    const char *text)
{
	xmpp_stanza_t *el, *t;

	if ((el = xs_add_child(parent, name, ns)) == NULL)
		return NULL;
	if (text == NULL)
		return el;
	if ((t = xmpp_stanza_new(xs_ctx())) == NULL)
		return NULL;
	if (xmpp_stanza_set_text(t, text) != XMPP_EOK ||
	    xmpp_stanza_add_child_ex(el, t, 0) != XMPP_EOK) {
		xmpp_stanza_release(t);
		return NULL;
	}
	return el;
}
