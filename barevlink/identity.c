/*
 * identity — the bl object and what the gateway provisions into it: our
 * identities (local users' Barev selves), their contacts (the allowlist),
 * our presence, and the output calls that address a contact's pipe.
 *
 * Identities and contacts are found by the store's ids, allowlisted
 * addresses numerically (BAREV.md §1); all three live in libc's tsearch
 * trees, so an accept looks its source up in O(log n) with 10k contacts.
 */
#include <search.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "internal.h"
#include "xmlstream.h"
#include "log.h"

static int
id_cmp(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x < y ? -1 : x > y);
}

static int
allow_cmp(const void *a, const void *b)
{
	return (bl_addr_cmp(a, b));
}

static void *
tree_find(void *root, const void *key, int (*cmp)(const void *, const void *))
{
	void	**n;

	if ((n = tfind(key, &root, cmp)) == NULL)
		return (NULL);
	return (*n);
}

struct bl_ident *
bl_ident_find(struct bl *bl, int64_t id)
{
	return (tree_find(bl->idents, &id, id_cmp));
}

struct bl_contact *
bl_contact_find(struct bl *bl, int64_t id)
{
	return (tree_find(bl->contacts, &id, id_cmp));
}

struct bl_allow *
bl_allow_find(struct bl *bl, const struct in6_addr *a)
{
	return (tree_find(bl->allow, a, allow_cmp));
}

static void
reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	bl_pipe_reap(arg);
}

#define DEF(f, v) do { if (bl->cfg.f == 0) bl->cfg.f = (v); } while (0)

struct bl *
bl_new(struct event_base *base, const struct bl_config *cfg,
    const struct bl_events *ev, void *arg)
{
	struct bl	*bl;

	if ((bl = calloc(1, sizeof(*bl))) == NULL)
		return (NULL);
	bl->base = base;
	if (cfg != NULL)
		bl->cfg = *cfg;
	DEF(header_timeout_ms, 15000);
	DEF(silent_initiator_ms, 2000);
	DEF(ping_idle_ms, 60000);
	DEF(ping_timeout_ms, 10000);
	DEF(ping_misses, 3);
	DEF(dial_timeout_ms, 15000);
	DEF(backoff_min_ms, 1000);
	DEF(backoff_max_ms, 300000);
	DEF(pace_ms, 20);
	DEF(max_stanza, 262144);
	DEF(max_depth, 16);
	DEF(max_dials, 64);
	DEF(dial_jitter_ms, 250);
	if (ev != NULL)
		bl->ev = *ev;
	bl->arg = arg;
	TAILQ_INIT(&bl->listeners);
	TAILQ_INIT(&bl->pipes);
	TAILQ_INIT(&bl->reap);
	event_assign(&bl->reaper, base, -1, 0, reaper_cb, bl);
	bl_dialq_init(bl);
	if ((bl->scratch = evbuffer_new()) == NULL) {
		free(bl);
		return (NULL);
	}
	/* a peer that vanished must not kill the daemon (BAREV.md §7) */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		log_warn("barevlink", "cannot ignore SIGPIPE");
	return (bl);
}

static void
contact_free(void *arg)
{
	struct bl_contact *c = arg;

	bl_redial_free(c);
	free(c->nick);
	free(c);
}

static void
ident_strings_free(struct bl_ident *id)
{
	free(id->show);
	free(id->status);
	free(id->photo);
	id->show = id->status = id->photo = NULL;
}

static void
ident_free(void *arg)
{
	struct bl_ident	*id = arg;

	ident_strings_free(id);
	free(id->nick);
	free(id);
}

void
bl_free(struct bl *bl)
{
	struct bl_pipe	*p;

	if (bl == NULL)
		return;
	while ((p = TAILQ_FIRST(&bl->pipes)) != NULL)
		bl_pipe_free(p);
	tdestroy(bl->contacts, contact_free);
	tdestroy(bl->idents, ident_free);
	tdestroy(bl->allow, free);
	bl_listeners_free(bl);
	event_del(&bl->reaper);
	event_del(&bl->dialpump);
	evbuffer_free(bl->scratch);
	free(bl);
}

