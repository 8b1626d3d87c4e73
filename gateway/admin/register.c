/*
 * register — XEP-0077 in-band registration on the gateway JID.
 *
 * The only thing a user chooses is the nick (XEP-0077 §14.1 `nick`); the
 * address is the gateway's barev_address (provision's prov_register).  A
 * registered user gets <registered/> and their nick back on a get
 * (XEP-0077 §3.1), may change the nick with another set, and leaves with
 * <remove/> (§3.2).  Under registration = admin a get or set from a user
 * without an identity is answered with not-allowed and a sentence saying
 * whom to ask, so the client shows why instead of an empty form.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gw.h"
#include "log.h"
#include "provision.h"
#include "register.h"
#include "store.h"
#include "xmlstream.h"

#define DATA_NS		"jabber:x:data"
#define REG_VAL_MAX	4096		/* bytes of a submitted nick */

/* provision's error classes as XEP-0077 §9 / RFC 6120 §8.3 conditions */
static void
reply_prov_error(struct gw *gw, xmpp_stanza_t *iq, const struct prov_result *r)
{
	static const struct {
		const char *type, *cond;
	} map[] = {
		[PROV_OK] = { "wait", "internal-server-error" },
		[PROV_BAD_INPUT] = { "modify", "not-acceptable" },
		[PROV_CONFLICT] = { "cancel", "conflict" },
		[PROV_NOT_FOUND] = { "cancel", "item-not-found" },
		[PROV_NOT_ALLOWED] = { "cancel", "not-allowed" },
		[PROV_INTERNAL] = { "wait", "internal-server-error" },
	};
	unsigned e = (unsigned)r->err < sizeof(map) / sizeof(map[0]) ?
	    (unsigned)r->err : PROV_INTERNAL;

	gw_reply_error(gw, iq, map[e].type, map[e].cond, r->msg);
}

static void
send_result(struct gw *gw, xmpp_stanza_t *st)
{
	if (st == NULL) {
		log_error("register", "out of memory answering a registration");
		return;
	}
	gw_send(gw, st);
	xmpp_stanza_release(st);
}

/* Bare JID of `from`, lower-cased as the store keeps it. */
static int
bare_of(const char *from, char *out, size_t len)
{
	size_t n = strcspn(from, "/");

	if (n == 0 || n >= len || memchr(from, '@', n) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)from[i]);
	out[n] = '\0';
	return 0;
}

/*
 * The submitted nick: legacy <nick> or a data form's `nick` field
 * (XEP-0077 §4).  0 with *nick malloc'd (NULL when none was sent), -1 out
 * of memory, 1 far too long.
 */
static int
submitted_nick(xmpp_stanza_t *query, char **nick)
{
	xmpp_stanza_t *el = xmpp_stanza_get_child_by_name(query, "nick"), *x;
	size_t n = 0;
	char *buf;

	*nick = NULL;
	if (el == NULL &&
	    (x = xmpp_stanza_get_child_by_name_and_ns(query, "x", DATA_NS)) != NULL) {
		for (xmpp_stanza_t *f = xmpp_stanza_get_children(x); f;
		    f = xmpp_stanza_get_next(f)) {
			const char *var = xmpp_stanza_get_attribute(f, "var");

			if (var != NULL && strcmp(var, "nick") == 0) {
				el = xmpp_stanza_get_child_by_name(f, "value");
				break;
			}
		}
	}
	if (el == NULL)
		return 0;
	if ((buf = malloc(REG_VAL_MAX + 1)) == NULL)
		return -1;
	for (xmpp_stanza_t *t = xmpp_stanza_get_children(el); t;
	    t = xmpp_stanza_get_next(t)) {
		const char *s = xmpp_stanza_is_text(t) ? xmpp_stanza_get_text_ptr(t) : NULL;
		size_t l = s ? strlen(s) : 0;

		if (n + l > REG_VAL_MAX) {
			free(buf);
			return 1;
		}
		memcpy(buf + n, s ? s : "", l);
		n += l;
	}
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	*nick = buf;
	return 0;
}

static void
not_allowed(struct gw *gw, xmpp_stanza_t *iq)
{
	const struct gw_strlist *a = &gw->cfg.admins;
	char text[512];
	int any = a->n > 0 && a->v[0][0];

	snprintf(text, sizeof(text), "Barev identities on this gateway are given"
	    " by its administrators%s%s%s: ask one of them for an identity.",
	    any ? " (" : "", any ? a->v[0] : "", any ? ")" : "");
	gw_reply_error(gw, iq, "cancel", "not-allowed", text);
}

