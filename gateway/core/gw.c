/*
 * gw — the daemon context every module shares (gw.h): sending through the
 * component link, the reply builders, the graceful stop's end, and which
 * JID is the component's own.  The lowest part of gateway/ that knows the
 * link: avatar/, transfer/, bridge/ and admin/ build on it, and it calls
 * none of them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "barevlink.h"
#include "component.h"
#include "gw.h"
#include "log.h"
#include "xmlstream.h"

xmpp_stanza_t *
gw_add_child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	return xs_add_child(parent, name, ns);
}

int
gw_add_text_child(xmpp_stanza_t *parent, const char *name, const char *text)
{
	return xs_add_text(parent, name, NULL, text) != NULL ? 0 : -1;
}

/* <NAME type=TYPE id=ID to=FROM from=TO/> */
static xmpp_stanza_t *
reply_skeleton(xmpp_stanza_t *st, const char *type)
{
	xmpp_stanza_t *r;
	const char *name = xmpp_stanza_get_name(st);
	const char *id = xmpp_stanza_get_id(st);
	const char *from = xmpp_stanza_get_from(st);
	const char *to = xmpp_stanza_get_to(st);

	if ((r = xmpp_stanza_new(xs_ctx())) == NULL)
		return NULL;
	if (xmpp_stanza_set_name(r, name != NULL ? name : "iq") != XMPP_EOK ||
	    xmpp_stanza_set_type(r, type) != XMPP_EOK ||
	    (id != NULL && xmpp_stanza_set_id(r, id) != XMPP_EOK) ||
	    (from != NULL && xmpp_stanza_set_to(r, from) != XMPP_EOK) ||
	    (to != NULL && xmpp_stanza_set_from(r, to) != XMPP_EOK)) {
		xmpp_stanza_release(r);
		return NULL;
	}
	return r;
}

xmpp_stanza_t *
gw_iq_result(xmpp_stanza_t *iq)
{
	return reply_skeleton(iq, "result");
}

xmpp_stanza_t *
gw_error_reply(xmpp_stanza_t *st, const char *type, const char *cond,
    const char *text)
{
	xmpp_stanza_t *r, *err, *t;

	if ((r = reply_skeleton(st, "error")) == NULL)
		return NULL;
	if ((err = gw_add_child(r, "error", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(err, "type", type) != XMPP_EOK ||
	    gw_add_child(err, cond, NS_STANZAS) == NULL)
		goto fail;
	if (text != NULL) {
		if (gw_add_text_child(err, "text", text) == -1 ||
		    (t = xmpp_stanza_get_child_by_name(err, "text")) == NULL ||
		    xmpp_stanza_set_ns(t, NS_STANZAS) != XMPP_EOK)
			goto fail;
	}
	return r;
fail:
	xmpp_stanza_release(r);
	return NULL;
}

void
gw_reply_error(struct gw *gw, xmpp_stanza_t *st, const char *type,
    const char *cond, const char *text)
{
	xmpp_stanza_t *r;
	const char *stype = xmpp_stanza_get_type(st);

	if (stype != NULL && strcmp(stype, "error") == 0)
		return;
	if (xmpp_stanza_get_from(st) == NULL)
		return;		/* nobody to tell */
	if ((r = gw_error_reply(st, type, cond, text)) == NULL) {
		log_error("gateway", "cannot build a %s error (out of memory)",
		    cond);
		return;
	}
	(void)gw_send(gw, r);
	xmpp_stanza_release(r);
}

int
gw_send(struct gw *gw, xmpp_stanza_t *st)
{
	const char *name = xmpp_stanza_get_name(st);
	const char *to = xmpp_stanza_get_to(st);
	int rc;

	if (gw->send_fn != NULL)
		return gw->send_fn(gw, st);
	if (gw->comp == NULL)
		return -1;
	rc = comp_send(gw->comp, st);
	if (rc < 0)
		log_debug("gateway", "cannot send <%s> to %s: %s",
		    name != NULL ? name : "?", to != NULL ? to : "?",
		    rc == -2 ? "too large" : "component link down");
	return rc;
}

int
gw_send_release(struct gw *gw, xmpp_stanza_t *st)
{
	int rc;

	if (st == NULL)
		return -1;
	rc = gw_send(gw, st);
	xmpp_stanza_release(st);
	return rc;
}

/*
 * A graceful stop ends once the link is closed and no Barev pipe is still
 * draining (barevlink keeps reading what peers wrote before our goodbye),
 * or at GW_STOP_BOUND_MS, whichever comes first.
 */
void
gw_stop_progress(struct gw *gw)
{
	struct timeval tv = { 0, 100 * 1000 };
	struct bl_stats bs;

	if (!gw->stopping || !gw->link_closed)
		return;
	if (gw->bl != NULL) {
		bl_get_stats(gw->bl, &bs);
		if (bs.pipes_up > 0)
			return;
	}
	event_base_loopexit(gw->base, &tv);
}

int
gw_link_is_up(const struct gw *gw)
{
	return gw->comp != NULL && comp_state(gw->comp) == COMP_UP;
}

int
gw_is_component_jid(const struct gw *gw, const char *jid)
{
	const char *slash;
	size_t len;

	if (jid == NULL || gw->cfg.component_jid == NULL)
		return 0;
	slash = strchr(jid, '/');
	len = slash != NULL ? (size_t)(slash - jid) : strlen(jid);
	return len == strlen(gw->cfg.component_jid) &&
	    strncasecmp(jid, gw->cfg.component_jid, len) == 0;
}
