/*
 * commands — XEP-0050 ad-hoc commands with XEP-0004 forms.
 *
 * Every command here is at most one form: the first request opens a
 * session and gets the form (or, for a listing, the completed result); the
 * submission runs one provision.h operation.  When that operation refuses,
 * the answer stays `executing` and carries the same form, re-filled with
 * what the user typed, plus a <note type='error'> that names the field
 * (XEP-0050 §4.5 notes; XEP-0004 §3.2 pre-filled values), so a client can
 * correct one field instead of starting over.  The store is untouched in
 * that case: provision validates before its transaction.
 *
 * Sessions (cmdsession.c) are a small fixed table: a session id is only
 * honoured for the JID that opened it (XEP-0050 §3.3), and one user holds
 * at most a few of them (issue 15).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmdsession.h"
#include "commands.h"
#include "config.h"
#include "gw.h"
#include "log.h"
#include "provision.h"
#include "store.h"
#include "xmlstream.h"

#define DATA_NS		"jabber:x:data"

#define CMD_VAL_MAX	4096		/* bytes of one submitted value */
#define CMD_OUT_MAX	16384		/* listing text */

#define F(x)		(1u << (x))

enum cmd_who {
	CMD_ADMIN,		/* admins only */
	CMD_USER,		/* everyone; admins get a jid field where marked */
	CMD_REGISTER,		/* registration = open, no identity yet */
};

struct cmd_ctx;
struct cmd_def {
	const char *node;
	const char *name;
	enum cmd_who who;
	unsigned fields;	/* F(PROV_F_*) shown to everyone */
	unsigned required;
	int jid_for_admin;	/* admins also get a (required) jid field */
	const char *instructions;
	int (*run)(struct cmd_ctx *, struct prov_result *);
};

/* One request: who asks, what they submitted. */
struct cmd_ctx {
	struct gw *gw;
	const char *from;		/* full JID */
	char bare[CMD_JID_MAX];
	int admin;
	const struct cmd_def *def;
	unsigned fields;		/* what the form has for this requester */
	char *v[PROV_F_NAME + 1];	/* submitted values, trimmed; NULL if absent */
	char *out;			/* listing text, CMD_OUT_MAX bytes */
};


static const struct {
	const char *var, *type, *label, *desc;
} fields[] = {
	[PROV_F_JID] = { "jid", "jid-single", "User",
	    "The bare JID of a user of this server, e.g. alice@example.org" },
	[PROV_F_NICK] = { "nick", "text-single", "Barev nick",
	    "1 to 64 characters, no spaces" },
	[PROV_F_ADDRESS] = { "address", "text-single", "IPv6 address",
	    "The Yggdrasil (200::/7) address the identity listens on" },
	[PROV_F_PORT] = { "port", "text-single", "TCP port",
	    "The port Barev friends connect to" },
	[PROV_F_CONTACT] = { "contact", "text-single", "Barev address",
	    "nick@address, or nick@[address]:port for a port other than 1337" },
	[PROV_F_NAME] = { "name", "text-single", "Name",
	    "How the contact is shown in the roster (optional)" },
};

/* ---- stanza building (on gw.h's builders); NULL/-1 when out of memory */

static xmpp_stanza_t *
el_add(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	return parent == NULL ? NULL : gw_add_child(parent, name, ns);
}

static int
el_attr(xmpp_stanza_t *el, const char *key, const char *value)
{
	if (el == NULL || value == NULL)
		return el == NULL ? -1 : 0;
	return xmpp_stanza_set_attribute(el, key, value) == XMPP_EOK ? 0 : -1;
}

/* <name>text</name> under parent ("" or NULL: empty); the element */
static xmpp_stanza_t *
el_add_text(xmpp_stanza_t *parent, const char *name, const char *ns,
    const char *text)
{
	return parent == NULL ? NULL : xs_add_text(parent, name, ns,
	    text != NULL && *text != '\0' ? text : NULL);
}

