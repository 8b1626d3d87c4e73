/*
 * test_commands — provisioning as a user's client sees it, without sockets:
 * XEP-0050 forms and their error notes, sessions and cancel, who sees which
 * command, the same operations as chat commands, and XEP-0077.  Stanzas go
 * in through the modules' entry points; the answers are caught through
 * gw->send_fn.  Every address is on ::1 so nothing can leave the host
 * (with refuse_outside_yggdrasil = false; test_outside_yggdrasil() turns
 * it on).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bridge.h"
#include "chatcmd.h"
#include "commands.h"
#include "component.h"
#include "gw.h"
#include "log.h"
#include "register.h"
#include "store.h"
#include "xmlstream.h"
#include "gwtest.h"

static int failures;
static struct gw gw;
static xmpp_stanza_t *last;	/* the last stanza the gateway sent */
static int nsent;
static int port1, port2;	/* free loopback ports for identities */

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		dump(last);						\
		failures++;						\
	}								\
} while (0)

static void
dump(xmpp_stanza_t *st)
{
	char *buf;
	size_t len;

	if (st != NULL && xmpp_stanza_to_text(st, &buf, &len) == XMPP_EOK) {
		fprintf(stderr, "  last sent: %s\n", buf);
		xmpp_free(xs_ctx(), buf);
	}
}

static int
capture(struct gw *g, xmpp_stanza_t *st)
{
	(void)g;
	const char *name = xmpp_stanza_get_name(st);
	const char *type = xmpp_stanza_get_type(st);

	/* roster pushes and presences come with a command's effects; keep
	 * the answer: an iq result/error, or a chat message from the gateway */
	nsent++;
	if (strcmp(name, "iq") == 0 && type && strcmp(type, "set") == 0)
		return 0;
	if (strcmp(name, "presence") == 0 || (strcmp(name, "message") == 0 &&
	    xmpp_stanza_get_child_by_name(st, "body") == NULL))
		return 0;
	if (last != NULL)
		xmpp_stanza_release(last);
	last = xmpp_stanza_clone(st);
	return 0;
}

static void
reset_sent(void)
{
	if (last != NULL)
		xmpp_stanza_release(last);
	last = NULL;
	nsent = 0;
}

/* ---- stanza helpers ---- */

static xmpp_stanza_t *
child(xmpp_stanza_t *st, const char *name)
{
	return st ? xmpp_stanza_get_child_by_name(st, name) : NULL;
}

static const char *
attr(xmpp_stanza_t *st, const char *name)
{
	return st ? xmpp_stanza_get_attribute(st, name) : NULL;
}

static const char *
text_of(xmpp_stanza_t *el)
{
	static char buf[20000];
	char *t;

	buf[0] = '\0';
	if (el && (t = xmpp_stanza_get_text(el)) != NULL) {
		snprintf(buf, sizeof(buf), "%s", t);
		xmpp_free(xs_ctx(), t);
	}
	return buf;
}

static const char *
cmd_status(void)
{
	return attr(child(last, "command"), "status");
}

static const char *
cmd_sid(void)
{
	return attr(child(last, "command"), "sessionid");
}

static const char *
note_type(void)
{
	return attr(child(child(last, "command"), "note"), "type");
}

static const char *
note(void)
{
	return text_of(child(child(last, "command"), "note"));
}

/* the <field var=…> of the answer's form, or NULL */
static xmpp_stanza_t *
form_field(const char *var)
{
	xmpp_stanza_t *x = child(child(last, "command"), "x");

	for (xmpp_stanza_t *f = x ? xmpp_stanza_get_children(x) : NULL; f;
	    f = xmpp_stanza_get_next(f))
		if (gwt_streq(xmpp_stanza_get_name(f), "field") && gwt_streq(attr(f, "var"), var))
			return f;
	return NULL;
}

static const char *
error_cond(void)
{
	xmpp_stanza_t *e = child(last, "error");

	for (xmpp_stanza_t *c = e ? xmpp_stanza_get_children(e) : NULL; c;
	    c = xmpp_stanza_get_next(c))
		if (!gwt_streq(xmpp_stanza_get_name(c), "text") && xmpp_stanza_get_name(c))
			return xmpp_stanza_get_name(c);
	return NULL;
}