void
bl_shutdown(struct bl *bl)
{
	struct bl_pipe	*p, *tp;

	bl->shutting_down = 1;
	TAILQ_FOREACH_SAFE(p, &bl->pipes, entry, tp) {
		if (p->state == BL_P_UP && p->draining)
			continue;	/* its user went offline: drains already */
		if (p->state != BL_P_UP || bl_pipe_drain(p, "shutting down") == -1)
			bl_pipe_kill(p, "shutting down", BL_CLOSE_ORDERLY);
	}
}

static int
nick_ok(const char *nick)
{
	size_t	 n;

	if (nick == NULL || (n = strlen(nick)) == 0 || n > BL_NICKMAX)
		return (0);
	/* the nick is a JID localpart on the wire: no '@' or '/' */
	return (strpbrk(nick, "@/") == NULL);
}

int
bl_identity_add(struct bl *bl, int64_t ident, const char *nick,
    const char *addr, uint16_t port)
{
	struct bl_ident	*id;
	struct in6_addr	 a;

	if (!nick_ok(nick) || bl_addr_parse(addr, &a) == -1 ||
	    bl_ident_find(bl, ident) != NULL)
		return (-1);
	if ((id = calloc(1, sizeof(*id))) == NULL)
		return (-1);
	id->id = ident;
	id->addr = a;
	bl_addr_text(&a, id->addrtxt);
	id->port = port != 0 ? port : BL_DEFAULT_PORT;
	id->available = 1;
	TAILQ_INIT(&id->contacts);
	TAILQ_INIT(&id->ready);
	if ((id->nick = strdup(nick)) == NULL)
		goto fail;
	if ((id->listener = bl_listener_get(bl, &a, id->port)) == NULL)
		goto fail;
	if (tsearch(id, &bl->idents, id_cmp) == NULL)
		goto fail;
	TAILQ_INSERT_TAIL(&id->listener->idents, id, entry);
	return (0);
fail:
	if (id->listener != NULL)
		bl_listener_put(id->listener);
	ident_free(id);
	return (-1);
}

int
bl_identity_set_nick(struct bl *bl, int64_t ident, const char *nick)
{
	struct bl_ident	*id;
	char		*n;

	if (!nick_ok(nick) || (id = bl_ident_find(bl, ident)) == NULL ||
	    (n = strdup(nick)) == NULL)
		return (-1);
	free(id->nick);
	id->nick = n;
	return (0);
}

int
bl_identity_remove(struct bl *bl, int64_t ident)
{
	struct bl_ident	*id;
	struct bl_contact *c;
	struct bl_pipe	*p, *tp;

	if ((id = bl_ident_find(bl, ident)) == NULL)
		return (-1);
	while ((c = TAILQ_FIRST(&id->contacts)) != NULL)
		bl_contact_remove(bl, c->id);
	/* handshakes that already spoke as this identity (a silent
	 * initiator got its header) have no contact yet: close them too */
	TAILQ_FOREACH_SAFE(p, &bl->pipes, entry, tp)
		if (p->ident == id)
			bl_pipe_kill(p, "identity removed", BL_CLOSE_ABORT);
	TAILQ_REMOVE(&id->listener->idents, id, entry);
	bl_listener_put(id->listener);
	tdelete(id, &bl->idents, id_cmp);
	ident_free(id);
	return (0);
}

void
bl_ident_presence(const struct bl_ident *id, struct bl_presence *p)
{
	p->available = id->available;
	p->show = id->show;
	p->status = id->status;
	p->photo = id->photo;
}

/* NULL and "" are the same absent value */
static int
same_opt(const char *a, const char *b)
{
	if (a == NULL || *a == '\0')
		return (b == NULL || *b == '\0');
	return (b != NULL && strcmp(a, b) == 0);
}

static int
dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL || *s == '\0')
		return (0);
	return ((*out = strdup(s)) == NULL ? -1 : 0);
}

