/*
 * provision — identity and contact management shared by every front end
 * (ad-hoc commands, chat commands, XEP-0077, roster subscriptions).
 *
 * Pattern of every operation: validate everything first (so the user hears
 * about the first wrong field and the store is untouched), then one store
 * transaction, then the live effects through the bridge.  The effects come
 * after the commit so that what peers and rosters see is never ahead of
 * what a restart would restore.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "barevlink.h"
#include "bridge.h"
#include "component.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "metrics.h"
#include "provision.h"
#include "store.h"

const char *
prov_field_var(enum prov_field f)
{
	static const char *const names[] = {
		[PROV_F_NONE] = "", [PROV_F_JID] = "jid", [PROV_F_NICK] = "nick",
		[PROV_F_ADDRESS] = "address", [PROV_F_PORT] = "port",
		[PROV_F_CONTACT] = "contact", [PROV_F_NAME] = "name",
	};

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "";
}

/* the outcome of an operation, with its message for the admin or user */
static void
say(struct prov_result *r, enum prov_err err, enum prov_field field,
    const char *fmt, va_list ap)
{
	r->err = err;
	r->field = field;
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
}

static int
fail(struct prov_result *r, enum prov_err err, enum prov_field field,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(r, err, field, fmt, ap);
	va_end(ap);
	return -1;
}

static int
ok(struct prov_result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(r, PROV_OK, PROV_F_NONE, fmt, ap);
	va_end(ap);
	return 0;
}

