/*
 * service — the gateway JID's own answers: XEP-0030 disco#info/#items,
 * XEP-0199 ping, XEP-0092 version.  Every other get/set that reaches it
 * gets service-unavailable (RFC 6120 §8.4): clients wait on iqs, so
 * silence is never an answer.
 *
 * The feature list and the disco hooks are the gateway's (gw->service):
 * modules register at startup, before the link comes up.
 */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"
#include "service.h"

#define NS_DISCO_INFO	"http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS	"http://jabber.org/protocol/disco#items"
#define NS_PING		"urn:xmpp:ping"
#define NS_VERSION	"jabber:iq:version"


static const char *const service_base_features[] = {
	NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_VERSION,
};

int
gw_service_add_feature(struct gw *gw, const char *var)
{
	struct gw_service *sv = &gw->service;
	size_t i;
	char *s;

	for (i = 0; i < sizeof service_base_features /
	    sizeof service_base_features[0]; i++) {
		if (strcmp(service_base_features[i], var) == 0)
			return 0;
	}
	for (i = 0; i < sv->nfeatures; i++) {
		if (strcmp(sv->features[i], var) == 0)
			return 0;
	}
	if (sv->nfeatures == GW_SERVICE_MAX_FEATURES) {
		log_error("service", "cannot advertise %s: more than %d "
		    "features", var, GW_SERVICE_MAX_FEATURES);
		return -1;
	}
	if ((s = strdup(var)) == NULL)
		return -1;
	sv->features[sv->nfeatures++] = s;
	return 0;
}

int
gw_service_add_items_hook(struct gw *gw, gw_service_items_fn fn)
{
	struct gw_service *sv = &gw->service;

	if (sv->nitems == GW_SERVICE_MAX_HOOKS)
		return -1;
	sv->items[sv->nitems++] = fn;
	return 0;
}

int
gw_service_add_node_info_hook(struct gw *gw, gw_service_node_info_fn fn)
{
	struct gw_service *sv = &gw->service;

	if (sv->nnode_info == GW_SERVICE_MAX_HOOKS)
		return -1;
	sv->node_info[sv->nnode_info++] = fn;
	return 0;
}

void
gw_service_reset(struct gw *gw)
{
	struct gw_service *sv = &gw->service;
	size_t i;

	for (i = 0; i < sv->nfeatures; i++)
		free(sv->features[i]);
	sv->nfeatures = sv->nitems = sv->nnode_info = 0;
}

/* the iq's first element child: its payload */
static xmpp_stanza_t *
service_payload(xmpp_stanza_t *iq)
{
	xmpp_stanza_t *ch;

	for (ch = xmpp_stanza_get_children(iq); ch != NULL;
	    ch = xmpp_stanza_get_next(ch)) {
		if (xmpp_stanza_is_tag(ch))
			return ch;
	}
	return NULL;
}

/* a result carrying <NAME xmlns=NS [node=NODE]/>; *query is it (borrowed) */
static xmpp_stanza_t *
service_result(xmpp_stanza_t *iq, const char *name, const char *ns,
    const char *node, xmpp_stanza_t **query)
{
	xmpp_stanza_t *r;

	if ((r = gw_iq_result(iq)) == NULL)
		return NULL;
	if (name == NULL)
		return r;
	if ((*query = gw_add_child(r, name, ns)) == NULL ||
	    (node != NULL && xmpp_stanza_set_attribute(*query, "node", node) !=
	    XMPP_EOK)) {
		xmpp_stanza_release(r);
		return NULL;
	}
	return r;
}