int
bl_identity_set_presence(struct bl *bl, int64_t ident,
    const struct bl_presence *p)
{
	struct bl_ident	*id;
	struct bl_contact *c, *tc;
	char		*show, *status = NULL, *photo = NULL;

	if ((id = bl_ident_find(bl, ident)) == NULL)
		return (-1);
	/* the gateway republishes on every change of a resource, most of
	 * which Barev peers cannot see: what they would see again is not sent */
	if ((p->available != 0) == (id->available != 0) &&
	    same_opt(p->show, id->show) && same_opt(p->status, id->status) &&
	    same_opt(p->photo, id->photo))
		return (0);
	if (dup_opt(p->show, &show) == -1 || dup_opt(p->status, &status) == -1 ||
	    dup_opt(p->photo, &photo) == -1) {
		free(show);
		free(status);
		free(photo);
		return (-1);
	}
	ident_strings_free(id);
	id->available = p->available;
	id->show = show;
	id->status = status;
	id->photo = photo;
	TAILQ_FOREACH_SAFE(c, &id->contacts, entry, tc) {
		if (c->pipe == NULL)
			continue;
		if (!p->available) {
			/*
			 * unavailable, then </stream:stream> (BAREV.md §3),
			 * but keep reading until the peer closes too: what it
			 * wrote before it read our goodbye is still the
			 * user's (delivered to her bare JID), not dropped.
			 */
			if (c->pipe->draining)
				continue;	/* said already */
			c->pipe->bye_ours = 1;
			if (bl_pipe_drain(c->pipe, "we went offline") == -1)
				bl_pipe_kill(c->pipe, "we went offline",
				    BL_CLOSE_ORDERLY);
			/* bl_pipe_kill() keeps the backoff as it was for a
			 * pipe marked bye_ours: our choice, not the peer's
			 * failure */
		} else if (c->pipe->draining)
			/* back before the peer closed: a fresh pipe */
			bl_pipe_kill(c->pipe, "we came back online",
			    BL_CLOSE_ABORT);
		else if (bl_pipe_send_presence(c->pipe) == -1)
			bl_pipe_kill(c->pipe, "cannot send our presence",
			    BL_CLOSE_ABORT);
	}
	return (0);
}

static int
allow_ref(struct bl *bl, const struct in6_addr *a)
{
	struct bl_allow	*al;

	if ((al = bl_allow_find(bl, a)) != NULL) {
		al->refs++;
		return (0);
	}
	if ((al = calloc(1, sizeof(*al))) == NULL)
		return (-1);
	al->addr = *a;
	al->refs = 1;
	if (tsearch(al, &bl->allow, allow_cmp) == NULL) {
		free(al);
		return (-1);
	}
	return (0);
}

static void
allow_unref(struct bl *bl, const struct in6_addr *a)
{
	struct bl_allow	*al;

	if ((al = bl_allow_find(bl, a)) == NULL || --al->refs > 0)
		return;
	tdelete(al, &bl->allow, allow_cmp);
	free(al);
}

int
bl_contact_add(struct bl *bl, int64_t ident, int64_t contact,
    const char *nick, const char *addr, uint16_t port)
{
	struct bl_ident	*id;
	struct bl_contact *c;
	struct in6_addr	 a;
	char		 txt[BL_ADDRSTRLEN];
	size_t		 nlen;

	if (!nick_ok(nick) || bl_addr_parse(addr, &a) == -1 ||
	    (id = bl_ident_find(bl, ident)) == NULL ||
	    bl_contact_find(bl, contact) != NULL)
		return (-1);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (-1);
	c->id = contact;
	c->ident = id;
	c->addr = a;
	c->port = port != 0 ? port : BL_DEFAULT_PORT;
	bl_addr_text(&a, txt);
	nlen = strlen(nick);
	if ((c->nick = malloc(nlen + 1 + strlen(txt) + 1)) == NULL)
		goto fail;
	memcpy(c->nick, nick, nlen + 1);
	c->addrtxt = c->nick + nlen + 1;
	strcpy(c->addrtxt, txt);
	if (tsearch(c, &bl->contacts, id_cmp) == NULL)
		goto fail;
	if (allow_ref(bl, &a) == -1) {
		tdelete(c, &bl->contacts, id_cmp);
		goto fail;
	}
	TAILQ_INSERT_TAIL(&id->contacts, c, entry);
	return (0);
fail:
	contact_free(c);
	return (-1);
}