static void
deliver(int (*fn)(struct gw *, xmpp_stanza_t *), const char *xml)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(xs_ctx(), xml);

	reset_sent();
	if (st == NULL) {
		fprintf(stderr, "cannot parse %s\n", xml);
		exit(2);
	}
	CHECK(fn(&gw, st) == 1);
	xmpp_stanza_release(st);
	if (getenv("TEST_VERBOSE") != NULL)
		dump(last);
}

/* Run `node` as `from`; `fields` is "var=value\n…" (NULL: no form). */
static void
command(const char *from, const char *node, const char *sid,
    const char *action, const char *fields)
{
	char xml[16384], form[12000] = "", *p = form;
	const char *line = fields;

	while (line && *line) {
		const char *eq = strchr(line, '='), *nl = strchr(line, '\n');
		size_t ln = nl ? (size_t)(nl - line) : strlen(line);

		p += snprintf(p, sizeof(form) - (size_t)(p - form),
		    "<field var='%.*s'><value>%.*s</value></field>",
		    (int)(eq - line), line, (int)(ln - (size_t)(eq - line) - 1), eq + 1);
		line += ln + (nl != NULL);
	}
	snprintf(xml, sizeof(xml), "<iq type='set' id='c1' from='%s' to='barev.example.org'>"
	    "<command xmlns='http://jabber.org/protocol/commands' node='%s'%s%s%s%s%s%s>"
	    "%s%s%s</command></iq>", from, node,
	    sid ? " sessionid='" : "", sid ? sid : "", sid ? "'" : "",
	    action ? " action='" : "", action ? action : "", action ? "'" : "",
	    fields ? "<x xmlns='jabber:x:data' type='submit'>" : "",
	    fields ? form : "", fields ? "</x>" : "");
	deliver(commands_handle_iq, xml);
}

/* Open the form, then submit it in the same session. */
static void
command_form(const char *from, const char *node, const char *fields)
{
	char sid[64];

	command(from, node, NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "executing"));
	snprintf(sid, sizeof(sid), "%s", cmd_sid() ? cmd_sid() : "none");
	command(from, node, sid, "complete", fields);
}

static const char *
chat(const char *from, const char *body)
{
	char xml[8192];

	snprintf(xml, sizeof(xml), "<message type='chat' from='%s' "
	    "to='barev.example.org'><body>%s</body></message>", from, body);
	deliver(chatcmd_handle_message, xml);
	return text_of(child(last, "body"));
}

static int
identities(void)
{
	return store_identity_count(gw.store);
}

static const char *
disco_items(const char *from)
{
	static char names[1024];
	xmpp_stanza_t *q = xmpp_stanza_new_from_string(xs_ctx(),
	    "<query xmlns='http://jabber.org/protocol/disco#items'/>");

	names[0] = '\0';
	commands_disco_items(&gw, from, q);
	for (xmpp_stanza_t *it = xmpp_stanza_get_children(q); it;
	    it = xmpp_stanza_get_next(it)) {
		CHECK(gwt_streq(attr(it, "jid"), "barev.example.org"));
		strncat(names, attr(it, "node"), sizeof(names) - strlen(names) - 2);
		strcat(names, " ");
	}
	xmpp_stanza_release(q);
	return names;
}

/* ---- scenarios ---- */

#define ADMIN "admin@example.org/gajim"
#define ALICE "alice@example.org/phone"
#define BOB "bob@example.org/dino"

static void
test_admin_creates_identity(void)
{
	char fields[256];
	xmpp_stanza_t *f;

	command(ADMIN, "create-identity", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "executing"));
	CHECK(form_field("jid") && form_field("nick") && form_field("address"));
	f = form_field("port");	/* barev_port, 1337 unless configured */
	CHECK(f && atoi(text_of(child(f, "value"))) == gw.cfg.barev_port);

	snprintf(fields, sizeof(fields), "jid=Alice@Example.org\nnick=alice\n"
	    "address=0:0:0:0:0:0:0:1\nport=%d", port1);
	command_form(ADMIN, "create-identity", fields);
	CHECK(gwt_streq(cmd_status(), "completed"));
	CHECK(gwt_streq(note_type(), "info"));
	CHECK(strstr(note(), "alice@[::1]") != NULL);
	CHECK(identities() == 1);
}

