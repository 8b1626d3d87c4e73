/*
 * cmdsession — ad-hoc command sessions for commands.c (see cmdsession.c).
 */
#ifndef GW_CMDSESSION_H
#define GW_CMDSESSION_H

#include <time.h>

#define CMD_JID_MAX	3072		/* RFC 7622: 3 x 1023 + separators */
#define CMD_SID_BYTES	12

struct cmd_def;

struct cmd_session {
	char id[2 * CMD_SID_BYTES + 1];
	char owner[CMD_JID_MAX];	/* full JID */
	const struct cmd_def *def;
	time_t expires;			/* monotonic seconds; 0 = free slot */
	unsigned long long seq;		/* creation order: many share a second */
};

/* The live session `id` of `owner` for `def`, or NULL. */
struct cmd_session *cmd_session_find(const char *id, const char *owner,
    const struct cmd_def *def);
/* A new session for `owner` (never NULL: the table gives one up). */
struct cmd_session *cmd_session_new(const char *owner,
    const struct cmd_def *def);
/* Close it (NULL is fine). */
void cmd_session_end(struct cmd_session *s);

#endif
