/*
 * passthru — what a message carries besides its body when both ends of the
 * pipe are barev-gateways (peercaps.c found out).
 *
 * The users on both sides are XMPP users, so receipts, corrections,
 * reactions, replies, retractions, markers and chat states travel as the
 * client wrote them, with the message id kept so that every reference
 * (which names a message by id) still resolves at the other end.  Only
 * child elements of allow-listed namespaces pass, each checked down to its
 * last descendant, never arbitrary XML.  OMEMO's <encrypted/> (XEP-0384,
 * both versions) passes the same way, untouched but for its JIDs, and
 * pep.c carries the keys it needs.  The JIDs among them (XEP-0461's
 * reply@to, OMEMO 2's keys@jid) cross the pipe as Barev JIDs
 * (nick@address) and are rewritten to the XMPP JIDs of the same people on
 * the far side.
 *
 * Outbound, the allowed children are serialized into the outbox row's
 * `extra` beside the body, so they share its transaction and its order;
 * relay.c builds the wire stanza from both only for a gateway peer.
 *
 * Pure (a part of the translation core, gateway/translate/): who is who is
 * given as a struct tr_pair, and nothing is sent or stored here.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "passthru.h"
#include "xmlstream.h"

#define EXTRA_MAX 65536		/* serialized children of one message: an
				 * OMEMO key per device of both users */
#define CHILDREN_MAX 16
#define DEPTH_MAX 4
#define ID_MAX 128

#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_REPLY "urn:xmpp:reply:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_OMEMO2 "urn:xmpp:omemo:2"

/* namespace, and whether an element of it is worth a message of its own */
static const struct {
	const char *ns;
	int durable;
} allowed[] = {
	{ NS_RECEIPTS, 1 },			/* XEP-0184 */
	{ NS_CHATSTATES, 0 },			/* XEP-0085 */
	{ "urn:xmpp:message-correct:0", 1 },	/* XEP-0308 */
	{ "urn:xmpp:reactions:0", 1 },		/* XEP-0444 */
	{ NS_REPLY, 1 },			/* XEP-0461 */
	{ "urn:xmpp:fallback:0", 0 },		/* XEP-0428, for replies */
	{ "urn:xmpp:message-retract:1", 1 },	/* XEP-0424 */
	{ "urn:xmpp:message-retract:0", 1 },	/* XEP-0424 0.3, in apply-to */
	{ "urn:xmpp:fasten:0", 1 },		/* XEP-0422, for retract:0 */
	{ "urn:xmpp:chat-markers:0", 1 },	/* XEP-0333 */
	{ "urn:xmpp:sid:0", 0 },		/* XEP-0359 origin-id only */
	{ NS_HINTS, 0 },			/* XEP-0334 */
	{ "eu.siacs.conversations.axolotl", 1 },	/* XEP-0384 0.3 (OMEMO) */
	{ NS_OMEMO2, 1 },			/* XEP-0384 0.8+ */
	{ "urn:xmpp:eme:0", 0 },		/* XEP-0380: "it is OMEMO" */
};

/* -1 not allowed, else its `durable` */
static int
ns_allowed(const char *ns)
{
	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (strcmp(ns, allowed[i].ns) == 0)
			return allowed[i].durable;
	return -1;
}

/* every descendant in an allowed namespace (or inheriting one) */
static int
tree_ok(xmpp_stanza_t *el, int depth)
{
	xmpp_stanza_t *ch;

	if (depth > DEPTH_MAX)
		return 0;
	for (ch = xmpp_stanza_get_children(el); ch; ch = xmpp_stanza_get_next(ch)) {
		if (!xmpp_stanza_is_tag(ch))
			continue;
		if (xmpp_stanza_get_ns(ch) && ns_allowed(xmpp_stanza_get_ns(ch)) < 0)
			return 0;
		if (!tree_ok(ch, depth + 1))
			return 0;
	}
	return 1;
}