static void
handle_get(struct gw *gw, xmpp_stanza_t *iq, const char *bare)
{
	struct store_identity id;
	xmpp_stanza_t *r, *q;
	char text[512];
	int rc = store_identity_get_jid(gw->store, bare, &id);

	if (rc == STORE_NOTFOUND && !prov_may_register(gw, bare)) {
		not_allowed(gw, iq);
		return;
	}
	if (rc != STORE_OK && rc != STORE_NOTFOUND) {
		gw_reply_error(gw, iq, "wait", "internal-server-error",
		    "The gateway's database is not available; try again later.");
		return;
	}
	if (rc == STORE_OK)
		snprintf(text, sizeof(text), "You are %s@%s on Barev (port %d)."
		    " Submit a new nick to change it, or unregister to delete"
		    " your Barev identity and contacts.", id.nick, id.address,
		    id.port);
	else
		snprintf(text, sizeof(text), "Choose the nick Barev friends will"
		    " know you by (1 to 64 characters, no spaces). Your Barev"
		    " address will be NICK@%s.", gw->cfg.barev_address);
	if ((r = gw_iq_result(iq)) == NULL ||
	    (q = gw_add_child(r, "query", REGISTER_NS)) == NULL ||
	    gw_add_text_child(q, "instructions", text) == -1 ||
	    (rc == STORE_OK && gw_add_child(q, "registered", NULL) == NULL) ||
	    (rc == STORE_OK ? gw_add_text_child(q, "nick", id.nick) == -1 :
	    gw_add_child(q, "nick", NULL) == NULL)) {
		if (r != NULL)
			xmpp_stanza_release(r);
		r = NULL;
	}
	send_result(gw, r);
}

static void
handle_set(struct gw *gw, xmpp_stanza_t *iq, xmpp_stanza_t *query,
    const char *bare)
{
	struct store_identity id;
	struct prov_result r;
	char *nick = NULL;
	int rc, registered;

	memset(&r, 0, sizeof(r));
	rc = store_identity_get_jid(gw->store, bare, &id);
	if (rc != STORE_OK && rc != STORE_NOTFOUND) {
		gw_reply_error(gw, iq, "wait", "internal-server-error",
		    "The gateway's database is not available; try again later.");
		return;
	}
	registered = rc == STORE_OK;

	if (xmpp_stanza_get_child_by_name(query, "remove") != NULL) {
		if (!registered) {
			gw_reply_error(gw, iq, "cancel", "registration-required",
			    "You have no Barev identity to remove.");
			return;
		}
		if (prov_identity_delete(gw, bare, &r) == -1) {
			reply_prov_error(gw, iq, &r);
			return;
		}
		log_info("register", "%s unregistered", bare);
		send_result(gw, gw_iq_result(iq));
		return;
	}

	if (!registered && !prov_may_register(gw, bare)) {
		not_allowed(gw, iq);
		return;
	}
	if ((rc = submitted_nick(query, &nick)) == -1) {
		gw_reply_error(gw, iq, "wait", "internal-server-error",
		    "The gateway ran out of memory; try again.");
		return;
	}
	if (rc == 1 || nick == NULL || *nick == '\0') {
		gw_reply_error(gw, iq, "modify", "not-acceptable", rc == 1 ?
		    "nick: far too long; at most 64 bytes" :
		    "nick: choose a nick (1 to 64 characters, no spaces)");
		free(nick);
		return;
	}
	if (registered && strcmp(nick, id.nick) == 0)
		rc = 0;		/* XEP-0077 §3.1: re-submitting is harmless */
	else if (registered)
		rc = prov_identity_set_nick(gw, bare, nick, &r);
	else
		rc = prov_register(gw, bare, nick, &r);
	if (rc == -1)
		reply_prov_error(gw, iq, &r);
	else {
		log_info("register", "%s registered as %s", bare, nick);
		send_result(gw, gw_iq_result(iq));
	}
	free(nick);
}

int
register_handle_iq(struct gw *gw, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *query;
	const char *type = xmpp_stanza_get_type(iq);
	const char *from = xmpp_stanza_get_from(iq);
	char bare[STORE_JID_MAX];

	query = xmpp_stanza_get_child_by_name_and_ns(iq, "query", REGISTER_NS);
	if (query == NULL)
		return 0;
	if (type == NULL || from == NULL ||
	    (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
		return 1;	/* results and errors are never answered */
	if (bare_of(from, bare, sizeof(bare)) == -1) {
		gw_reply_error(gw, iq, "cancel", "not-allowed",
		    "Only users of an XMPP server can register.");
		return 1;
	}
	if (strcmp(type, "get") == 0)
		handle_get(gw, iq, bare);
	else
		handle_set(gw, iq, query, bare);
	return 1;
}
