/*
 * service — what the gateway JID itself answers: XEP-0030 service discovery
 * (info and items), XEP-0199 ping and XEP-0092 software version.  Anything
 * else addressed to the gateway JID that reaches it gets
 * service-unavailable, never silence.
 *
 * Later modules extend discovery at startup (kept in gw->service): features with
 * gw_service_add_feature(), items and node info (e.g. XEP-0050 command
 * nodes) with the hooks below.
 */
#ifndef GW_SERVICE_H
#define GW_SERVICE_H

#include <strophe.h>

struct gw;

/* advertise `var` in disco#info on the gateway JID (copied; duplicates
 * ignored); 0 or -1 */
int gw_service_add_feature(struct gw *gw, const char *var);

/*
 * disco#items on the gateway JID: each hook appends <item/>s to `query`
 * for `node` (NULL = the root).  Return 1 if the node is yours (items
 * appended, possibly none), 0 if not, -1 on failure (internal-server-error).
 * For the root every hook is asked; for a node the first that claims it.
 */
typedef int (*gw_service_items_fn)(struct gw *gw, const char *from,
    const char *node, xmpp_stanza_t *query);
/*
 * disco#info with a node: the hook fills `query` (identities, features)
 * and returns 1 if the node is its own, 0 if not, -1 on failure.  Unclaimed
 * nodes get item-not-found.
 */
typedef int (*gw_service_node_info_fn)(struct gw *gw, const char *from,
    const char *node, xmpp_stanza_t *query);

int gw_service_add_items_hook(struct gw *gw, gw_service_items_fn fn);
int gw_service_add_node_info_hook(struct gw *gw, gw_service_node_info_fn fn);

/* what modules added, kept in `struct gw` (gw.h) */
#define GW_SERVICE_MAX_FEATURES	64
#define GW_SERVICE_MAX_HOOKS	16
struct gw_service {
	char *features[GW_SERVICE_MAX_FEATURES];	/* malloc'd */
	size_t nfeatures;
	gw_service_items_fn items[GW_SERVICE_MAX_HOOKS];
	size_t nitems;
	gw_service_node_info_fn node_info[GW_SERVICE_MAX_HOOKS];
	size_t nnode_info;
};

/*
 * An iq addressed to the gateway JID.  Answers every get/set (result or
 * error); results and errors are not ours to answer and are ignored.
 */
void gw_service_handle_iq(struct gw *gw, xmpp_stanza_t *iq);

/* forget added features and hooks (shutdown, tests) */
void gw_service_reset(struct gw *gw);

#endif