/* an allowed top-level child: -1 no, else durable or not */
static int
child_allowed(xmpp_stanza_t *ch)
{
	const char *name = xmpp_stanza_get_name(ch);
	int d;

	if (!xmpp_stanza_is_tag(ch) || name == NULL ||
	    (d = ns_allowed(xmpp_stanza_get_ns(ch))) < 0)
		return -1;
	/* XEP-0359: a server's stanza-id could be forged; the origin-id
	 * is the client's own */
	if (strcmp(xmpp_stanza_get_ns(ch), "urn:xmpp:sid:0") == 0 &&
	    strcmp(name, "origin-id") != 0)
		return -1;
	return tree_ok(ch, 1) ? d : -1;
}

/* `jid` (bare or full, any case) is `bare` */
static int
bare_is(const char *jid, const char *bare)
{
	size_t n = strcspn(jid, "/");

	return strlen(bare) == n && strncasecmp(jid, bare, n) == 0;
}

/* `jid` is the Barev JID nick@addr (any case) */
static int
barev_is(const char *jid, const char *nick, const char *addr)
{
	size_t n = strlen(nick);

	return strncasecmp(jid, nick, n) == 0 && jid[n] == '@' &&
	    strcasecmp(jid + n + 1, addr) == 0;
}

/* el[attr] = nick@addr; 0 or -1 (out of memory: the attribute goes) */
static int
set_barev(xmpp_stanza_t *el, const char *attr, const char *nick,
    const char *addr)
{
	size_t n = strlen(nick), m = strlen(addr);
	char *j = malloc(n + m + 2);

	if (j == NULL)
		return -1;
	memcpy(j, nick, n);
	j[n] = '@';
	memcpy(j + n + 1, addr, m + 1);
	xmpp_stanza_set_attribute(el, attr, j);
	free(j);
	return 0;
}

/*
 * A JID of the far side's world in `el`'s attribute `attr` renamed for
 * ours: outbound (an XMPP JID -> a Barev one) the user's JID becomes her
 * Barev JID and the contact's JID the peer's; inbound the other way.
 * `drop`: a JID that is neither is removed (else left as written).
 */
static void
map_jid(const struct tr_pair *p, xmpp_stanza_t *el, const char *attr,
    int outbound, int drop)
{
	const char *jid = xmpp_stanza_get_attribute(el, attr);
	int rc = 1;

	if (jid == NULL)
		return;
	if (outbound && bare_is(jid, p->user_jid))
		rc = set_barev(el, attr, p->user_nick, p->user_addr);
	else if (outbound && bare_is(jid, p->contact_jid))
		rc = set_barev(el, attr, p->contact_nick, p->contact_addr);
	else if (!outbound && barev_is(jid, p->contact_nick, p->contact_addr)) {
		/* the peer's "me" is our contact, its "peer" our user */
		xmpp_stanza_set_attribute(el, attr, p->contact_jid);
		rc = 0;
	} else if (!outbound && barev_is(jid, p->user_nick, p->user_addr)) {
		xmpp_stanza_set_attribute(el, attr, p->user_jid);
		rc = 0;
	}
	if (rc == -1 || (rc == 1 && drop))
		xmpp_stanza_del_attribute(el, attr);
}

/* XEP-0461 reply@to: a JID neither side knows is left out */
static void
rewrite_reply(const struct tr_pair *c, xmpp_stanza_t *el, int outbound)
{
	if (strcmp(xmpp_stanza_get_name(el), "reply") == 0)
		map_jid(c, el, "to", outbound, 1);
}

/* OMEMO 2's <keys jid='…'>: each recipient's keys under her JID, which
 * her client looks for under its own; the rest of it is encrypted */
static void
rewrite_keys(const struct tr_pair *c, xmpp_stanza_t *el, int outbound)
{
	xmpp_stanza_t *hdr, *k;

	if (strcmp(xmpp_stanza_get_name(el), "encrypted") != 0 ||
	    (hdr = xmpp_stanza_get_child_by_name(el, "header")) == NULL)
		return;
	for (k = xmpp_stanza_get_children(hdr); k; k = xmpp_stanza_get_next(k))
		if (xmpp_stanza_is_tag(k) && xmpp_stanza_get_name(k) &&
		    strcmp(xmpp_stanza_get_name(k), "keys") == 0)
			map_jid(c, k, "jid", outbound, 0);
}

