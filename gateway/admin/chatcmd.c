/*
 * chatcmd — provisioning by chatting with the gateway JID.
 *
 * Conversations and Dino have no XEP-0050 user interface, so every ad-hoc
 * command also exists as a line of text: a verb (any case) and its words.
 * A contact's roster name may contain spaces, so it is "the rest of the
 * line".  The verbs are a table: `help` prints the lines of the table the
 * sender may run, which keeps help and permissions from drifting apart.
 * The work is provision.h; replies are its sentences.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chatcmd.h"
#include "config.h"
#include "gw.h"
#include "log.h"
#include "provision.h"
#include "store.h"
#include "xmlstream.h"

#define CHAT_BODY_MAX	4096		/* longer is not a command */
#define CHAT_OUT_MAX	16384
#define CHAT_WORDS	4		/* words before "the rest" */

enum chat_who {
	CHAT_ANY,
	CHAT_HAS_ID,		/* users with an identity */
	CHAT_NO_ID_OPEN,	/* registration = open, no identity yet */
	CHAT_ADMIN,
};

struct chat_ctx {
	struct gw *gw;
	char bare[STORE_JID_MAX];
	int admin;
	int has_id;			/* 1, 0, -1 unknown */
	char *w[CHAT_WORDS];		/* words after the verb; NULL = absent */
	char *rest;			/* text after w[nwords-1]; "" if none */
	char *out;
	size_t outlen;
};

struct chat_cmd {
	const char *verb;		/* "admin create": two words */
	const char *usage;
	const char *help;
	enum chat_who who;
	int nargs;			/* required words */
	int (*fn)(struct chat_ctx *, struct prov_result *);
};

static int help(struct chat_ctx *, struct prov_result *);

/* ---- replies ---- */