/* RFC 6120 §8.3 error, plus an XEP-0050 §4.6 condition when given. */
static xmpp_stanza_t *
iq_error(xmpp_stanza_t *iq, const char *etype, const char *cond,
    const char *cmd_cond, const char *text)
{
	xmpp_stanza_t *r;

	if ((r = gw_error_reply(iq, etype, cond, text)) == NULL)
		return NULL;
	if (cmd_cond != NULL && el_add(xmpp_stanza_get_child_by_name(r, "error"),
	    cmd_cond, COMMANDS_NS) == NULL) {
		xmpp_stanza_release(r);
		return NULL;
	}
	return r;
}

static void
send_reply(struct gw *gw, xmpp_stanza_t *st, const char *what)
{
	if (st == NULL) {
		log_error("commands", "out of memory answering %s", what);
		return;
	}
	gw_send(gw, st);
	xmpp_stanza_release(st);
}

/* ---- who may run what ---- */

/* 1 has an identity, 0 has none, -1 the store could not tell. */
static int
has_identity(struct gw *gw, const char *bare)
{
	struct prov_result r;
	char buf[512];

	if (prov_identity_describe(gw, bare, buf, sizeof(buf), &r) == 0)
		return 1;
	return r.err == PROV_NOT_FOUND ? 0 : -1;
}

static int
may_run(struct cmd_ctx *q, const struct cmd_def *d)
{
	switch (d->who) {
	case CMD_ADMIN:
		return q->admin;
	case CMD_USER:
		return 1;
	case CMD_REGISTER:
		return prov_may_register(q->gw, q->bare);
	}
	return 0;
}

/* The text that tells a user without an identity how to get one. */
static void
no_identity_text(struct gw *gw, const char *bare, char *buf, size_t len)
{
	const struct gw_strlist *a = &gw->cfg.admins;

	if (prov_may_register(gw, bare))
		snprintf(buf, len, "You have no Barev identity yet. Run the"
		    " \"register\" command (or send \"register NICK\" to %s)"
		    " to get one.", gw->cfg.component_jid);
	else
		snprintf(buf, len, "You have no Barev identity yet. Ask an"
		    " administrator of this gateway%s%s%s to create one for you.",
		    a->n > 0 && a->v[0][0] ? " (" : "",
		    a->n > 0 && a->v[0][0] ? a->v[0] : "",
		    a->n > 0 && a->v[0][0] ? ")" : "");
}

static int
ctx_init(struct cmd_ctx *q, struct gw *gw, const char *from)
{
	size_t n;

	memset(q, 0, sizeof(*q));
	q->gw = gw;
	q->from = from;
	n = strcspn(from, "/");
	if (n == 0 || n >= sizeof(q->bare) || strlen(from) >= CMD_JID_MAX)
		return -1;
	memcpy(q->bare, from, n);
	q->bare[n] = '\0';
	q->admin = gw_config_is_admin(&gw->cfg, q->bare);
	return 0;
}

static unsigned
ctx_fields(const struct cmd_ctx *q, const struct cmd_def *d)
{
	return d->fields | (q->admin && d->jid_for_admin ? F(PROV_F_JID) : 0);
}

static void
ctx_free(struct cmd_ctx *q)
{
	for (size_t i = 0; i <= PROV_F_NAME; i++) {
		free(q->v[i]);
		q->v[i] = NULL;
	}
}

/* The user the command acts on: the form's jid for admins, else oneself. */
static const char *
target(const struct cmd_ctx *q)
{
	if (q->fields & F(PROV_F_JID))
		return q->v[PROV_F_JID] ? q->v[PROV_F_JID] : "";
	return q->bare;
}

/* ---- the commands ---- */

static int
run_create(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_identity_create(q->gw, q->v[PROV_F_JID], q->v[PROV_F_NICK],
	    q->v[PROV_F_ADDRESS], q->v[PROV_F_PORT], r);
}