int
bl_contact_remove(struct bl *bl, int64_t contact)
{
	struct bl_contact *c;

	if ((c = bl_contact_find(bl, contact)) == NULL)
		return (-1);
	if (c->want)
		bl->wanted--;
	c->want = 0;
	bl_redial_cancel(c);
	bl_dialq_cancel(c);
	if (c->dial != NULL)
		bl_pipe_kill(c->dial, "contact removed", BL_CLOSE_ABORT);
	if (c->pipe != NULL)
		bl_pipe_kill(c->pipe, "contact removed", BL_CLOSE_ORDERLY);
	/* the pipe_down callback may have removed it already */
	if ((c = bl_contact_find(bl, contact)) == NULL)
		return (0);
	allow_unref(bl, &c->addr);
	TAILQ_REMOVE(&c->ident->contacts, c, entry);
	tdelete(c, &bl->contacts, id_cmp);
	contact_free(c);
	return (0);
}

int
bl_contact_want(struct bl *bl, int64_t contact, int want)
{
	struct bl_contact *c;

	if ((c = bl_contact_find(bl, contact)) == NULL)
		return (-1);
	if (c->want != (want != 0))
		bl->wanted += want != 0 ? 1 : -1;
	c->want = want != 0;
	if (!c->want) {
		bl_redial_cancel(c);
		bl_dialq_cancel(c);
	} else if (!bl_redial_pending(c) && !c->ready)
		bl_dial_schedule(c, 1);
	return (0);
}

int
bl_contact_info(struct bl *bl, int64_t contact, struct bl_contact_info *out)
{
	struct bl_contact *c;

	memset(out, 0, sizeof(*out));
	if ((c = bl_contact_find(bl, contact)) == NULL)
		return (-1);
	out->state = bl_contact_state(bl, contact);
	out->want = c->want;
	out->redial_pending = bl_redial_pending(c);
	out->dial_waiting = c->ready;
	out->backoff_ms = c->backoff;
	return (0);
}

enum bl_pipe_state
bl_contact_state(struct bl *bl, int64_t contact)
{
	struct bl_contact *c;

	if ((c = bl_contact_find(bl, contact)) == NULL)
		return (BL_PIPE_NONE);
	if (c->pipe != NULL)
		return (BL_PIPE_UP);
	if (c->dial != NULL)
		return (c->dial->state == BL_P_CONNECT ? BL_PIPE_DIALING :
		    BL_PIPE_HANDSHAKE);
	return (BL_PIPE_NONE);
}

static struct bl_pipe *
up_pipe(struct bl *bl, int64_t contact)
{
	struct bl_contact *c;

	/* a draining pipe refuses output itself (bl_pipe_send_buf) */
	if ((c = bl_contact_find(bl, contact)) == NULL || c->pipe == NULL ||
	    c->pipe->state != BL_P_UP)
		return (NULL);
	return (c->pipe);
}

static int
send_scratch(struct bl *bl, struct bl_pipe *p, int fmt_rv, uint64_t token)
{
	if (fmt_rv == -1) {
		evbuffer_drain(bl->scratch, evbuffer_get_length(bl->scratch));
		return (-1);
	}
	return (bl_pipe_send_buf(p, bl->scratch, token));
}

int
bl_send_message(struct bl *bl, int64_t contact, const char *body,
    uint64_t token)
{
	struct bl_pipe	*p;
	char		 me[BL_JIDLEN], peer[BL_JIDLEN];

	if ((p = up_pipe(bl, contact)) == NULL || body == NULL ||
	    bl_jid_me(p, me, sizeof(me)) == -1 ||
	    bl_jid_peer(p, peer, sizeof(peer)) == -1)
		return (-1);
	return (send_scratch(bl, p, bl_fmt_message(bl->scratch, peer, me,
	    body), token));
}