static void
expect_field_error(const char *node, const char *fields, const char *var,
    const char *refill)
{
	int before = identities();
	char prefix[32];

	command_form(ADMIN, node, fields);
	snprintf(prefix, sizeof(prefix), "%s:", var);
	CHECK(gwt_streq(cmd_status(), "executing"));
	CHECK(gwt_streq(note_type(), "error"));
	CHECK(strncmp(note(), prefix, strlen(prefix)) == 0);
	if (refill)
		CHECK(strcmp(text_of(child(form_field(var), "value")), refill) == 0);
	CHECK(identities() == before);
	if (strncmp(note(), prefix, strlen(prefix)) != 0)
		fprintf(stderr, "  note was: %s\n", note());
}

static void
test_bad_identity_inputs(void)
{
	char fields[3000], nick[2001];

	expect_field_error("create-identity",
	    "jid=bob@example.org\nnick=bob\naddress=not-an-ip", "address", "not-an-ip");
	expect_field_error("create-identity",
	    "jid=bob@example.org\nnick=\naddress=::1", "nick", NULL);
	memset(nick, 'n', 2000);
	nick[2000] = '\0';
	snprintf(fields, sizeof(fields), "jid=bob@example.org\nnick=%s\naddress=::1", nick);
	expect_field_error("create-identity", fields, "nick", nick);
	expect_field_error("create-identity",
	    "jid=bob@example.org\nnick=ALICE\naddress=::1", "nick", "ALICE");
	expect_field_error("create-identity",
	    "jid=alice@example.org\nnick=other\naddress=::1", "jid", NULL);
	expect_field_error("create-identity",
	    "jid=bob@example.org\nnick=bob\naddress=::1\nport=99999", "port", "99999");
	expect_field_error("create-identity",
	    "jid=not a jid\nnick=bob\naddress=::1", "jid", NULL);
	/* the form is kept: fixing the field in the same session works */
	command(ADMIN, "create-identity", NULL, NULL, NULL);
}

static void
test_non_admin_is_forbidden(void)
{
	command(BOB, "create-identity", NULL, NULL, NULL);
	CHECK(gwt_streq(attr(last, "type"), "error"));
	CHECK(gwt_streq(error_cond(), "forbidden"));
	CHECK(gwt_streq(attr(child(last, "error"), "type"), "auth"));
	command(BOB, "delete-identity", NULL, "complete", "jid=alice@example.org");
	CHECK(gwt_streq(error_cond(), "forbidden"));
	CHECK(identities() == 1);
	command(BOB, "status", NULL, NULL, NULL);
	CHECK(gwt_streq(error_cond(), "forbidden"));
}

static void
test_disco_shows_what_one_may_run(void)
{
	const char *b = disco_items(BOB), *a;

	CHECK(strstr(b, "my-identity ") && strstr(b, "add-contact ") &&
	    strstr(b, "list-contacts ") && strstr(b, "set-nick "));
	CHECK(!strstr(b, "create-identity") && !strstr(b, "status") &&
	    !strstr(b, "list-identities") && !strstr(b, "register"));
	a = disco_items(ADMIN);
	CHECK(strstr(a, "create-identity ") && strstr(a, "status ") &&
	    strstr(a, "delete-identity ") && strstr(a, "list-identities "));
	{
		xmpp_stanza_t *q = xmpp_stanza_new_from_string(xs_ctx(),
		    "<query xmlns='http://jabber.org/protocol/disco#info'/>");

		CHECK(commands_disco_info_node(&gw, ADMIN, "status", q) == 1);
		CHECK(gwt_streq(attr(child(q, "identity"), "type"), "command-node"));
		CHECK(commands_disco_info_node(&gw, BOB, "status", q) == 0);
		CHECK(commands_disco_info_node(&gw, BOB, "nonsense", q) == 0);
		xmpp_stanza_release(q);
	}
}

static void
test_my_identity(void)
{
	command(ALICE, "my-identity", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "completed"));
	CHECK(strstr(note(), "alice@[::1]") != NULL);
	command(BOB, "my-identity", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "completed"));
	CHECK(gwt_streq(note_type(), "info"));
	CHECK(strstr(note(), "no Barev identity") && strstr(note(), "admin"));
}