/* the JIDs a passed child names, for the other side */
static void
rewrite(const struct tr_pair *c, xmpp_stanza_t *el, int outbound)
{
	const char *ns = xmpp_stanza_get_ns(el);

	if (strcmp(ns, NS_REPLY) == 0)
		rewrite_reply(c, el, outbound);
	else if (strcmp(ns, NS_OMEMO2) == 0)
		rewrite_keys(c, el, outbound);
}

int
passthru_extract(const struct tr_pair *c, xmpp_stanza_t *st, char **extra,
    int *durable)
{
	xmpp_stanza_t *ch, *cp;
	char *buf = NULL, *s, *tmp;
	size_t len = 0, n, count = 0;
	int d;

	*extra = NULL;
	*durable = 0;
	for (ch = xmpp_stanza_get_children(st); ch; ch = xmpp_stanza_get_next(ch)) {
		if ((d = child_allowed(ch)) < 0)
			continue;
		if (++count > CHILDREN_MAX)
			break;
		if ((cp = xmpp_stanza_copy(ch)) == NULL)
			goto oom;
		rewrite(c, cp, 1);
		s = xs_serialize_str(cp, 0, &n);
		xmpp_stanza_release(cp);
		if (s == NULL)
			goto oom;
		if (len + n > EXTRA_MAX) {
			free(s);
			continue;	/* too big to be a reference: left out */
		}
		if ((tmp = realloc(buf, len + n + 1)) == NULL) {
			free(s);
			goto oom;
		}
		buf = tmp;
		memcpy(buf + len, s, n + 1);
		len += n;
		free(s);
		*durable |= d;
	}
	*extra = buf;
	return 0;
oom:
	free(buf);
	*durable = 0;
	return -1;
}

int
passthru_has(const char *extra, const char *name, const char *ns)
{
	xmpp_stanza_t *w;
	int found;

	if (extra == NULL || (w = passthru_parse(extra)) == NULL)
		return 0;
	found = xmpp_stanza_get_child_by_name_and_ns(w, name, ns) != NULL;
	xmpp_stanza_release(w);
	return found;
}

xmpp_stanza_t *
passthru_parse(const char *extra)
{
	size_t n = strlen(extra);
	char *doc;
	xmpp_stanza_t *w;

	if ((doc = malloc(n + 8)) == NULL)
		return NULL;
	memcpy(doc, "<x>", 3);
	memcpy(doc + 3, extra, n);
	memcpy(doc + 3 + n, "</x>", 5);
	w = xmpp_stanza_new_from_string(xs_ctx(), doc);
	free(doc);
	return w;
}

xmpp_stanza_t *
passthru_wire(const char *id, const char *body, const char *extra)
{
	xmpp_stanza_t *msg, *w, *ch, *cp;

	if ((msg = xs_stanza("message", "chat", NULL, NULL)) == NULL)
		return NULL;
	if (id && *id)
		xmpp_stanza_set_id(msg, id);
	if (body && *body)
		(void)xs_add_text(msg, "body", NULL, body);
	if (extra == NULL || (w = passthru_parse(extra)) == NULL)
		return msg;	/* an unreadable extra: the body still goes */
	for (ch = xmpp_stanza_get_children(w); ch; ch = xmpp_stanza_get_next(ch)) {
		if (child_allowed(ch) < 0 || (cp = xmpp_stanza_copy(ch)) == NULL)
			continue;
		xmpp_stanza_add_child_ex(msg, cp, 0);
	}
	xmpp_stanza_release(w);
	return msg;
}

int
passthru_import(const struct tr_pair *c, xmpp_stanza_t *peer, xmpp_stanza_t *out)
{
	xmpp_stanza_t *ch, *cp;
	size_t count = 0;
	int d, durable = 0;

	for (ch = xmpp_stanza_get_children(peer); ch; ch = xmpp_stanza_get_next(ch)) {
		if ((d = child_allowed(ch)) < 0)
			continue;
		if (++count > CHILDREN_MAX)
			break;
		if ((cp = xmpp_stanza_copy(ch)) == NULL)
			continue;
		rewrite(c, cp, 0);
		xmpp_stanza_add_child_ex(out, cp, 0);
		durable |= d;
	}
	return durable;
}

int
passthru_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n > 0 && n <= ID_MAX;
}