/* BAREV.md §4: pascal clears on paused, purple on active: send both */
int
bl_send_chatstate(struct bl *bl, int64_t contact, const char *state,
    uint64_t token)
{
	struct bl_pipe	*p;
	char		 me[BL_JIDLEN], peer[BL_JIDLEN];
	int		 paused;

	if ((p = up_pipe(bl, contact)) == NULL || state == NULL ||
	    bl_jid_me(p, me, sizeof(me)) == -1 ||
	    bl_jid_peer(p, peer, sizeof(peer)) == -1)
		return (-1);
	paused = strcmp(state, "paused") == 0;
	if (send_scratch(bl, p, bl_fmt_chatstate(bl->scratch, peer, me,
	    state), paused ? 0 : token) == -1)
		return (-1);
	if (paused)
		return (send_scratch(bl, p, bl_fmt_chatstate(bl->scratch, peer,
		    me, "active"), token));
	return (0);
}

int
bl_send_stanza(struct bl *bl, int64_t contact, xmpp_stanza_t *st,
    uint64_t token)
{
	struct bl_pipe	*p;
	xmpp_stanza_t	*cp;
	const char	*name;
	char		 me[BL_JIDLEN], peer[BL_JIDLEN];
	unsigned	 flags = 0;
	int		 rv = -1;

	if ((p = up_pipe(bl, contact)) == NULL || st == NULL ||
	    bl_jid_me(p, me, sizeof(me)) == -1 ||
	    bl_jid_peer(p, peer, sizeof(peer)) == -1)
		return (-1);
	/* the caller's stanza stays as it was */
	if ((cp = xmpp_stanza_copy(st)) == NULL)
		return (-1);
	if (xmpp_stanza_set_from(cp, me) != XMPP_EOK ||
	    xmpp_stanza_set_to(cp, peer) != XMPP_EOK)
		goto out;
	name = xmpp_stanza_get_name(cp);
	/* pascal takes any iq with type="result" for a pong (BAREV.md §5) */
	if (name != NULL && strcmp(name, "iq") == 0)
		flags = XS_SER_SINGLE_QUOTES | XS_SER_SELFCLOSE;
	rv = send_scratch(bl, p, xs_serialize(cp, flags, bl->scratch), token);
out:
	xmpp_stanza_release(cp);
	return (rv);
}

int
bl_ping(struct bl *bl, int64_t contact, uint64_t cookie)
{
	struct bl_pipe	*p;

	if ((p = up_pipe(bl, contact)) == NULL)
		return (-1);
	return (bl_pipe_ping(p, cookie));
}

void
bl_get_stats(struct bl *bl, struct bl_stats *st)
{
	struct bl_listener *l;
	struct bl_pipe	*p;

	memset(st, 0, sizeof(*st));
	TAILQ_FOREACH(l, &bl->listeners, entry) {
		if (l->evl != NULL)
			st->listeners++;
		else
			st->listeners_failed++;
	}
	TAILQ_FOREACH(p, &bl->pipes, entry) {
		if (p->state == BL_P_UP)
			st->pipes_up++;
		else if (p->state == BL_P_CONNECT ||
		    (p->outbound && p->state == BL_P_HANDSHAKE))
			st->dials_in_flight++;
		else if (p->state == BL_P_HANDSHAKE)
			st->pipes_handshake++;
	}
	st->rejected_unknown = bl->rejected_unknown;
	st->rejected_policy = bl->rejected_policy;
	st->accepted = bl->accepted;
	st->dials_waiting = bl->dials_waiting;
	st->dials_max = bl->cfg.max_dials;
	st->dials_peak = bl->dials_peak;
	st->contacts_wanted = bl->wanted;
	st->dials_started = bl->dials_started;
}