static void
test_user_contacts(void)
{
	command(ALICE, "add-contact", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "executing"));
	CHECK(form_field("jid") == NULL && form_field("contact") && form_field("name"));
	command_form(ALICE, "add-contact", "contact=carol@::1\nname=Carol C");
	CHECK(gwt_streq(cmd_status(), "completed"));
	CHECK(gwt_streq(note_type(), "info"));
	command_form(ALICE, "add-contact", "contact=bob@");
	CHECK(gwt_streq(note_type(), "error") && strncmp(note(), "contact:", 8) == 0);
	CHECK(strcmp(text_of(child(form_field("contact"), "value")), "bob@") == 0);
	command_form(ALICE, "add-contact", "contact=bob@201:1::1:99999");
	CHECK(gwt_streq(note_type(), "error") && strncmp(note(), "contact:", 8) == 0);
	command_form(ALICE, "add-contact", "contact=bob@not-an-ip");
	CHECK(gwt_streq(note_type(), "error") && strncmp(note(), "contact:", 8) == 0);
	/* a user's jid field would be ignored: it is always their own */
	command_form(ALICE, "add-contact", "jid=admin@example.org\ncontact=erin@::1");
	CHECK(gwt_streq(cmd_status(), "completed"));
	command(ALICE, "list-contacts", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "completed"));
	CHECK(strstr(note(), "carol@::1") && strstr(note(), "Carol C") &&
	    strstr(note(), "erin@::1"));
	command_form(ALICE, "remove-contact", "contact=erin@::1");
	CHECK(gwt_streq(cmd_status(), "completed"));
	command(ALICE, "list-contacts", NULL, NULL, NULL);
	CHECK(strstr(note(), "erin@") == NULL);
	/* someone without an identity is told how to get one */
	command(BOB, "add-contact", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "completed") && strstr(note(), "no Barev identity"));
}

/*
 * refuse_outside_yggdrasil (on by default, issue 15): an address outside
 * 200::/7 is refused with a note naming the field, by form and by chat,
 * and nothing is stored; off (as in the rest of this file) the same
 * contact goes in with a warning.
 */
static void
test_outside_yggdrasil(void)
{
	int before = identities();
	const char *r;

	gw.cfg.refuse_outside_yggdrasil = 1;
	command_form(ALICE, "add-contact", "contact=mallory@[::1]:47001");
	CHECK(gwt_streq(cmd_status(), "executing") && gwt_streq(note_type(), "error"));
	CHECK(strncmp(note(), "contact:", 8) == 0 && strstr(note(), "200::/7"));
	r = chat(ALICE, "add mallory@[::1]:47001");
	CHECK(r != NULL && strstr(r, "contact") && strstr(r, "200::/7"));
	command_form(ADMIN, "create-identity",
	    "jid=bob@example.org\nnick=bob\naddress=::1");
	CHECK(gwt_streq(note_type(), "error") && strncmp(note(), "address:", 8) == 0);
	CHECK(identities() == before);
	command(ALICE, "list-contacts", NULL, NULL, NULL);
	CHECK(strstr(note(), "mallory") == NULL);

	gw.cfg.refuse_outside_yggdrasil = 0;
	command_form(ALICE, "add-contact", "contact=mallory@[::1]:47001");
	CHECK(gwt_streq(cmd_status(), "completed") && strstr(note(), "Warning"));
	command_form(ALICE, "remove-contact", "contact=mallory@[::1]:47001");
	CHECK(gwt_streq(cmd_status(), "completed"));
}