static int
run_delete(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_identity_delete(q->gw, q->v[PROV_F_JID], r);
}

static int
run_identities(struct cmd_ctx *q, struct prov_result *r)
{
	if (prov_list_identities(q->gw, q->out, CMD_OUT_MAX) == 0)
		return 0;
	r->err = PROV_INTERNAL;
	r->field = PROV_F_NONE;
	snprintf(r->msg, sizeof(r->msg), "The database is not available.");
	return -1;
}

static int
run_add(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_contact_add(q->gw, target(q), q->v[PROV_F_CONTACT],
	    q->v[PROV_F_NAME], r);
}

static int
run_remove(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_contact_remove(q->gw, target(q), q->v[PROV_F_CONTACT], r);
}

static int
run_contacts(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_list_contacts(q->gw, target(q), q->out, CMD_OUT_MAX, r);
}

static int
run_status(struct cmd_ctx *q, struct prov_result *r)
{
	(void)r;
	return prov_status(q->gw, q->out, CMD_OUT_MAX);
}

static int
run_me(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_identity_describe(q->gw, q->bare, q->out, CMD_OUT_MAX, r);
}

static int
run_nick(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_identity_set_nick(q->gw, q->bare, q->v[PROV_F_NICK], r);
}

static int
run_register(struct cmd_ctx *q, struct prov_result *r)
{
	return prov_register(q->gw, q->bare, q->v[PROV_F_NICK], r);
}

#define CONTACT_HELP "Your friend's Barev address: nick@address, or" \
	" nick@[address]:port when they use a port other than 1337."

