/*
 * bl-driver — barevlink on a libevent loop, driven by lines on stdin, for
 * the integration tests and the pipes benchmark (the gateway core is the
 * real user; this is the smallest one that exercises everything).
 *
 * Usage: bl-driver [--header-timeout MS] [--silent-initiator MS]
 *     [--ping-idle MS] [--ping-timeout MS] [--ping-misses N]
 *     [--dial-timeout MS] [--backoff-min MS] [--backoff-max MS] [--pace MS]
 *     [--max-stanza BYTES] [--max-depth N] [--max-dials N]
 *     [--dial-jitter MS] [--log-level debug|info|...]
 *
 * Commands (one per line; words split on blanks; TEXT is the rest of the
 * line with \n and \\ escapes).  Each command is answered with one line,
 * `ok CMD [detail]` or `err CMD reason`, before the next one is read:
 *
 *   ident ID NICK ADDR PORT          bl_identity_add (PORT 0 = 1337)
 *   ident-nick ID NICK               bl_identity_set_nick
 *   remove-ident ID                  bl_identity_remove
 *   contact IDENT ID NICK ADDR PORT  bl_contact_add
 *   remove-contact ID                bl_contact_remove
 *   want ID 0|1                      bl_contact_want
 *   presence IDENT available|unavailable [SHOW|- [STATUS...]]
 *   photo IDENT HEX|-                photo hash for the next presence
 *   msg ID TEXT                      bl_send_message -> "ok msg TOKEN"
 *   chatstate ID STATE               bl_send_chatstate -> "ok chatstate TOKEN"
 *   stanza ID XML                    bl_send_stanza -> "ok stanza TOKEN"
 *   ping ID COOKIE                   bl_ping
 *   state ID                         "ok state none|dialing|handshake|up"
 *   info ID                          "ok info want=0|1 redial=0|1
 *                                     waiting=0|1 backoff=MS"
 *   stats                            "ok stats listeners=N listeners_failed=N
 *                                     pipes_up=N pipes_handshake=N dials=N
 *                                     rejected_unknown=N accepted=N
 *                                     dials_waiting=N dials_max=N wanted=N
 *                                     dials_started=N"
 *   listeners                        one `listener ...` line each, then ok
 *   rss                              "ok rss KIB" (VmRSS) for the benchmark
 *   shutdown                         bl_shutdown
 *   quit                             bl_free and exit 0 (so does EOF)
 *
 * Events, one per line, as they happen:
 *
 *   pipe_up IDENT CONTACT
 *   pipe_cut IDENT CONTACT           (just before its pipe_down: a cut)
 *   pipe_down IDENT CONTACT WHY...
 *   stanza IDENT CONTACT XML         (serialized, \n and \\ escaped)
 *   sent IDENT CONTACT TOKEN
 *   ping_done IDENT CONTACT COOKIE 0|1
 *   listener ADDR PORT ok|fail [ERR...]
 */
#include <sys/resource.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "barevlink.h"
#include "xmlstream.h"
#include "log.h"

struct driver {
	struct event_base	*base;
	struct bl		*bl;
	struct event		*in;
	struct evbuffer		*buf;
	uint64_t		 token;
	char			*photo[8];	/* by ident id % 8, enough here */
};

static void
put_escaped(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			fputs("\\n", stdout);
		else if (s[i] == '\\')
			fputs("\\\\", stdout);
		else
			putchar(s[i]);
	}
}

static void
ev_pipe_up(void *arg, int64_t i, int64_t c)
{
	(void)arg;
	printf("pipe_up %" PRId64 " %" PRId64 "\n", i, c);
}

static void
ev_pipe_down(void *arg, int64_t i, int64_t c, const char *why)
{
	(void)arg;
	printf("pipe_down %" PRId64 " %" PRId64 " %s\n", i, c, why);
}

static void
ev_pipe_cut(void *arg, int64_t i, int64_t c)
{
	(void)arg;
	printf("pipe_cut %" PRId64 " %" PRId64 "\n", i, c);
}

static void
ev_stanza(void *arg, int64_t i, int64_t c, xmpp_stanza_t *st)
{
	char	*s;
	size_t	 n;

	(void)arg;
	if ((s = xs_serialize_str(st, 0, &n)) == NULL) {
		printf("stanza %" PRId64 " %" PRId64 " (unserializable)\n", i, c);
		return;
	}
	printf("stanza %" PRId64 " %" PRId64 " ", i, c);
	put_escaped(s, n);
	putchar('\n');
	free(s);
}