static void
test_sessions(void)
{
	char sid[64];

	command(ALICE, "add-contact", NULL, NULL, NULL);
	snprintf(sid, sizeof(sid), "%s", cmd_sid());
	/* another JID cannot continue alice's session */
	command(BOB, "add-contact", sid, "complete", "contact=x@::1");
	CHECK(gwt_streq(error_cond(), "bad-request"));
	CHECK(child(child(last, "error"), "bad-sessionid") != NULL);
	command(ALICE, "add-contact", sid, "cancel", NULL);
	CHECK(gwt_streq(cmd_status(), "canceled"));
	command(ALICE, "add-contact", sid, "complete", "contact=x@::1");
	CHECK(child(child(last, "error"), "bad-sessionid") != NULL);
	command(ALICE, "add-contact", NULL, "prev", NULL);
	CHECK(child(child(last, "error"), "bad-action") != NULL);
	command(ALICE, "no-such-node", NULL, NULL, NULL);
	CHECK(gwt_streq(error_cond(), "item-not-found"));
	/* one-shot submission without opening the form first */
	command(ALICE, "add-contact", NULL, "complete", "contact=frank@::1");
	CHECK(gwt_streq(cmd_status(), "completed"));
	/* an error keeps the session: correct the field and complete */
	command(ALICE, "add-contact", NULL, "complete", "contact=gina@");
	CHECK(gwt_streq(cmd_status(), "executing"));
	snprintf(sid, sizeof(sid), "%s", cmd_sid());
	command(ALICE, "add-contact", sid, "complete", "contact=gina@::1");
	CHECK(gwt_streq(cmd_status(), "completed"));
}

/*
 * One user cannot cancel everyone's open forms by opening many (issue 15):
 * past 8 sessions (all her resources together) her own oldest goes, and
 * the admin's open form survives 70 of hers.
 */
static void
test_sessions_capped_per_user(void)
{
	char admin_sid[64], sids[70][64];
	int i;

	command(ADMIN, "add-contact", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "executing"));
	snprintf(admin_sid, sizeof(admin_sid), "%s", cmd_sid() ? cmd_sid() : "none");
	commands_test_clock_skew(&gw, 5);	/* the admin's form is older */
	for (i = 0; i < 70; i++) {
		command(i % 2 ? ALICE : "alice@example.org/laptop", "add-contact",
		    NULL, NULL, NULL);
		CHECK(gwt_streq(cmd_status(), "executing"));
		snprintf(sids[i], sizeof(sids[i]), "%s", cmd_sid() ? cmd_sid() : "none");
	}
	/* the admin's form is still open */
	command(ADMIN, "add-contact", admin_sid, "cancel", NULL);
	CHECK(gwt_streq(cmd_status(), "canceled"));
	/* alice keeps her newest 8; the one before them is gone */
	command(ALICE, "add-contact", sids[69], "cancel", NULL);
	CHECK(gwt_streq(cmd_status(), "canceled"));
	command("alice@example.org/laptop", "add-contact", sids[62], "cancel", NULL);
	CHECK(gwt_streq(cmd_status(), "canceled"));
	command(ALICE, "add-contact", sids[61], "cancel", NULL);
	CHECK(child(child(last, "error"), "bad-sessionid") != NULL);
	command("alice@example.org/laptop", "add-contact", sids[0], "cancel", NULL);
	CHECK(child(child(last, "error"), "bad-sessionid") != NULL);
}

static void
test_admin_contacts_and_status(void)
{
	char fields[128];

	command(ADMIN, "add-contact", NULL, NULL, NULL);
	CHECK(form_field("jid") != NULL);
	command_form(ADMIN, "add-contact", "jid=nobody@example.org\ncontact=h@::1");
	CHECK(gwt_streq(note_type(), "error") && strncmp(note(), "jid:", 4) == 0);
	command_form(ADMIN, "add-contact", "jid=alice@example.org\ncontact=hank@::1\nname=Hank");
	CHECK(gwt_streq(cmd_status(), "completed"));
	command_form(ADMIN, "list-contacts", "jid=alice@example.org");
	CHECK(strstr(note(), "hank@::1") != NULL);
	command(ADMIN, "list-identities", NULL, NULL, NULL);
	CHECK(strstr(note(), "alice@example.org") != NULL);
	command(ADMIN, "status", NULL, NULL, NULL);
	CHECK(gwt_streq(cmd_status(), "completed") && strstr(note(), "barev-gateway"));
	snprintf(fields, sizeof(fields), "jid=bob@example.org\nnick=bob\naddress=::1\nport=%d", port2);
	command_form(ADMIN, "create-identity", fields);
	CHECK(gwt_streq(cmd_status(), "completed"));
	command_form(ADMIN, "delete-identity", "jid=bob@example.org");
	CHECK(gwt_streq(cmd_status(), "completed"));
	CHECK(identities() == 1);
}