static const struct cmd_def defs[] = {
	{ "create-identity", "Create a Barev identity for a user", CMD_ADMIN,
	    F(PROV_F_JID) | F(PROV_F_NICK) | F(PROV_F_ADDRESS) | F(PROV_F_PORT),
	    F(PROV_F_JID) | F(PROV_F_NICK) | F(PROV_F_ADDRESS), 0,
	    "Give a user of this server a Barev identity: the nick and the"
	    " Yggdrasil address (and port) Barev peers will know them by.",
	    run_create },
	{ "delete-identity", "Delete a user's Barev identity", CMD_ADMIN,
	    F(PROV_F_JID), F(PROV_F_JID), 0,
	    "Delete a user's Barev identity with its contacts and queued"
	    " messages.", run_delete },
	{ "list-identities", "List Barev identities", CMD_ADMIN, 0, 0, 0,
	    NULL, run_identities },
	{ "add-contact", "Add a Barev contact", CMD_USER,
	    F(PROV_F_CONTACT) | F(PROV_F_NAME), F(PROV_F_CONTACT), 1,
	    CONTACT_HELP, run_add },
	{ "remove-contact", "Remove a Barev contact", CMD_USER,
	    F(PROV_F_CONTACT), F(PROV_F_CONTACT), 1,
	    "The Barev address to remove (nick@address).", run_remove },
	{ "list-contacts", "List Barev contacts", CMD_USER, 0, 0, 1,
	    "Whose Barev contacts to list.", run_contacts },
	{ "status", "Gateway status", CMD_ADMIN, 0, 0, 0, NULL, run_status },
	{ "my-identity", "My Barev address", CMD_USER, 0, 0, 0, NULL, run_me },
	{ "set-nick", "Change my Barev nick", CMD_USER, F(PROV_F_NICK),
	    F(PROV_F_NICK), 0, "Your new Barev nick. Barev friends will have"
	    " to add you again under it.", run_nick },
	{ "register", "Get a Barev identity", CMD_REGISTER, F(PROV_F_NICK),
	    F(PROV_F_NICK), 0, "Choose the nick Barev friends will know you"
	    " by.", run_register },
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static const struct cmd_def *
def_find(const char *node)
{
	for (size_t i = 0; node != NULL && i < NDEFS; i++)
		if (strcmp(defs[i].node, node) == 0)
			return &defs[i];
	return NULL;
}

/* User commands about one's own identity, when one has none: say how. */
static int
needs_identity(const struct cmd_ctx *q, const struct cmd_def *d)
{
	return d->who == CMD_USER && !(q->fields & F(PROV_F_JID));
}

/* ---- forms ---- */

static const char *
field_default(const struct cmd_ctx *q, enum prov_field f)
{
	static char port[8];

	switch (f) {
	case PROV_F_PORT:
		snprintf(port, sizeof(port), "%u",
		    q->gw->cfg.barev_port ? q->gw->cfg.barev_port : 1337);
		return port;
	case PROV_F_ADDRESS:
		return q->gw->cfg.barev_address;
	case PROV_F_JID:
		/* an admin managing their own contacts needs no typing */
		return q->def->who == CMD_USER ? q->bare : NULL;
	default:
		return NULL;
	}
}

/* The form, with the user's values (refill) or the defaults. */
static int
form_add(xmpp_stanza_t *cmd, const struct cmd_ctx *q, int refill)
{
	xmpp_stanza_t *x, *fl;
	const char *val;

	if ((x = el_add(cmd, "x", DATA_NS)) == NULL || el_attr(x, "type", "form") ||
	    el_add_text(x, "title", NULL, q->def->name) == NULL)
		return -1;
	if (q->def->instructions &&
	    el_add_text(x, "instructions", NULL, q->def->instructions) == NULL)
		return -1;
	for (enum prov_field f = PROV_F_JID; f <= PROV_F_NAME; f++) {
		if (!(q->fields & F(f)))
			continue;
		if ((fl = el_add(x, "field", NULL)) == NULL ||
		    el_attr(fl, "var", fields[f].var) ||
		    el_attr(fl, "type", fields[f].type) ||
		    el_attr(fl, "label", fields[f].label) ||
		    el_add_text(fl, "desc", NULL, fields[f].desc) == NULL)
			return -1;
		if ((q->def->required & F(f) || (f == PROV_F_JID)) &&
		    el_add(fl, "required", NULL) == NULL)
			return -1;
		val = refill ? q->v[f] : field_default(q, f);
		if (val && *val && el_add_text(fl, "value", NULL, val) == NULL)
			return -1;
	}
	return 0;
}

/* Concatenated text children of `el`, trimmed, at most CMD_VAL_MAX bytes. */
static int
value_text(xmpp_stanza_t *el, char **out, size_t *rawlen)
{
	size_t n = 0, start = 0, end;
	char *buf;

	*out = NULL;
	*rawlen = 0;
	if ((buf = malloc(CMD_VAL_MAX + 1)) == NULL)
		return -1;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(el); c;
	    c = xmpp_stanza_get_next(c)) {
		const char *t = xmpp_stanza_is_text(c) ? xmpp_stanza_get_text_ptr(c) : NULL;
		size_t tl = t ? strlen(t) : 0;

		*rawlen += tl;
		if (n + tl > CMD_VAL_MAX)
			tl = CMD_VAL_MAX - n;
		memcpy(buf + n, t ? t : "", tl);
		n += tl;
	}
	buf[n] = '\0';
	while (start < n && strchr(" \t\r\n", buf[start]) != NULL)
		start++;
	end = n;
	while (end > start && strchr(" \t\r\n", buf[end - 1]) != NULL)
		end--;
	memmove(buf, buf + start, end - start);
	buf[end - start] = '\0';
	*out = buf;
	return 0;
}

/*
 * Read a submitted form into q->v.  0; 1 with r filled for a value the user
 * must fix (too long, a required field empty); -1 out of memory.
 */
