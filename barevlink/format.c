/*
 * format — the exact bytes barevlink puts on the wire (BAREV.md §2-5).
 *
 * These are written as text rather than through the stanza serializer
 * because the peers care about quoting per element, not per stanza: a
 * chat-state message is double-quoted (pascal reads only `type="…"`) while
 * its child keeps purple's single-quoted xmlns and self-closing form, and
 * the header must match the recorded bytes exactly.  Values are escaped
 * with xs_escape: only the five XML entities, raw UTF-8 (BAREV.md §4).
 */
#include <string.h>

#include <event2/buffer.h>

#include "internal.h"
#include "xmlstream.h"

#define CHATSTATES_NS "http://jabber.org/protocol/chatstates"

static int
add(struct evbuffer *out, const char *s)
{
	return (evbuffer_add(out, s, strlen(s)));
}

static int
esc(struct evbuffer *out, const char *s, char quote)
{
	return (xs_escape(out, s, strlen(s), quote));
}

int
bl_fmt_jid(char *out, size_t len, const char *nick, const char *addr)
{
	size_t	 n, m;

	n = strlen(nick);
	m = strlen(addr);
	if (n + 1 + m + 1 > len)
		return (-1);
	memcpy(out, nick, n);
	out[n] = '@';
	memcpy(out + n + 1, addr, m + 1);
	return (0);
}

/* BAREV.md §2: double quotes, no version, one line break after the decl */
int
bl_fmt_header(struct evbuffer *out, const char *nick, const char *addr,
    const char *peernick, const char *peeraddr)
{
	if (add(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n"
	    "<stream:stream xmlns=\"jabber:client\" "
	    "xmlns:stream=\"http://etherx.jabber.org/streams\" from=\"") == -1 ||
	    esc(out, nick, '"') == -1 || add(out, "@") == -1 ||
	    esc(out, addr, '"') == -1 || add(out, "\" to=\"") == -1 ||
	    esc(out, peernick, '"') == -1 || add(out, "@") == -1 ||
	    esc(out, peeraddr, '"') == -1 || add(out, "\">") == -1)
		return (-1);
	return (0);
}

/*
 * BAREV.md §3: explicit end tags (pascal cannot frame <presence/>), photo
 * element always present, xa -> away (purple shows xa as available),
 * chat -> plain available.
 */
int
bl_fmt_presence(struct evbuffer *out, const struct bl_presence *p)
{
	const char	*show = p->show;

	if (!p->available)
		return (add(out, "<presence type=\"unavailable\"></presence>"));
	if (show != NULL && strcmp(show, "xa") == 0)
		show = "away";
	else if (show != NULL && strcmp(show, "away") != 0 &&
	    strcmp(show, "dnd") != 0)
		show = NULL;
	if (add(out, "<presence>") == -1)
		return (-1);
	if (show != NULL && (add(out, "<show>") == -1 ||
	    add(out, show) == -1 || add(out, "</show>") == -1))
		return (-1);
	if (p->status != NULL && *p->status != '\0' &&
	    (add(out, "<status>") == -1 || esc(out, p->status, 0) == -1 ||
	    add(out, "</status>") == -1))
		return (-1);
	if (add(out, "<x xmlns=\"vcard-temp:x:update\"><photo>") == -1)
		return (-1);
	if (p->photo != NULL && esc(out, p->photo, 0) == -1)
		return (-1);
	return (add(out, "</photo></x></presence>"));
}

static int
msg_open(struct evbuffer *out, const char *to, const char *from)
{
	if (add(out, "<message to=\"") == -1 || esc(out, to, '"') == -1 ||
	    add(out, "\" from=\"") == -1 || esc(out, from, '"') == -1 ||
	    add(out, "\" type=\"chat\">") == -1)
		return (-1);
	return (0);
}

/* BAREV.md §4: body only; never a chat state beside it */
int
bl_fmt_message(struct evbuffer *out, const char *to, const char *from,
    const char *body)
{
	if (msg_open(out, to, from) == -1 || add(out, "<body>") == -1 ||
	    esc(out, body, 0) == -1 || add(out, "</body></message>") == -1)
		return (-1);
	return (0);
}

static int
chatstate_ok(const char *s)
{
	static const char *const states[] = {
		"active", "composing", "paused", "inactive", "gone"
	};
	size_t	 i;

	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(s, states[i]) == 0)
			return (1);
	return (0);
}

/* BAREV.md §4: a body-less message carrying only the state; -1 if unknown */
int
bl_fmt_chatstate(struct evbuffer *out, const char *to, const char *from,
    const char *state)
{
	if (!chatstate_ok(state))
		return (-1);
	if (msg_open(out, to, from) == -1 || add(out, "<") == -1 ||
	    add(out, state) == -1 ||
	    add(out, " xmlns='" CHATSTATES_NS "'/></message>") == -1)
		return (-1);
	return (0);
}

static int
iq_open(struct evbuffer *out, const char *type, const char *id,
    const char *from, const char *to)
{
	if (add(out, "<iq type='") == -1 || add(out, type) == -1 ||
	    add(out, "' id='") == -1 || esc(out, id, '\'') == -1 ||
	    add(out, "' from='") == -1 || esc(out, from, '\'') == -1 ||
	    add(out, "' to='") == -1 || esc(out, to, '\'') == -1 ||
	    add(out, "'") == -1)
		return (-1);
	return (0);
}

/* BAREV.md §5: every iq single-quoted, id before any child */
int
bl_fmt_ping(struct evbuffer *out, const char *id, const char *from,
    const char *to)
{
	if (iq_open(out, "get", id, from, to) == -1 ||
	    add(out, "><ping xmlns='urn:xmpp:ping'/></iq>") == -1)
		return (-1);
	return (0);
}

int
bl_fmt_ping_result(struct evbuffer *out, const char *id, const char *from,
    const char *to)
{
	if (iq_open(out, "result", id, from, to) == -1 || add(out, "/>") == -1)
		return (-1);
	return (0);
}