/* A bare JID, lower-cased (XMPP localparts and domains compare that way). */
static int
bare_jid(const char *in, char *out, size_t len, struct prov_result *r)
{
	const char *at, *p;
	size_t n;

	while (in && isspace((unsigned char)*in))
		in++;
	if (in == NULL || *in == '\0')
		return fail(r, PROV_BAD_INPUT, PROV_F_JID, "jid: the JID is empty");
	n = strlen(in);
	while (n > 0 && isspace((unsigned char)in[n - 1]))
		n--;
	at = memchr(in, '@', n);
	if (at == NULL || at == in || (size_t)(at - in) == n - 1 ||
	    memchr(in, '/', n) != NULL || memchr(at + 1, '@', n - (size_t)(at - in) - 1))
		return fail(r, PROV_BAD_INPUT, PROV_F_JID,
		    "jid: \"%.*s\" is not a bare JID like alice@example.org",
		    (int)(n > 80 ? 80 : n), in);
	if (n >= len || n >= STORE_JID_MAX)
		return fail(r, PROV_BAD_INPUT, PROV_F_JID, "jid: the JID is too long");
	for (size_t i = 0; i < n; i++) {
		p = in + i;
		if ((unsigned char)*p <= 0x20)
			return fail(r, PROV_BAD_INPUT, PROV_F_JID,
			    "jid: a JID cannot contain spaces");
		out[i] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
	return 0;
}

/* "(warning: …)" text for an address outside 200::/7, or refusal. */
static int
check_yggdrasil(struct gw *gw, const char *addr, enum prov_field field,
    char *warn, size_t wlen, struct prov_result *r)
{
	warn[0] = '\0';
	if (gw_addr_is_yggdrasil(addr))
		return 0;
	if (gw->cfg.refuse_outside_yggdrasil)
		return fail(r, PROV_BAD_INPUT, field, "%s: %s is outside Yggdrasil's"
		    " 200::/7, and this gateway only accepts Yggdrasil addresses",
		    prov_field_var(field), addr);
	snprintf(warn, wlen, " Warning: %s is outside Yggdrasil's 200::/7;"
	    " Barev peers normally live there.", addr);
	return 0;
}

static int
parse_port(struct gw *gw, const char *text, int *port, struct prov_result *r)
{
	char *end;
	long v;

	if (text == NULL || *text == '\0') {
		*port = gw->cfg.barev_port ? gw->cfg.barev_port : GW_DEFAULT_PORT;
		return 0;
	}
	v = strtol(text, &end, 10);
	if (*end != '\0' || v < 1 || v > 65535)
		return fail(r, PROV_BAD_INPUT, PROV_F_PORT,
		    "port: \"%.20s\" is not a port number (1-65535)", text);
	*port = (int)v;
	return 0;
}

static void
format_identity(const struct store_identity *id, char *out, size_t len)
{
	struct gw_baddr a;

	gw_baddr_set(&a, id->nick, id->address, id->port);
	if (gw_baddr_format(&a, out, len) == -1)
		snprintf(out, len, "%s@%s", id->nick, id->address);
}

int
prov_identity_create(struct gw *gw, const char *jid_in, const char *nick,
    const char *addr_in, const char *port_text, struct prov_result *r)
{
	char jid[STORE_JID_MAX], addr[GW_ADDR_TEXT], err[256], warn[160];
	char self[GW_NICK_MAX + GW_ADDR_TEXT + 16];
	struct store_identity id, other;
	int port = 0, rc;

	if (bare_jid(jid_in, jid, sizeof(jid), r) == -1)
		return -1;
	if (gw_nick_check(nick, err, sizeof(err)) == -1)
		return fail(r, PROV_BAD_INPUT, PROV_F_NICK, "nick: %s", err);
	if (addr_in == NULL || *addr_in == '\0')
		return fail(r, PROV_BAD_INPUT, PROV_F_ADDRESS, "address: the address is empty");
	if (gw_addr_canon(addr_in, addr, sizeof(addr)) == -1)
		return fail(r, PROV_BAD_INPUT, PROV_F_ADDRESS,
		    "address: \"%.60s\" is not an IPv6 address", addr_in);
	if (check_yggdrasil(gw, addr, PROV_F_ADDRESS, warn, sizeof(warn), r) == -1)
		return -1;
	if (parse_port(gw, port_text, &port, r) == -1)
		return -1;

	if (store_begin(gw->store) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database is not available");
	rc = store_identity_get_jid(gw->store, jid, &other);
	if (rc == STORE_OK) {
		store_rollback(gw->store);
		format_identity(&other, self, sizeof(self));
		return fail(r, PROV_CONFLICT, PROV_F_JID,
		    "jid: %s already has a Barev identity (%s)", jid, self);
	}
	rc = store_identity_find(gw->store, nick, addr, &other);
	if (rc == STORE_OK) {
		store_rollback(gw->store);
		return fail(r, PROV_CONFLICT, PROV_F_NICK,
		    "nick: %s@%s is already taken by %s", nick, addr, other.jid);
	}
	rc = store_identity_add(gw->store, jid, nick, addr, port, &id.id);
	if (rc != STORE_OK || store_commit(gw->store) != STORE_OK) {
		store_rollback(gw->store);
		if (rc == STORE_DUP)
			return fail(r, PROV_CONFLICT, PROV_F_NICK,
			    "nick: %s@%s is already taken", nick, addr);
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database refused the change");
	}
	if (store_identity_get(gw->store, id.id, &id) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database lost the identity");
	log_info("provision", "identity %s@%s port %d created for %s", nick, addr,
	    port, jid);
	bridge_identity_added(gw, &id);
	format_identity(&id, self, sizeof(self));
	return ok(r, "%s is now %s on Barev (port %d). Barev friends add %s.%s",
	    jid, self, port, self, warn);
}

struct contact_list {
	struct store_contact *v;
	size_t n, cap;
	int oom;
};

static void
collect_contact(void *arg, const struct store_contact *c)
{
	struct contact_list *l = arg;
	struct store_contact *tmp;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;

		if ((tmp = realloc(l->v, cap * sizeof(*tmp))) == NULL) {
			l->oom = 1;
			return;
		}
		l->v = tmp;
		l->cap = cap;
	}
	l->v[l->n++] = *c;
}

int
prov_identity_delete(struct gw *gw, const char *jid_in, struct prov_result *r)
{
	char jid[STORE_JID_MAX], self[GW_NICK_MAX + GW_ADDR_TEXT + 16];
	struct store_identity id;
	struct contact_list l = { 0 };

	if (bare_jid(jid_in, jid, sizeof(jid), r) == -1)
		return -1;
	/* messages accepted for these contacts are stored before they go */
	bridge_commit_accepted(gw);
	if (store_begin(gw->store) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database is not available");
	if (store_identity_get_jid(gw->store, jid, &id) != STORE_OK) {
		store_rollback(gw->store);
		return fail(r, PROV_NOT_FOUND, PROV_F_JID,
		    "jid: %s has no Barev identity", jid);
	}
	if (store_contact_foreach(gw->store, id.id, collect_contact, &l) != STORE_OK ||
	    l.oom || store_identity_delete(gw->store, id.id) != STORE_OK ||
	    store_commit(gw->store) != STORE_OK) {
		store_rollback(gw->store);
		free(l.v);
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database refused the change");
	}
	for (size_t i = 0; i < l.n; i++)
		bridge_contact_removed(gw, &id, &l.v[i]);
	bridge_identity_removed(gw, &id);
	free(l.v);
	format_identity(&id, self, sizeof(self));
	log_info("provision", "identity %s of %s deleted", self, jid);
	return ok(r, "The Barev identity %s of %s was deleted, with its %zu contact%s.",
	    self, jid, l.n, l.n == 1 ? "" : "s");
}

int
prov_identity_set_nick(struct gw *gw, const char *jid_in, const char *nick,
    struct prov_result *r)
{
	char jid[STORE_JID_MAX], err[256], self[GW_NICK_MAX + GW_ADDR_TEXT + 16];
	struct store_identity id, other;
	int rc;

	if (bare_jid(jid_in, jid, sizeof(jid), r) == -1)
		return -1;
	if (gw_nick_check(nick, err, sizeof(err)) == -1)
		return fail(r, PROV_BAD_INPUT, PROV_F_NICK, "nick: %s", err);
	if (store_begin(gw->store) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database is not available");
	if (store_identity_get_jid(gw->store, jid, &id) != STORE_OK) {
		store_rollback(gw->store);
		return fail(r, PROV_NOT_FOUND, PROV_F_JID, "jid: %s has no Barev identity", jid);
	}
	if (store_identity_find(gw->store, nick, id.address, &other) == STORE_OK &&
	    other.id != id.id) {
		store_rollback(gw->store);
		return fail(r, PROV_CONFLICT, PROV_F_NICK,
		    "nick: %s@%s is already taken by %s", nick, id.address, other.jid);
	}
	rc = store_identity_set_nick(gw->store, id.id, nick);
	if (rc != STORE_OK || store_commit(gw->store) != STORE_OK) {
		store_rollback(gw->store);
		return fail(r, rc == STORE_DUP ? PROV_CONFLICT : PROV_INTERNAL,
		    PROV_F_NICK, "nick: the change was refused");
	}
	snprintf(id.nick, sizeof(id.nick), "%s", nick);
	bridge_identity_nick_changed(gw, &id);
	format_identity(&id, self, sizeof(self));
	return ok(r, "%s is now %s on Barev. Tell your Barev friends: they must"
	    " add %s again.", jid, self, self);
}

int
prov_may_register(const struct gw *gw, const char *jid)
{
	return gw->cfg.registration == GW_REG_OPEN &&
	    gw->cfg.barev_address != NULL && gw->cfg.barev_address[0] != '\0' &&
	    gw_config_may_register(&gw->cfg, jid);
}

int
prov_register(struct gw *gw, const char *jid, const char *nick,
    struct prov_result *r)
{
	if (gw->cfg.registration != GW_REG_OPEN)
		return fail(r, PROV_NOT_ALLOWED, PROV_F_NONE,
		    "Barev identities on this gateway are given by its"
		    " administrators: ask one of them for an identity.");
	if (gw->cfg.barev_address == NULL || *gw->cfg.barev_address == '\0')
		return fail(r, PROV_NOT_ALLOWED, PROV_F_NONE,
		    "Self-registration is on but the gateway has no barev_address"
		    " configured; ask the administrators.");
	if (!gw_config_may_register(&gw->cfg, jid))
		return fail(r, PROV_NOT_ALLOWED, PROV_F_NONE,
		    "Self-registration on this gateway is for the users of its"
		    " own server; ask an administrator for an identity.");
	return prov_identity_create(gw, jid, nick, gw->cfg.barev_address, NULL, r);
}

static int
identity_of(struct gw *gw, const char *jid_in, struct store_identity *id,
    struct prov_result *r)
{
	char jid[STORE_JID_MAX];
	int rc;

	if (bare_jid(jid_in, jid, sizeof(jid), r) == -1)
		return -1;
	rc = store_identity_get_jid(gw->store, jid, id);
	if (rc == STORE_NOTFOUND)
		return fail(r, PROV_NOT_FOUND, PROV_F_JID, "jid: %s has no Barev"
		    " identity yet; an administrator can create one", jid);
	if (rc != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database is not available");
	return 0;
}

int
prov_contact_add(struct gw *gw, const char *jid, const char *contact,
    const char *name, struct prov_result *r)
{
	struct store_identity id;
	struct store_contact c;
	struct gw_baddr a;
	char err[256], warn[160], text[GW_NICK_MAX + GW_ADDR_TEXT + 16];
	int rc;

	if (identity_of(gw, jid, &id, r) == -1)
		return -1;
	if (contact == NULL || *contact == '\0')
		return fail(r, PROV_BAD_INPUT, PROV_F_CONTACT,
		    "contact: give the Barev address as nick@ADDRESS");
	if (gw_baddr_parse(contact, &a, err, sizeof(err)) == -1)
		return fail(r, PROV_BAD_INPUT, PROV_F_CONTACT, "contact: %s", err);
	if (name && strlen(name) > STORE_NAME_MAX)
		return fail(r, PROV_BAD_INPUT, PROV_F_NAME,
		    "name: at most %d bytes", STORE_NAME_MAX);
	if (strcasecmp(a.nick, id.nick) == 0 && strcmp(a.addr, id.address) == 0)
		return fail(r, PROV_BAD_INPUT, PROV_F_CONTACT,
		    "contact: that is your own Barev address");
	if (check_yggdrasil(gw, a.addr, PROV_F_CONTACT, warn, sizeof(warn), r) == -1)
		return -1;
	gw_baddr_format(&a, text, sizeof(text));
	rc = store_contact_add(gw->store, id.id, a.nick, a.addr, a.port, name, &c.id);
	if (rc == STORE_DUP)
		return fail(r, PROV_CONFLICT, PROV_F_CONTACT,
		    "contact: %s is already in the contacts of %s", text, id.jid);
	if (rc != STORE_OK || store_contact_get(gw->store, c.id, &c) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database refused the change");
	log_info("provision", "contact %s added for %s", text, id.jid);
	bridge_contact_added(gw, &id, &c);
	return ok(r, "%s was added to the Barev contacts of %s.%s", text, id.jid, warn);
}

int
prov_contact_remove(struct gw *gw, const char *jid, const char *contact,
    struct prov_result *r)
{
	struct store_identity id;
	struct store_contact c;
	struct gw_baddr a;
	char err[256], text[GW_NICK_MAX + GW_ADDR_TEXT + 16];

	if (identity_of(gw, jid, &id, r) == -1)
		return -1;
	if (contact == NULL || gw_baddr_parse(contact, &a, err, sizeof(err)) == -1)
		return fail(r, PROV_BAD_INPUT, PROV_F_CONTACT, "contact: %s",
		    contact ? err : "missing");
	gw_baddr_format(&a, text, sizeof(text));
	if (store_contact_find(gw->store, id.id, a.nick, a.addr, &c) != STORE_OK)
		return fail(r, PROV_NOT_FOUND, PROV_F_CONTACT,
		    "contact: %s is not among the contacts of %s", text, id.jid);
	bridge_commit_accepted(gw);	/* messages already accepted for it first */
	if (store_contact_delete(gw->store, c.id) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database refused the change");
	log_info("provision", "contact %s removed for %s", text, id.jid);
	bridge_contact_removed(gw, &id, &c);
	return ok(r, "%s was removed from the Barev contacts of %s.", text, id.jid);
}

/* ---- listings ---- */

struct textbuf {
	char *buf;
	size_t len, used;
	int truncated;
};

static void
tb_add(struct textbuf *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->truncated || t->len == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->len - t->used) {
		t->truncated = 1;
		if (t->len >= 4)
			snprintf(t->buf + t->len - 4, 4, "%s", "...");
		return;
	}
	t->used += (size_t)n;
}

int
prov_identity_describe(struct gw *gw, const char *jid, char *buf, size_t len,
    struct prov_result *r)
{
	struct store_identity id;
	char self[GW_NICK_MAX + GW_ADDR_TEXT + 16];

	if (identity_of(gw, jid, &id, r) == -1)
		return -1;
	format_identity(&id, self, sizeof(self));
	snprintf(buf, len, "Your Barev address is %s (nick %s, address %s, port %d)."
	    " Give %s to your Barev friends and add theirs as contacts.",
	    self, id.nick, id.address, id.port, self);
	return ok(r, "%s", buf);
}

static void
list_identity_line(void *arg, const struct store_identity *id)
{
	char self[GW_NICK_MAX + GW_ADDR_TEXT + 16];

	format_identity(id, self, sizeof(self));
	tb_add(arg, "%s: %s\n", id->jid, self);
}

int
prov_list_identities(struct gw *gw, char *buf, size_t len)
{
	struct textbuf t = { buf, len, 0, 0 };

	buf[0] = '\0';
	if (store_identity_foreach(gw->store, list_identity_line, &t) != STORE_OK)
		return -1;
	if (t.used == 0)
		tb_add(&t, "No Barev identities yet.\n");
	return 0;
}

struct contact_lines {
	struct gw *gw;
	struct textbuf t;
};

static void
list_contact_line(void *arg, const struct store_contact *c)
{
	struct contact_lines *cl = arg;
	struct gw_baddr a;
	char text[GW_NICK_MAX + GW_ADDR_TEXT + 16];
	enum bl_pipe_state ps = bl_contact_state(cl->gw->bl, c->id);

	gw_baddr_set(&a, c->nick, c->address, c->port);
	gw_baddr_format(&a, text, sizeof(text));
	tb_add(&cl->t, "%s%s%s%s — %s\n", text, c->name[0] ? " (" : "", c->name,
	    c->name[0] ? ")" : "", ps == BL_PIPE_UP ? "connected" :
	    ps == BL_PIPE_NONE ? "not connected" : "connecting");
}

int
prov_list_contacts(struct gw *gw, const char *jid, char *buf, size_t len,
    struct prov_result *r)
{
	struct store_identity id;
	struct contact_lines cl = { gw, { buf, len, 0, 0 } };

	buf[0] = '\0';
	if (identity_of(gw, jid, &id, r) == -1)
		return -1;
	if (store_contact_foreach(gw->store, id.id, list_contact_line, &cl) != STORE_OK)
		return fail(r, PROV_INTERNAL, PROV_F_NONE, "the database is not available");
	if (cl.t.used == 0)
		tb_add(&cl.t, "%s has no Barev contacts yet.\n", id.jid);
	return ok(r, "%s", buf);
}

static void
status_listener(void *arg, const char *addr, uint16_t port, int lok,
    const char *err)
{
	tb_add(arg, "  [%s]:%u %s%s%s\n", addr, port, lok ? "listening" : "FAILED",
	    lok ? "" : ": ", lok ? "" : (err ? err : "?"));
}

int
prov_status(struct gw *gw, char *buf, size_t len)
{
	struct textbuf t = { buf, len, 0, 0 };
	struct bl_stats bs;
	struct bridge_stats br;
	struct metrics_snap m;
	long up = (long)(time(NULL) - gw->started_at);
	char problem[1024];

	buf[0] = '\0';
	bl_get_stats(gw->bl, &bs);
	bridge_get_stats(gw, &br);
	tb_add(&t, "barev-gateway %s, up %ldd %02ld:%02ld:%02ld\n", BAREV_VERSION,
	    up / 86400, up % 86400 / 3600, up % 3600 / 60, up % 60);
	tb_add(&t, "Component link: %s as %s (%s:%u)%s%s%s%s%s\n",
	    comp_state_str(comp_state(gw->comp)), gw->cfg.component_jid,
	    gw->cfg.server_host, gw->cfg.server_port,
	    br.privileged_roster ? ", roster privilege granted by " :
	    ", no roster privilege (subscription requests are used)",
	    br.privileged_host,
	    br.roster_refused ? ", but pushes are refused: " : "",
	    br.roster_refused ? gw_iq_problem(gw, GW_IQ_ROSTER, problem,
	    sizeof(problem)) : "", br.roster_refused ?
	    " (subscription requests are used)" : "");
	tb_add(&t, "%s", gw_iq_track_status(gw, problem, sizeof(problem)));
	metrics_snapshot(gw, &m);
	tb_add(&t, "Identities: %u, contacts: %u, users online: %u"
	    " (users: %u)\n", br.identities, br.contacts, br.users_online,
	    m.users);
	if (br.users_held > 0)
		tb_add(&t, "Held online through a server crash: %u user(s), "
		    "until they log back in or %llu s pass\n", br.users_held,
		    (unsigned long long)(gw->cfg.server_restart_hold_ms / 1000));
	tb_add(&t, "Listeners: %u (%u failed)\n", bs.listeners, bs.listeners_failed);
	bl_foreach_listener(gw->bl, status_listener, &t);
	tb_add(&t, "Pipes up: %u, in handshake: %u, dials in flight: %u,"
	    " unknown sources refused: %llu, outside Yggdrasil refused: %llu\n",
	    bs.pipes_up, bs.pipes_handshake, bs.dials_in_flight,
	    bs.rejected_unknown, bs.rejected_policy);
	tb_add(&t, "Dials: %u in flight, %u waiting for a slot (max %u, peak"
	    " %u, started %llu); contacts wanted: %u\n", m.dials_in_flight,
	    m.dials_waiting, m.dials_max, m.dials_peak, m.dials_started,
	    m.contacts_wanted);
	tb_add(&t, "Queued: %ld to Barev (outbox), %ld to XMPP (inbox)\n",
	    m.outbox, m.inbox);
	tb_add(&t, "Relayed: %llu messages (%llu bytes) to Barev, %llu (%llu"
	    " bytes) to XMPP; transfers: %llu done, %llu failed; store errors:"
	    " %llu\n", m.c.msgs_to_barev, m.c.bytes_to_barev, m.c.msgs_to_xmpp,
	    m.c.bytes_to_xmpp, m.transfers_done, m.transfers_failed,
	    m.store_errors);
	tb_add(&t, "File descriptors: %ld used, limit %llu\n", m.fds_used,
	    m.fds_limit);
	tb_add(&t, "Memory: %lld KiB resident, of which SQLite %lld KiB\n",
	    m.rss_bytes < 0 ? -1 : m.rss_bytes / 1024,
	    m.store_mem_bytes / 1024);
	return 0;
}