static int
service_add_feature_el(xmpp_stanza_t *query, const char *var)
{
	xmpp_stanza_t *f;

	if ((f = gw_add_child(query, "feature", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(f, "var", var) != XMPP_EOK)
		return -1;
	return 0;
}

/* XEP-0030 §3.1; a node only a hook knows */
static xmpp_stanza_t *
service_disco_info(struct gw *gw, xmpp_stanza_t *iq, const char *node,
    const char **cond)
{
	xmpp_stanza_t *r, *q = NULL, *id;
	const char *from = xmpp_stanza_get_from(iq);
	size_t i;
	int rc;

	if ((r = service_result(iq, "query", NS_DISCO_INFO, node, &q)) == NULL)
		return NULL;
	if (node != NULL) {
		for (i = 0; i < gw->service.nnode_info; i++) {
			if ((rc = gw->service.node_info[i](gw, from, node, q)) == 1)
				return r;
			if (rc == -1) {
				*cond = "internal-server-error";
				goto fail;
			}
		}
		*cond = "item-not-found";
		goto fail;
	}
	if ((id = gw_add_child(q, "identity", NULL)) == NULL ||
	    xmpp_stanza_set_attribute(id, "category", "gateway") != XMPP_EOK ||
	    xmpp_stanza_set_attribute(id, "type", "barev") != XMPP_EOK ||
	    xmpp_stanza_set_attribute(id, "name", "Barev gateway") != XMPP_EOK)
		goto fail;
	for (i = 0; i < sizeof service_base_features /
	    sizeof service_base_features[0]; i++) {
		if (service_add_feature_el(q, service_base_features[i]) == -1)
			goto fail;
	}
	for (i = 0; i < gw->service.nfeatures; i++) {
		if (service_add_feature_el(q, gw->service.features[i]) == -1)
			goto fail;
	}
	return r;
fail:
	xmpp_stanza_release(r);
	return NULL;
}

/* XEP-0030 §4; the root lists what every hook adds (nothing yet) */
static xmpp_stanza_t *
service_disco_items(struct gw *gw, xmpp_stanza_t *iq, const char *node,
    const char **cond)
{
	xmpp_stanza_t *r, *q = NULL;
	const char *from = xmpp_stanza_get_from(iq);
	size_t i;
	int rc, claimed = 0;

	if ((r = service_result(iq, "query", NS_DISCO_ITEMS, node, &q)) == NULL)
		return NULL;
	for (i = 0; i < gw->service.nitems; i++) {
		if ((rc = gw->service.items[i](gw, from, node, q)) == -1) {
			*cond = "internal-server-error";
			goto fail;
		}
		if (rc == 1) {
			claimed = 1;
			if (node != NULL)
				break;
		}
	}
	if (node != NULL && !claimed) {
		*cond = "item-not-found";
		goto fail;
	}
	return r;
fail:
	xmpp_stanza_release(r);
	return NULL;
}

/* XEP-0092 §2: name and version; no <os/> (nobody's business) */
static xmpp_stanza_t *
service_version(xmpp_stanza_t *iq)
{
	xmpp_stanza_t *r, *q = NULL;

	if ((r = service_result(iq, "query", NS_VERSION, NULL, &q)) == NULL)
		return NULL;
	if (gw_add_text_child(q, "name", "barev-gateway") == -1 ||
	    gw_add_text_child(q, "version", BAREV_VERSION) == -1) {
		xmpp_stanza_release(r);
		return NULL;
	}
	return r;
}

void
gw_service_handle_iq(struct gw *gw, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *p, *r = NULL;
	const char *type = xmpp_stanza_get_type(iq);
	const char *ns = NULL, *name = NULL, *node = NULL;
	const char *cond = NULL;

	if (type == NULL || (strcmp(type, "get") != 0 &&
	    strcmp(type, "set") != 0))
		return;
	if ((p = service_payload(iq)) != NULL) {
		ns = xmpp_stanza_get_ns(p);
		name = xmpp_stanza_get_name(p);
		node = xmpp_stanza_get_attribute(p, "node");
	}
	if (ns == NULL || name == NULL || strcmp(type, "get") != 0) {
		cond = "service-unavailable";
	} else if (strcmp(ns, NS_DISCO_INFO) == 0 &&
	    strcmp(name, "query") == 0) {
		r = service_disco_info(gw, iq, node, &cond);
	} else if (strcmp(ns, NS_DISCO_ITEMS) == 0 &&
	    strcmp(name, "query") == 0) {
		r = service_disco_items(gw, iq, node, &cond);
	} else if (strcmp(ns, NS_PING) == 0 && strcmp(name, "ping") == 0) {
		r = service_result(iq, NULL, NULL, NULL, NULL);
	} else if (strcmp(ns, NS_VERSION) == 0 &&
	    strcmp(name, "query") == 0) {
		r = service_version(iq);
	} else
		cond = "service-unavailable";

	if (r != NULL) {
		(void)gw_send(gw, r);
		xmpp_stanza_release(r);
		return;
	}
	if (cond == NULL) {
		log_error("service", "cannot build a reply (out of memory)");
		cond = "internal-server-error";
	}
	gw_reply_error(gw, iq, strcmp(cond, "internal-server-error") == 0 ?
	    "wait" : "cancel", cond, NULL);
}