static void
test_chat_commands(void)
{
	const char *r;
	char line[256];

	r = chat(ALICE, "help");
	CHECK(strstr(r, "add NICK@ADDRESS") && !strstr(r, "admin create"));
	CHECK(gwt_streq(attr(last, "to"), ALICE) && gwt_streq(attr(last, "type"), "chat"));
	CHECK(gwt_streq(attr(last, "from"), "barev.example.org"));
	r = chat(ALICE, "WhoAmI");
	CHECK(strstr(r, "alice@[::1]") != NULL);
	r = chat(ALICE, "add ivan@::1 Ivan the Terrible");
	CHECK(strstr(r, "added") != NULL);
	r = chat(ALICE, "contacts");
	CHECK(strstr(r, "ivan@::1") && strstr(r, "Ivan the Terrible"));
	r = chat(ALICE, "add bob@not-an-ip");
	CHECK(strstr(r, "contact") && strstr(r, "Usage: add"));
	r = chat(ALICE, "add");
	CHECK(strstr(r, "Usage: add") != NULL);
	r = chat(ALICE, "remove ivan@::1");
	CHECK(strstr(r, "removed") != NULL);
	r = chat(ALICE, "frobnicate the widgets");
	CHECK(strstr(r, "did not understand") && strstr(r, "whoami"));
	r = chat(BOB, "admin create bob@example.org bob ::1");
	CHECK(strstr(r, "only the administrators") != NULL);
	CHECK(identities() == 1);
	r = chat(BOB, "help");
	CHECK(strstr(r, "no Barev identity") && !strstr(r, "admin create"));
	r = chat(BOB, "add x@::1");
	CHECK(strstr(r, "no Barev identity") != NULL);
	r = chat(ADMIN, "help");
	CHECK(strstr(r, "admin create JID") != NULL);
	snprintf(line, sizeof(line), "admin create bob@example.org bob ::1 %d", port2);
	r = chat(ADMIN, line);
	CHECK(identities() == 2);
	r = chat(ADMIN, "admin add bob@example.org judy@::1 Judy");
	CHECK(strstr(r, "added") != NULL);
	r = chat(ADMIN, "admin contacts bob@example.org");
	CHECK(strstr(r, "judy@::1") && strstr(r, "Judy"));
	r = chat(ADMIN, "admin identities");
	CHECK(strstr(r, "bob@example.org") && strstr(r, "alice@example.org"));
	r = chat(BOB, "unregister");
	CHECK(strstr(r, "unregister confirm") && identities() == 2);
	r = chat(ADMIN, "admin delete bob@example.org");
	CHECK(identities() == 1);

	/* what is not a command from a person gets no answer */
	deliver(chatcmd_handle_message, "<message type='chat' from='" ALICE
	    "' to='barev.example.org'><composing xmlns="
	    "'http://jabber.org/protocol/chatstates'/></message>");
	CHECK(nsent == 0);
	deliver(chatcmd_handle_message, "<message type='error' from='" ALICE
	    "' to='barev.example.org'><body>help</body></message>");
	CHECK(nsent == 0);
}

