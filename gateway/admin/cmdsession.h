/*
 * cmdsession — ad-hoc command sessions for commands.c (see cmdsession.c).
 */
#ifndef GW_CMDSESSION_H
#define GW_CMDSESSION_H

#include <time.h>

#define CMD_JID_MAX	3072		/* RFC 7622: 3 x 1023 + separators */
#define CMD_SID_BYTES	12
#define CMD_SESSIONS	64

struct cmd_def;
struct gw;

struct cmd_session {
	char id[2 * CMD_SID_BYTES + 1];
	char owner[CMD_JID_MAX];	/* full JID */
	const struct cmd_def *def;
	time_t expires;			/* monotonic seconds; 0 = free slot */
	unsigned long long seq;		/* creation order: many share a second */
};

/* the gateway's table (gw->cmd, gw.h); all zero: empty */
struct cmd_sessions {
	struct cmd_session s[CMD_SESSIONS];
	unsigned long long seq;		/* the last session's `seq` */
	long clock_skew;		/* commands_test_clock_skew() */
};

/* The live session `id` of `owner` for `def`, or NULL. */
struct cmd_session *cmd_session_find(struct gw *gw, const char *id,
    const char *owner, const struct cmd_def *def);
/* A new session for `owner`; the full table gives one up, so NULL only
 * when the table itself cannot be made (no memory). */
struct cmd_session *cmd_session_new(struct gw *gw, const char *owner,
    const struct cmd_def *def);
/* Close it (NULL is fine). */
void cmd_session_end(struct cmd_session *s);
/* The table goes (at the gateway's end). */
void cmd_sessions_free(struct gw *gw);

#endif