static void
say(struct chat_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(struct chat_ctx *c, const char *fmt, ...)
{
	size_t used = strlen(c->out);
	va_list ap;

	if (used + 1 >= c->outlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->out + used, c->outlen - used, fmt, ap);
	va_end(ap);
}

static void
no_identity(struct chat_ctx *c)
{
	const struct gw_strlist *a = &c->gw->cfg.admins;

	if (prov_may_register(c->gw, c->bare))
		say(c, "You have no Barev identity yet. Send \"register NICK\""
		    " to get one, e.g. \"register alice\".");
	else
		say(c, "You have no Barev identity yet. Ask an administrator of"
		    " this gateway%s%s%s to create one for you.",
		    a->n > 0 && a->v[0][0] ? " (" : "",
		    a->n > 0 && a->v[0][0] ? a->v[0] : "",
		    a->n > 0 && a->v[0][0] ? ")" : "");
}

/* ---- the commands: 0 done (text in c->out or r->msg), -1 refused (r) */

static int
c_whoami(struct chat_ctx *c, struct prov_result *r)
{
	if (prov_identity_describe(c->gw, c->bare, c->out, c->outlen, r) == 0)
		return 0;
	if (r->err != PROV_NOT_FOUND)
		return -1;
	c->out[0] = '\0';
	no_identity(c);
	return 0;
}

static int
c_register(struct chat_ctx *c, struct prov_result *r)
{
	return prov_register(c->gw, c->bare, c->w[0], r);
}

static int
c_unregister(struct chat_ctx *c, struct prov_result *r)
{
	/* deleting everything on one mistyped word would be unkind */
	if (c->w[0] == NULL || strcasecmp(c->w[0], "confirm") != 0) {
		say(c, "This deletes your Barev identity, all your Barev contacts"
		    " and messages still queued for them. Send \"unregister"
		    " confirm\" to go ahead.");
		return 0;
	}
	return prov_identity_delete(c->gw, c->bare, r);
}

static int
c_add(struct chat_ctx *c, struct prov_result *r)
{
	return prov_contact_add(c->gw, c->bare, c->w[0],
	    c->rest[0] ? c->rest : NULL, r);
}

static int
c_remove(struct chat_ctx *c, struct prov_result *r)
{
	return prov_contact_remove(c->gw, c->bare, c->w[0], r);
}

static int
c_contacts(struct chat_ctx *c, struct prov_result *r)
{
	return prov_list_contacts(c->gw, c->bare, c->out, c->outlen, r);
}

static int
c_nick(struct chat_ctx *c, struct prov_result *r)
{
	return prov_identity_set_nick(c->gw, c->bare, c->w[0], r);
}

static int
c_status(struct chat_ctx *c, struct prov_result *r)
{
	(void)r;
	return prov_status(c->gw, c->out, c->outlen);
}

static int
a_create(struct chat_ctx *c, struct prov_result *r)
{
	return prov_identity_create(c->gw, c->w[0], c->w[1], c->w[2], c->w[3], r);
}

static int
a_delete(struct chat_ctx *c, struct prov_result *r)
{
	return prov_identity_delete(c->gw, c->w[0], r);
}

static int
a_identities(struct chat_ctx *c, struct prov_result *r)
{
	if (prov_list_identities(c->gw, c->out, c->outlen) == 0)
		return 0;
	r->err = PROV_INTERNAL;
	snprintf(r->msg, sizeof(r->msg), "The database is not available.");
	return -1;
}

static int
a_add(struct chat_ctx *c, struct prov_result *r)
{
	return prov_contact_add(c->gw, c->w[0], c->w[1],
	    c->rest[0] ? c->rest : NULL, r);
}

static int
a_remove(struct chat_ctx *c, struct prov_result *r)
{
	return prov_contact_remove(c->gw, c->w[0], c->w[1], r);
}

static int
a_contacts(struct chat_ctx *c, struct prov_result *r)
{
	return prov_list_contacts(c->gw, c->w[0], c->out, c->outlen, r);
}

static const struct chat_cmd cmds[] = {
	{ "help", "help", "this text", CHAT_ANY, 0, help },
	{ "whoami", "whoami", "your Barev address, to give to Barev friends",
	    CHAT_ANY, 0, c_whoami },
	{ "register", "register NICK", "get a Barev identity with that nick",
	    CHAT_NO_ID_OPEN, 1, c_register },
	{ "add", "add NICK@ADDRESS [NAME]", "add a Barev contact"
	    " (NICK@[ADDRESS]:PORT when they use another port than 1337)",
	    CHAT_HAS_ID, 1, c_add },
	{ "remove", "remove NICK@ADDRESS", "remove a Barev contact",
	    CHAT_HAS_ID, 1, c_remove },
	{ "contacts", "contacts", "list your Barev contacts", CHAT_HAS_ID, 0,
	    c_contacts },
	{ "nick", "nick NEWNICK", "change your Barev nick", CHAT_HAS_ID, 1,
	    c_nick },
	{ "unregister", "unregister", "delete your Barev identity",
	    CHAT_HAS_ID, 0, c_unregister },
	{ "admin create", "admin create JID NICK ADDRESS [PORT]",
	    "give a user a Barev identity", CHAT_ADMIN, 3, a_create },
	{ "admin delete", "admin delete JID", "delete a user's Barev identity",
	    CHAT_ADMIN, 1, a_delete },
	{ "admin identities", "admin identities", "list every Barev identity",
	    CHAT_ADMIN, 0, a_identities },
	{ "admin add", "admin add JID NICK@ADDRESS [NAME]",
	    "add a Barev contact for a user", CHAT_ADMIN, 2, a_add },
	{ "admin remove", "admin remove JID NICK@ADDRESS",
	    "remove a user's Barev contact", CHAT_ADMIN, 2, a_remove },
	{ "admin contacts", "admin contacts JID", "list a user's Barev contacts",
	    CHAT_ADMIN, 1, a_contacts },
	{ "status", "status", "the gateway's state", CHAT_ADMIN, 0, c_status },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* Listed in help: what the sender can run now. */
static int
listed(const struct chat_ctx *c, const struct chat_cmd *k)
{
	switch (k->who) {
	case CHAT_ANY:
		return 1;
	case CHAT_HAS_ID:
		return c->has_id != 0;
	case CHAT_NO_ID_OPEN:
		return c->has_id == 0 && prov_may_register(c->gw, c->bare);
	case CHAT_ADMIN:
		return c->admin;
	}
	return 0;
}

static int
help(struct chat_ctx *c, struct prov_result *r)
{
	(void)r;
	say(c, "Barev gateway commands (send them to %s):\n",
	    c->gw->cfg.component_jid);
	for (size_t i = 0; i < NCMDS; i++)
		if (listed(c, &cmds[i]) && cmds[i].who != CHAT_ADMIN)
			say(c, "  %s — %s\n", cmds[i].usage, cmds[i].help);
	if (c->has_id == 0) {
		no_identity(c);
		say(c, "\n");
	}
	if (c->admin) {
		say(c, "Admin commands:\n");
		for (size_t i = 0; i < NCMDS; i++)
			if (cmds[i].who == CHAT_ADMIN)
				say(c, "  %s — %s\n", cmds[i].usage, cmds[i].help);
	}
	return 0;
}

/* ---- parsing ---- */

/* Cut the next word out of *p (NUL-terminating it); NULL when none. */
static char *
next_word(char **p)
{
	char *s = *p, *w;

	while (*s && isspace((unsigned char)*s))
		s++;
	if (*s == '\0') {
		*p = s;
		return NULL;
	}
	w = s;
	while (*s && !isspace((unsigned char)*s))
		s++;
	if (*s)
		*s++ = '\0';
	*p = s;
	return w;
}

static void
trim_end(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

static const struct chat_cmd *
find_cmd(char **p)
{
	char *save = *p, *v1, *v2;

	if ((v1 = next_word(p)) == NULL)
		return NULL;
	if (strcasecmp(v1, "admin") != 0) {
		for (size_t i = 0; i < NCMDS; i++)
			if (strcasecmp(cmds[i].verb, v1) == 0)
				return &cmds[i];
		return NULL;
	}
	if ((v2 = next_word(p)) == NULL) {
		*p = save;
		return NULL;
	}
	for (size_t i = 0; i < NCMDS; i++)
		if (strncmp(cmds[i].verb, "admin ", 6) == 0 &&
		    strcasecmp(cmds[i].verb + 6, v2) == 0)
			return &cmds[i];
	return NULL;
}

/* Run the line in `line` (modified); the answer goes to c->out. */
static void
run_line(struct chat_ctx *c, char *line)
{
	const struct chat_cmd *k;
	struct prov_result r;
	char *p = line;
	int n = 0, rc;

	memset(&r, 0, sizeof(r));
	if ((k = find_cmd(&p)) == NULL) {
		say(c, "Sorry, I did not understand that.\n\n");
		help(c, &r);
		return;
	}
	if (k->who == CHAT_ADMIN && !c->admin) {
		log_info("chatcmd", "%s may not run \"%s\"", c->bare, k->verb);
		say(c, "Sorry, only the administrators of this gateway can do"
		    " that. Send \"help\" for what you can do.");
		return;
	}
	for (; n < CHAT_WORDS; n++) {
		/* the last free-text argument (a roster name) keeps its spaces */
		if ((k->fn == c_add && n == 1) || (k->fn == a_add && n == 2))
			break;
		if ((c->w[n] = next_word(&p)) == NULL)
			break;
	}
	while (*p && isspace((unsigned char)*p))
		p++;
	trim_end(p);
	c->rest = p;
	if (n < k->nargs) {
		say(c, "Usage: %s — %s", k->usage, k->help);
		return;
	}
	if ((k->who == CHAT_HAS_ID) && c->has_id == 0) {
		no_identity(c);
		return;
	}
	rc = k->fn(c, &r);
	if (k->fn != help && k->fn != c_unregister)
		log_info("chatcmd", "%s ran \"%s\": %s", c->bare, k->verb,
		    rc == 0 ? "ok" : r.msg);
	if (rc == 0 && c->out[0] == '\0')
		say(c, "%s", r.msg);
	else if (rc == -1) {
		c->out[0] = '\0';
		say(c, "%s", r.msg);
		if (r.err == PROV_BAD_INPUT)
			say(c, "\nUsage: %s", k->usage);
	}
}

static int
chat_has_identity(struct gw *gw, const char *bare)
{
	struct prov_result r;
	char buf[512];

	if (prov_identity_describe(gw, bare, buf, sizeof(buf), &r) == 0)
		return 1;
	return r.err == PROV_NOT_FOUND ? 0 : -1;
}

static xmpp_stanza_t *
reply_new(struct gw *gw, const char *to, const char *text)
{
	xmpp_stanza_t *m;

	if ((m = xmpp_message_new(xs_ctx(), "chat", to, NULL)) == NULL)
		return NULL;
	if (xmpp_stanza_set_from(m, gw->cfg.component_jid) != XMPP_EOK ||
	    xmpp_message_set_body(m, text) != XMPP_EOK) {
		xmpp_stanza_release(m);
		return NULL;
	}
	return m;
}

int
chatcmd_handle_message(struct gw *gw, xmpp_stanza_t *msg)
{
	const char *type = xmpp_stanza_get_type(msg);
	const char *from = xmpp_stanza_get_from(msg);
	const char *to = xmpp_stanza_get_to(msg);
	xmpp_stanza_t *body, *reply;
	struct chat_ctx c;
	char *text = NULL, *line = NULL;
	size_t n;

	if (to != NULL && strchr(to, '@') != NULL)
		return 0;	/* for a contact, not for the gateway */
	if (type != NULL && (strcmp(type, "error") == 0 ||
	    strcmp(type, "groupchat") == 0 || strcmp(type, "headline") == 0))
		return 1;	/* answering these could loop (RFC 6121 §5.2.2) */
	if (from == NULL || (body = xmpp_stanza_get_child_by_name(msg, "body")) == NULL)
		return 1;	/* chat states and receipts need no answer */

	memset(&c, 0, sizeof(c));
	c.gw = gw;
	n = strcspn(from, "/");
	if (n == 0 || n >= sizeof(c.bare) || strchr(from, '@') == NULL)
		return 1;	/* servers and components do not type commands */
	memcpy(c.bare, from, n);
	c.admin = gw_config_is_admin(&gw->cfg, c.bare);
	c.has_id = chat_has_identity(gw, c.bare);

	if ((text = xmpp_stanza_get_text(body)) == NULL && xmpp_stanza_get_children(body))
		goto oom;
	if ((c.out = calloc(1, CHAT_OUT_MAX)) == NULL)
		goto oom;
	c.outlen = CHAT_OUT_MAX;
	if (text == NULL || strlen(text) > CHAT_BODY_MAX) {
		say(&c, "That is not a command I know.\n\n");
		help(&c, NULL);
	} else {
		if ((line = strdup(text)) == NULL)
			goto oom;
		run_line(&c, line);
	}
	trim_end(c.out);
	if ((reply = reply_new(gw, from, c.out)) == NULL)
		goto oom;
	gw_send(gw, reply);
	xmpp_stanza_release(reply);
	free(line);
	free(c.out);
	xmpp_free(xs_ctx(), text);
	return 1;
oom:
	log_error("chatcmd", "out of memory answering %s", c.bare);
	free(line);
	free(c.out);
	if (text != NULL)
		xmpp_free(xs_ctx(), text);
	return 1;
}