static void
test_registration(void)
{
	deliver(register_handle_iq, "<iq type='get' id='r1' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'/></iq>");
	CHECK(gwt_streq(error_cond(), "not-allowed"));
	CHECK(strstr(text_of(child(child(last, "error"), "text")), "administrator"));
	deliver(register_handle_iq, "<iq type='set' id='r2' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'>"
	    "<nick>bob</nick></query></iq>");
	CHECK(gwt_streq(error_cond(), "not-allowed") && identities() == 1);
	CHECK(strstr(chat(BOB, "register bob"), "administrators") != NULL);
	command(BOB, "register", NULL, NULL, NULL);
	CHECK(gwt_streq(error_cond(), "not-allowed"));

	gw.cfg.registration = GW_REG_OPEN;
	CHECK(strstr(disco_items(BOB), "register ") != NULL);
	CHECK(strstr(disco_items(ALICE), "register ") == NULL);
	deliver(register_handle_iq, "<iq type='get' id='r3' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'/></iq>");
	CHECK(gwt_streq(attr(last, "type"), "result"));
	CHECK(child(child(last, "query"), "nick") != NULL);
	CHECK(child(child(last, "query"), "registered") == NULL);
	deliver(register_handle_iq, "<iq type='set' id='r4' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'>"
	    "<nick>bad nick</nick></query></iq>");
	CHECK(gwt_streq(error_cond(), "not-acceptable") && identities() == 1);
	deliver(register_handle_iq, "<iq type='set' id='r5' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'>"
	    "<nick>bob</nick></query></iq>");
	CHECK(gwt_streq(attr(last, "type"), "result") && identities() == 2);
	deliver(register_handle_iq, "<iq type='get' id='r6' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'/></iq>");
	CHECK(child(child(last, "query"), "registered") != NULL);
	CHECK(strcmp(text_of(child(child(last, "query"), "nick")), "bob") == 0);
	deliver(register_handle_iq, "<iq type='set' id='r7' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'>"
	    "<remove/></query></iq>");
	CHECK(gwt_streq(attr(last, "type"), "result") && identities() == 1);
	deliver(register_handle_iq, "<iq type='set' id='r8' from='" BOB
	    "' to='barev.example.org'><query xmlns='jabber:iq:register'>"
	    "<remove/></query></iq>");
	CHECK(gwt_streq(error_cond(), "registration-required"));
	/* the register command and chat command do the same */
	command_form(BOB, "register", "nick=bobby");
	CHECK(gwt_streq(cmd_status(), "completed") && identities() == 2);
	CHECK(strstr(chat(BOB, "unregister confirm"), "deleted") && identities() == 1);
	CHECK(strstr(chat(BOB, "register bobby"), "bobby@") && identities() == 2);
	gw.cfg.registration = GW_REG_ADMIN;
}

/*
 * XEP-0356: only the server the component hangs under (or one of
 * registration_domains) may grant privileges (issue 15); a grant from any
 * other domain is ignored and the status still names the real grantor.
 */
static void
grant(const char *from)
{
	char xml[1024];

	snprintf(xml, sizeof(xml), "<message from='%s' to='barev.example.org'>"
	    "<privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' "
	    "type='both'/><perm access='message' type='outgoing'/></privilege>"
	    "</message>", from);
	deliver(bridge_handle_privilege, xml);
}

static void
test_privilege_grant_only_from_the_server(void)
{
	struct bridge_stats st;

	grant("example.org");
	bridge_get_stats(&gw, &st);
	CHECK(st.privileged_roster && gwt_streq(st.privileged_host, "example.org"));
	command(ADMIN, "status", NULL, NULL, NULL);
	CHECK(strstr(note(), "roster privilege granted by example.org\n") != NULL);
	/* another component, a remote server, a look-alike: ignored */
	grant("evil.example.org");
	grant("example.org.evil.net");
	grant("barev.example.org");
	grant("org");
	bridge_get_stats(&gw, &st);
	CHECK(st.privileged_roster && gwt_streq(st.privileged_host, "example.org"));
	command(ADMIN, "status", NULL, NULL, NULL);
	CHECK(strstr(note(), "roster privilege granted by example.org\n") != NULL);
	/* the parent domain in another case is still the server */
	grant("Example.ORG");
	bridge_get_stats(&gw, &st);
	CHECK(st.privileged_roster);
}

int
main(void)
{
	const char *dir = getenv("TEST_TMPDIR");
	char path[512];

	if (dir == NULL)
		dir = ".";
	log_set_level(LOG_LVL_WARN);
	port1 = gwt_free_port();
	port2 = gwt_free_port();
	snprintf(path, sizeof(path), "%s/commands.sqlite", dir);
	unlink(path);
	/* loopback addresses keep everything on the host: the Yggdrasil
	 * switch is off here and turned on in test_outside_yggdrasil() */
	if (gwt_world_start(&gw, dir, path, NULL, capture) == -1)
		return 2;

	test_admin_creates_identity();
	test_sessions_capped_per_user();
	test_bad_identity_inputs();
	test_non_admin_is_forbidden();
	test_disco_shows_what_one_may_run();
	test_my_identity();
	test_user_contacts();
	test_outside_yggdrasil();
	test_sessions();
	test_admin_contacts_and_status();
	test_chat_commands();
	test_registration();
	test_privilege_grant_only_from_the_server();

	reset_sent();
	gwt_world_stop(&gw);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