static void
ev_sent(void *arg, int64_t i, int64_t c, uint64_t token)
{
	(void)arg;
	printf("sent %" PRId64 " %" PRId64 " %" PRIu64 "\n", i, c, token);
}

static void
ev_ping_done(void *arg, int64_t i, int64_t c, uint64_t cookie, int ok)
{
	(void)arg;
	printf("ping_done %" PRId64 " %" PRId64 " %" PRIu64 " %d\n", i, c,
	    cookie, ok);
}

static void
ev_listener(void *arg, const char *addr, uint16_t port, int ok,
    const char *err)
{
	(void)arg;
	printf("listener %s %u %s%s%s\n", addr, port, ok ? "ok" : "fail",
	    err != NULL ? " " : "", err != NULL ? err : "");
}

static void
unescape(char *s)
{
	char	*d = s;

	for (; *s != '\0'; s++) {
		if (*s == '\\' && s[1] == 'n') {
			*d++ = '\n';
			s++;
		} else if (*s == '\\' && s[1] == '\\') {
			*d++ = '\\';
			s++;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

/* next blank-separated word; *rest is what follows it */
static char *
word(char **rest)
{
	char	*s = *rest, *w;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return (NULL);
	w = s;
	while (*s != '\0' && *s != ' ')
		s++;
	if (*s == ' ')
		*s++ = '\0';
	*rest = s;
	return (w);
}

static int64_t
num(const char *s, int *ok)
{
	char	*end;
	long long v;

	if (s == NULL) {
		*ok = 0;
		return (0);
	}
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		*ok = 0;
	return (v);
}

static long
rss_kib(void)
{
	FILE	*f;
	char	 line[256];
	long	 kb = -1;

	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return (kb);
}

static void
list_cb(void *arg, const char *addr, uint16_t port, int ok, const char *err)
{
	ev_listener(arg, addr, port, ok, err);
}

static const char *const state_names[] = { "none", "dialing", "handshake",
    "up" };

#define CMD_PRINTED	1	/* the command printed its own answer */
#define CMD_NOT_MINE	(-2)	/* another group's command */

/* identities, contacts, presence: what barevlink is told to know */
static int
command_provision(struct driver *d, const char *cmd, char *rest, int *ok)
{
	struct bl_presence pr;
	char		*a, *b, *c;
	int64_t		 x, y;
	int		 rv = -1;

	if (strcmp(cmd, "ident") == 0) {
		x = num(word(&rest), ok);
		a = word(&rest);
		b = word(&rest);
		y = num(word(&rest), ok);
		if (*ok && a != NULL && b != NULL)
			rv = bl_identity_add(d->bl, x, a, b, (uint16_t)y);
	} else if (strcmp(cmd, "ident-nick") == 0) {
		x = num(word(&rest), ok);
		if (*ok)
			rv = bl_identity_set_nick(d->bl, x, word(&rest));
	} else if (strcmp(cmd, "remove-ident") == 0) {
		x = num(word(&rest), ok);
		if (*ok)
			rv = bl_identity_remove(d->bl, x);
	} else if (strcmp(cmd, "contact") == 0) {
		x = num(word(&rest), ok);
		y = num(word(&rest), ok);
		a = word(&rest);
		b = word(&rest);
		c = word(&rest);
		if (*ok && a != NULL && b != NULL)
			rv = bl_contact_add(d->bl, x, y, a, b,
			    (uint16_t)num(c, ok));
	} else if (strcmp(cmd, "remove-contact") == 0) {
		x = num(word(&rest), ok);
		if (*ok)
			rv = bl_contact_remove(d->bl, x);
	} else if (strcmp(cmd, "want") == 0) {
		x = num(word(&rest), ok);
		y = num(word(&rest), ok);
		if (*ok)
			rv = bl_contact_want(d->bl, x, (int)y);
	} else if (strcmp(cmd, "presence") == 0) {
		x = num(word(&rest), ok);
		a = word(&rest);
		b = word(&rest);
		unescape(rest);
		memset(&pr, 0, sizeof(pr));
		pr.available = a != NULL && strcmp(a, "available") == 0;
		pr.show = b != NULL && strcmp(b, "-") != 0 ? b : NULL;
		pr.status = *rest != '\0' ? rest : NULL;
		pr.photo = d->photo[(uint64_t)x % 8];
		if (*ok)
			rv = bl_identity_set_presence(d->bl, x, &pr);
	} else if (strcmp(cmd, "photo") == 0) {
		x = num(word(&rest), ok);
		a = word(&rest);
		if (*ok && a != NULL) {
			free(d->photo[(uint64_t)x % 8]);
			d->photo[(uint64_t)x % 8] = strcmp(a, "-") != 0 ?
			    strdup(a) : NULL;
			rv = 0;
		}
	} else
		return (CMD_NOT_MINE);
	return (rv);
}

/* msg, chatstate, stanza: answered with their token when sent */
static int
command_send(struct driver *d, const char *cmd, char *rest, int *ok)
{
	xmpp_stanza_t	*stz;
	int64_t		 x;
	int		 rv = -1;
	uint64_t	 tok;

	if (strcmp(cmd, "msg") != 0 && strcmp(cmd, "chatstate") != 0 &&
	    strcmp(cmd, "stanza") != 0)
		return (CMD_NOT_MINE);
	x = num(word(&rest), ok);
	while (*rest == ' ')
		rest++;
	unescape(rest);
	tok = ++d->token;
	if (!*ok)
		rv = -1;
	else if (cmd[0] == 'm')
		rv = bl_send_message(d->bl, x, rest, tok);
	else if (cmd[0] == 'c')
		rv = bl_send_chatstate(d->bl, x, rest, tok);
	else if ((stz = xmpp_stanza_new_from_string(xs_ctx(),
	    rest)) != NULL) {
		rv = bl_send_stanza(d->bl, x, stz, tok);
		xmpp_stanza_release(stz);
	}
	if (rv == 0) {
		printf("ok %s %" PRIu64 "\n", cmd, tok);
		return (CMD_PRINTED);
	}
	return (rv);
}

/* pings, questions about the state, and the shutdown */
static int
command_query(struct driver *d, const char *cmd, char *rest, int *ok)
{
	struct bl_contact_info ci;
	struct bl_stats	 st;
	int64_t		 x, y;

	if (strcmp(cmd, "ping") == 0) {
		x = num(word(&rest), ok);
		y = num(word(&rest), ok);
		return (*ok ? bl_ping(d->bl, x, (uint64_t)y) : -1);
	} else if (strcmp(cmd, "state") == 0) {
		x = num(word(&rest), ok);
		if (!*ok)
			return (-1);
		printf("ok state %s\n", state_names[bl_contact_state(d->bl, x)]);
	} else if (strcmp(cmd, "info") == 0) {
		x = num(word(&rest), ok);
		if (!*ok || bl_contact_info(d->bl, x, &ci) != 0)
			return (-1);
		printf("ok info want=%d redial=%d waiting=%d backoff=%u\n",
		    ci.want, ci.redial_pending, ci.dial_waiting, ci.backoff_ms);
	} else if (strcmp(cmd, "stats") == 0) {
		bl_get_stats(d->bl, &st);
		printf("ok stats listeners=%u listeners_failed=%u pipes_up=%u "
		    "pipes_handshake=%u dials=%u rejected_unknown=%llu "
		    "accepted=%llu dials_waiting=%u dials_max=%u wanted=%u "
		    "dials_started=%llu\n", st.listeners, st.listeners_failed,
		    st.pipes_up, st.pipes_handshake, st.dials_in_flight,
		    st.rejected_unknown, st.accepted, st.dials_waiting,
		    st.dials_max, st.contacts_wanted, st.dials_started);
	} else if (strcmp(cmd, "listeners") == 0) {
		bl_foreach_listener(d->bl, list_cb, d);
		return (0);
	} else if (strcmp(cmd, "rss") == 0) {
		printf("ok rss %ld\n", rss_kib());
	} else if (strcmp(cmd, "shutdown") == 0) {
		bl_shutdown(d->bl);
		return (0);
	} else
		return (CMD_NOT_MINE);
	return (CMD_PRINTED);
}

/* 1 = quit */
static int
command(struct driver *d, char *line)
{
	char		*rest = line, *cmd;
	int		 ok = 1, rv;

	if ((cmd = word(&rest)) == NULL)
		return (0);
	if (strcmp(cmd, "quit") == 0)
		return (1);
	if ((rv = command_provision(d, cmd, rest, &ok)) == CMD_NOT_MINE &&
	    (rv = command_send(d, cmd, rest, &ok)) == CMD_NOT_MINE &&
	    (rv = command_query(d, cmd, rest, &ok)) == CMD_NOT_MINE) {
		printf("err %s unknown command\n", cmd);
		return (0);
	}
	if (rv == CMD_PRINTED)
		return (0);
	if (rv == 0)
		printf("ok %s\n", cmd);
	else
		printf("err %s %s\n", cmd, ok ? "failed" : "bad arguments");
	return (0);
}

static void
stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver	*d = arg;
	char		*line;
	size_t		 n;
	int		 r, err;

	(void)what;
	r = evbuffer_read(d->buf, fd, 65536);
	err = errno;
	while ((line = evbuffer_readln(d->buf, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (command(d, line)) {
			free(line);
			event_base_loopexit(d->base, NULL);
			return;
		}
		free(line);
	}
	fflush(stdout);
	if (r == 0 || (r < 0 && err != EAGAIN && err != EINTR))
		event_base_loopexit(d->base, NULL);
}

static void
raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "header-timeout", required_argument, NULL, 'H' },
		{ "silent-initiator", required_argument, NULL, 'S' },
		{ "ping-idle", required_argument, NULL, 'I' },
		{ "ping-timeout", required_argument, NULL, 'T' },
		{ "ping-misses", required_argument, NULL, 'M' },
		{ "dial-timeout", required_argument, NULL, 'D' },
		{ "backoff-min", required_argument, NULL, 'b' },
		{ "backoff-max", required_argument, NULL, 'B' },
		{ "pace", required_argument, NULL, 'p' },
		{ "max-stanza", required_argument, NULL, 's' },
		{ "max-depth", required_argument, NULL, 'd' },
		{ "max-dials", required_argument, NULL, 'x' },
		{ "dial-jitter", required_argument, NULL, 'j' },
		{ "log-level", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct bl_events ev = {
		ev_pipe_up, ev_pipe_down, ev_stanza, ev_sent, ev_ping_done,
		ev_listener, NULL,	/* permit: everything (the gateway has policy) */
		ev_pipe_cut
	};
	struct bl_config cfg;
	struct driver	 d;
	enum log_level	 lvl;
	unsigned long	 v;
	int		 ch, i;

	memset(&cfg, 0, sizeof(cfg));
	memset(&d, 0, sizeof(d));
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'l') {
			if (log_level_parse(optarg, &lvl) == -1)
				return (2);
			log_set_level(lvl);
			continue;
		}
		if (ch == '?')
			return (2);
		v = strtoul(optarg, NULL, 10);
		switch (ch) {
		case 'H': cfg.header_timeout_ms = v; break;
		case 'S': cfg.silent_initiator_ms = v; break;
		case 'I': cfg.ping_idle_ms = v; break;
		case 'T': cfg.ping_timeout_ms = v; break;
		case 'M': cfg.ping_misses = v; break;
		case 'D': cfg.dial_timeout_ms = v; break;
		case 'b': cfg.backoff_min_ms = v; break;
		case 'B': cfg.backoff_max_ms = v; break;
		case 'p': cfg.pace_ms = v; break;
		case 's': cfg.max_stanza = v; break;
		case 'd': cfg.max_depth = v; break;
		case 'x': cfg.max_dials = v; break;
		case 'j': cfg.dial_jitter_ms = v; break;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	raise_nofile();
	if (xs_init() == -1 || (d.base = event_base_new()) == NULL ||
	    (d.buf = evbuffer_new()) == NULL)
		return (1);
	if ((d.bl = bl_new(d.base, &cfg, &ev, &d)) == NULL)
		return (1);
	evutil_make_socket_nonblocking(0);
	d.in = event_new(d.base, 0, EV_READ | EV_PERSIST, stdin_cb, &d);
	if (d.in == NULL || event_add(d.in, NULL) == -1)
		return (1);
	printf("ready\n");
	event_base_dispatch(d.base);
	bl_free(d.bl);
	event_free(d.in);
	evbuffer_free(d.buf);
	for (i = 0; i < 8; i++)
		free(d.photo[i]);
	event_base_free(d.base);
	xs_shutdown();
	return (0);
}