static int
form_read(xmpp_stanza_t *x, struct cmd_ctx *q, struct prov_result *r)
{
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(x); c;
	    c = xmpp_stanza_get_next(c)) {
		const char *name = xmpp_stanza_get_name(c);
		const char *var = xmpp_stanza_get_attribute(c, "var");
		xmpp_stanza_t *v;
		size_t raw;

		if (name == NULL || strcmp(name, "field") != 0 || var == NULL)
			continue;
		for (enum prov_field f = PROV_F_JID; f <= PROV_F_NAME; f++) {
			if (!(q->fields & F(f)) || strcmp(var, fields[f].var) != 0 ||
			    q->v[f] != NULL)
				continue;
			v = xmpp_stanza_get_child_by_name(c, "value");
			if (v == NULL)
				break;
			if (value_text(v, &q->v[f], &raw) == -1)
				return -1;
			if (raw > CMD_VAL_MAX) {
				q->v[f][0] = '\0';
				r->err = PROV_BAD_INPUT;
				r->field = f;
				snprintf(r->msg, sizeof(r->msg), "%s: %zu bytes is"
				    " far too long", fields[f].var, raw);
				return 1;
			}
			break;
		}
	}
	for (enum prov_field f = PROV_F_JID; f <= PROV_F_NAME; f++) {
		if ((q->def->required & F(f) || (f == PROV_F_JID && q->fields & F(f))) &&
		    (q->v[f] == NULL || q->v[f][0] == '\0')) {
			r->err = PROV_BAD_INPUT;
			r->field = f;
			snprintf(r->msg, sizeof(r->msg), "%s: this field is required"
			    " (%s)", fields[f].var, fields[f].desc);
			return 1;
		}
	}
	return 0;
}

/* "field: sentence" — provision usually says the field itself. */
static void
error_text(const struct prov_result *r, char *buf, size_t len)
{
	const char *var = r->field > PROV_F_NONE && r->field <= PROV_F_NAME ?
	    fields[r->field].var : NULL;
	size_t vl = var ? strlen(var) : 0;

	if (var == NULL || (strncmp(r->msg, var, vl) == 0 && r->msg[vl] == ':'))
		snprintf(buf, len, "%s", r->msg);
	else
		snprintf(buf, len, "%s: %s", var, r->msg);
}

/* ---- answering ---- */

/*
 * <iq type=result><command node sessionid status>…</command></iq>.  With a
 * form (status executing), `form` 1 = blank, 2 = refilled.
 */
static xmpp_stanza_t *
cmd_answer(xmpp_stanza_t *iq, const struct cmd_ctx *q, const char *sid,
    const char *status, int form, const char *note_type, const char *note)
{
	xmpp_stanza_t *r, *cmd, *acts, *n;

	if ((r = gw_iq_result(iq)) == NULL)
		return NULL;
	if ((cmd = el_add(r, "command", COMMANDS_NS)) == NULL ||
	    el_attr(cmd, "node", q->def->node) || el_attr(cmd, "sessionid", sid) ||
	    el_attr(cmd, "status", status))
		goto fail;
	if (form) {
		/* one stage: the only way on is to complete (XEP-0050 §3.4) */
		if ((acts = el_add(cmd, "actions", NULL)) == NULL ||
		    el_attr(acts, "execute", "complete") ||
		    el_add(acts, "complete", NULL) == NULL)
			goto fail;
	}
	if (note != NULL) {
		if ((n = el_add_text(cmd, "note", NULL, note)) == NULL ||
		    el_attr(n, "type", note_type))
			goto fail;
	}
	if (form && form_add(cmd, q, form == 2) == -1)
		goto fail;
	return r;
fail:
	xmpp_stanza_release(r);
	return NULL;
}

/*
 * Run the command (or report `pre`, a problem found reading the form) and
 * answer: completed with the result, or the refilled form with the error.
 */
