/*
 * cmdsession — the XEP-0050 sessions of commands.c: a fixed table of
 * CMD_SESSIONS shared by everyone (gw->cmd, made at first use), each a
 * form some full JID has open.
 *
 * One user (bare JID, all her resources together) holds at most
 * CMD_SESSIONS_USER: her next session replaces her own oldest, so nobody
 * can cancel everyone else's open forms by opening many (issue 15).  A
 * table full of many users' sessions gives up the oldest one of whoever
 * holds the most.  Age is a creation counter, since many sessions are
 * opened within one clock second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cmdsession.h"
#include "commands.h"
#include "gw.h"
#include "log.h"
#include "rng.h"

#define CMD_SESSIONS_USER 8		/* per bare JID */
#define CMD_TTL_S	900		/* a form left open this long is gone */

static time_t
now_s(const struct cmd_sessions *t)
{
	/* never 0: 0 marks a free slot */
	return (time_t)(cm_now_ms() / 1000) + t->clock_skew + 1;
}

/* the gateway's table, made at its first use: NULL on no memory */
static struct cmd_sessions *
table(struct gw *gw)
{
	if (gw->cmd == NULL)
		gw->cmd = calloc(1, sizeof(*gw->cmd));
	return gw->cmd;
}

void
cmd_sessions_free(struct gw *gw)
{
	free(gw->cmd);
	gw->cmd = NULL;
}

void
commands_test_clock_skew(struct gw *gw, long seconds)
{
	if (table(gw) != NULL)
		gw->cmd->clock_skew += seconds;
}

struct cmd_session *
cmd_session_find(struct gw *gw, const char *id, const char *owner,
    const struct cmd_def *def)
{
	struct cmd_sessions *t = table(gw);
	time_t now;

	if (t == NULL)
		return NULL;
	now = now_s(t);
	for (size_t i = 0; i < CMD_SESSIONS; i++) {
		struct cmd_session *s = &t->s[i];

		if (s->expires == 0)
			continue;
		if (s->expires <= now) {
			s->expires = 0;
			continue;
		}
		if (strcmp(s->id, id) == 0 && strcmp(s->owner, owner) == 0 &&
		    s->def == def)
			return s;
	}
	return NULL;
}

/* Is the session's owner (a full JID) the user `bare` (len bytes)? */
static int
owned_by(const struct cmd_session *s, const char *bare, size_t len)
{
	return strncmp(s->owner, bare, len) == 0 &&
	    (s->owner[len] == '\0' || s->owner[len] == '/');
}

/* Live sessions of the owner of sessions[i], for choosing whom to evict. */
static unsigned
owner_count(const struct cmd_session *sessions, size_t i, time_t now)
{
	size_t len = strcspn(sessions[i].owner, "/");
	unsigned n = 0;

	for (size_t j = 0; j < CMD_SESSIONS; j++)
		n += sessions[j].expires > now &&
		    owned_by(&sessions[j], sessions[i].owner, len);
	return n;
}

/*
 * The slot for a new session of `owner`: her own oldest once she holds
 * CMD_SESSIONS_USER, else a free one, else the oldest session of whoever
 * holds the most.
 */
static struct cmd_session *
session_slot(struct cmd_session *sessions, const char *owner, time_t now)
{
	size_t len = strcspn(owner, "/"), i;
	struct cmd_session *mine = NULL, *free_slot = NULL, *victim = NULL;
	unsigned n = 0, most = 0, c;

	for (i = 0; i < CMD_SESSIONS; i++) {
		struct cmd_session *s = &sessions[i];

		if (s->expires <= now) {
			if (free_slot == NULL)
				free_slot = s;
			continue;
		}
		if (owned_by(s, owner, len)) {
			n++;
			if (mine == NULL || s->seq < mine->seq)
				mine = s;
		}
	}
	if (n >= CMD_SESSIONS_USER)
		return mine;
	if (free_slot != NULL)
		return free_slot;
	for (i = 0; i < CMD_SESSIONS; i++) {
		c = owner_count(sessions, i, now);
		if (c > most || (c == most && victim != NULL &&
		    sessions[i].seq < victim->seq)) {
			most = c;
			victim = &sessions[i];
		}
	}
	log_info("commands", "session table full: %s's oldest form is closed"
	    " for %s", victim->owner, owner);
	return victim;
}

struct cmd_session *
cmd_session_new(struct gw *gw, const char *owner, const struct cmd_def *def)
{
	struct cmd_sessions *t = table(gw);
	struct cmd_session *s;
	time_t now;

	if (t == NULL)
		return NULL;
	now = now_s(t);
	s = session_slot(t->s, owner, now);
	/* unguessable, and a session also has to match its owner's full JID */
	cm_random_hex(s->id, sizeof(s->id), CMD_SID_BYTES);
	snprintf(s->owner, sizeof(s->owner), "%s", owner);
	s->def = def;
	s->expires = now + CMD_TTL_S;
	s->seq = ++t->seq;
	return s;
}

void
cmd_session_end(struct cmd_session *s)
{
	if (s != NULL)
		s->expires = 0;
}