static xmpp_stanza_t *
run_and_answer(xmpp_stanza_t *iq, struct cmd_ctx *q, struct cmd_session *s,
    int refill_on_error, struct prov_result *pre)
{
	struct prov_result r;
	xmpp_stanza_t *ans;
	char note[sizeof(r.msg) + 32];
	int rc = -1;

	memset(&r, 0, sizeof(r));
	if (pre != NULL)
		r = *pre;
	else if ((q->out = calloc(1, CMD_OUT_MAX)) == NULL)
		return NULL;
	else
		rc = q->def->run(q, &r);
	if (rc == 0) {
		log_info("commands", "%s ran %s", q->bare, q->def->node);
		ans = cmd_answer(iq, q, s->id, "completed", 0, "info",
		    q->out[0] ? q->out : r.msg);
		cmd_session_end(s);
	} else {
		error_text(&r, note, sizeof(note));
		log_info("commands", "%s ran %s: %s", q->bare, q->def->node, note);
		ans = cmd_answer(iq, q, s->id, refill_on_error ? "executing" :
		    "completed", refill_on_error ? 2 : 0, "error", note);
		if (!refill_on_error)
			cmd_session_end(s);
	}
	free(q->out);
	q->out = NULL;
	return ans;
}

static xmpp_stanza_t *
handle(xmpp_stanza_t *iq, xmpp_stanza_t *cmd, struct cmd_ctx *q)
{
	const char *node = xmpp_stanza_get_attribute(cmd, "node");
	const char *action = xmpp_stanza_get_attribute(cmd, "action");
	const char *sid = xmpp_stanza_get_attribute(cmd, "sessionid");
	struct cmd_session *s = NULL;
	struct prov_result pre;
	xmpp_stanza_t *x, *ans;
	char text[512];
	int rc;

	if ((q->def = def_find(node)) == NULL)
		return iq_error(iq, "cancel", "item-not-found", NULL,
		    "There is no such command here.");
	if (!may_run(q, q->def)) {
		if (q->def->who == CMD_REGISTER)
			return iq_error(iq, "cancel", "not-allowed", NULL,
			    "Barev identities on this gateway are given by its"
			    " administrators: ask one of them for an identity.");
		log_info("commands", "%s may not run %s", q->bare, q->def->node);
		return iq_error(iq, "auth", "forbidden", NULL,
		    "Only the administrators of this gateway may run this command.");
	}
	q->fields = ctx_fields(q, q->def);
	if (sid != NULL && (s = cmd_session_find(q->gw, sid, q->from, q->def)) == NULL)
		return iq_error(iq, "modify", "bad-request", "bad-sessionid",
		    "This command session is unknown or has expired; start again.");
	if (action == NULL)
		action = "execute";
	if (strcmp(action, "cancel") == 0) {
		cmd_session_end(s);
		return cmd_answer(iq, q, sid ? sid : "none", "canceled", 0, NULL, NULL);
	}
	if (strcmp(action, "execute") != 0 && strcmp(action, "complete") != 0 &&
	    strcmp(action, "next") != 0)
		return iq_error(iq, "modify", "bad-request", "bad-action",
		    "These commands have one stage: use execute or complete.");
	if (s == NULL && (s = cmd_session_new(q->gw, q->from, q->def)) == NULL)
		return iq_error(iq, "wait", "resource-constraint", NULL,
		    "The gateway is out of memory; try again later.");

	if (needs_identity(q, q->def) && (rc = has_identity(q->gw, q->bare)) <= 0) {
		/* my-identity's answer is this; the others cannot start */
		if (rc == 0)
			no_identity_text(q->gw, q->bare, text, sizeof(text));
		else
			snprintf(text, sizeof(text), "The database is not"
			    " available; try again later.");
		ans = cmd_answer(iq, q, s->id, "completed", 0, rc == 0 &&
		    q->def->run == run_me ? "info" : "error", text);
		cmd_session_end(s);
		return ans;
	}
	if (q->fields == 0)
		return run_and_answer(iq, q, s, 0, NULL);

	x = xmpp_stanza_get_child_by_name_and_ns(cmd, "x", DATA_NS);
	if (x == NULL)
		return cmd_answer(iq, q, s->id, "executing", 1, NULL, NULL);
	if (xmpp_stanza_get_type(x) && strcmp(xmpp_stanza_get_type(x), "cancel") == 0) {
		cmd_session_end(s);
		return cmd_answer(iq, q, sid ? sid : "none", "canceled", 0, NULL, NULL);
	}
	memset(&pre, 0, sizeof(pre));
	if ((rc = form_read(x, q, &pre)) == -1)
		return NULL;
	return run_and_answer(iq, q, s, 1, rc == 1 ? &pre : NULL);
}

int
commands_handle_iq(struct gw *gw, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *cmd, *ans;
	const char *type = xmpp_stanza_get_type(iq);
	const char *from = xmpp_stanza_get_from(iq);
	struct cmd_ctx q;

	cmd = xmpp_stanza_get_child_by_name_and_ns(iq, "command", COMMANDS_NS);
	if (cmd == NULL)
		return 0;
	if (from == NULL || type == NULL) {
		log_warn("commands", "a command without from/type: dropped");
		return 1;
	}
	if (strcmp(type, "set") != 0) {
		if (strcmp(type, "get") == 0)
			send_reply(gw, iq_error(iq, "cancel", "bad-request", NULL,
			    "Ad-hoc commands are executed with iq type set."),
			    "a command get");
		return 1;	/* results and errors are never answered */
	}
	if (ctx_init(&q, gw, from) == -1) {
		send_reply(gw, iq_error(iq, "modify", "jid-malformed", NULL,
		    "Your JID is not one this gateway can handle."), "a command");
		return 1;
	}
	if ((ans = handle(iq, cmd, &q)) == NULL)
		ans = iq_error(iq, "wait", "internal-server-error", NULL,
		    "The gateway ran out of memory; try again.");
	send_reply(gw, ans, "a command");
	ctx_free(&q);
	return 1;
}

/* ---- service discovery (XEP-0050 §2) ---- */

static int
may_see(struct cmd_ctx *q, const struct cmd_def *d)
{
	if (!may_run(q, d))
		return 0;
	return d->who != CMD_REGISTER || has_identity(q->gw, q->bare) == 0;
}

void
commands_disco_items(struct gw *gw, const char *from_jid, xmpp_stanza_t *query)
{
	struct cmd_ctx q;
	xmpp_stanza_t *it;

	if (from_jid == NULL || ctx_init(&q, gw, from_jid) == -1)
		return;
	for (size_t i = 0; i < NDEFS; i++) {
		if (!may_see(&q, &defs[i]))
			continue;
		if ((it = el_add(query, "item", NULL)) == NULL ||
		    el_attr(it, "jid", gw->cfg.component_jid) ||
		    el_attr(it, "node", defs[i].node) ||
		    el_attr(it, "name", defs[i].name)) {
			log_error("commands", "out of memory listing commands");
			return;
		}
	}
}

int
commands_disco_info_node(struct gw *gw, const char *from_jid,
    const char *node, xmpp_stanza_t *query)
{
	const struct cmd_def *d = def_find(node);
	struct cmd_ctx q;
	xmpp_stanza_t *id;

	if (d == NULL || from_jid == NULL || ctx_init(&q, gw, from_jid) == -1 ||
	    !may_run(&q, d))
		return 0;
	if ((id = el_add(query, "identity", NULL)) == NULL ||
	    el_attr(id, "category", "automation") ||
	    el_attr(id, "type", "command-node") || el_attr(id, "name", d->name) ||
	    el_attr(el_add(query, "feature", NULL), "var", COMMANDS_NS) ||
	    el_attr(el_add(query, "feature", NULL), "var", DATA_NS))
		log_error("commands", "out of memory describing %s", node);
	return 1;
}
