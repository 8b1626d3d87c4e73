/*
 * status — the status socket (server on the event loop) and `--health`
 * (its client).  See status.h for the protocol: connect, read, done.
 *
 * The server writes the whole answer into a bufferevent and frees it once
 * the kernel has taken the bytes (or after a write timeout), so a client
 * that never reads costs one small buffer for a few seconds, no more.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "component.h"
#include "config.h"
#include "gw.h"
#include "log.h"
#include "provision.h"
#include "status.h"

#define STATUS_TEXT_MAX		16384	/* prov_status() truncates to fit */
#define STATUS_CLIENTS_MAX	16	/* more at once are closed unanswered */
#define STATUS_WRITE_TIMEOUT_S	5
#define STATUS_ANSWER_MAX	65536	/* the client reads no more */

struct status_client {
	LIST_ENTRY(status_client) entry;
	struct status *s;
	struct bufferevent *bev;
};

struct status {
	struct gw *gw;
	int fd;
	struct event *ev;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	unsigned nclients;
	LIST_HEAD(, status_client) clients;
};

int
status_socket_path(const struct gw_config *cfg, char *buf, size_t len)
{
	const char *set = cfg->status_socket != NULL ? cfg->status_socket : "";
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n;

	if (strcmp(set, "off") == 0)
		return 0;
	/* unset: DATABASE.sock, one per instance like the spool (config.c),
	 * so two gateways with databases side by side both answer --health */
	if (*set != '\0')
		n = snprintf(buf, len, "%s", set);
	else
		n = snprintf(buf, len, "%s.sock", cfg->database);
	if (n < 0 || (size_t)n >= len || (size_t)n >= max) {
		snprintf(buf, len, "status socket path is longer than %zu "
		    "bytes; set status_socket to a shorter one", max - 1);
		return -1;
	}
	return 1;
}

/* ---- server ---- */

static void
status_client_free(struct status_client *c)
{
	LIST_REMOVE(c, entry);
	c->s->nclients--;
	bufferevent_free(c->bev);
	free(c);
}

static void
status_client_written(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		status_client_free(arg);
}

static void
status_client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	status_client_free(arg);	/* error, EOF or write timeout */
}

/* the verdict line, then the admin status text */
static char *
status_text(struct gw *gw)
{
	char *buf;
	size_t n;
	enum comp_state st = comp_state(gw->comp);

	if ((buf = malloc(STATUS_TEXT_MAX)) == NULL)
		return NULL;
	if (gw->stopping)
		n = (size_t)snprintf(buf, STATUS_TEXT_MAX, "down: stopping\n");
	else if (st == COMP_UP)
		n = (size_t)snprintf(buf, STATUS_TEXT_MAX,
		    "ok: component link up as %s\n", gw->cfg.component_jid);
	else
		n = (size_t)snprintf(buf, STATUS_TEXT_MAX,
		    "down: component link %s (%s via %s:%u)\n",
		    comp_state_str(st), gw->cfg.component_jid,
		    gw->cfg.server_host, gw->cfg.server_port);
	if (n >= STATUS_TEXT_MAX)
		n = STATUS_TEXT_MAX - 1;
	prov_status(gw, buf + n, STATUS_TEXT_MAX - n);
	return buf;
}

static void
status_answer(struct status *s, int fd)
{
	struct status_client *c;
	struct timeval tv = { STATUS_WRITE_TIMEOUT_S, 0 };
	char *text;

	if (s->nclients >= STATUS_CLIENTS_MAX) {
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL)
		goto fail;
	c->bev = bufferevent_socket_new(s->gw->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		goto fail;
	fd = -1;	/* the bufferevent owns it now */
	c->s = s;
	LIST_INSERT_HEAD(&s->clients, c, entry);
	s->nclients++;
	if ((text = status_text(s->gw)) == NULL) {
		status_client_free(c);
		return;
	}
	if (bufferevent_write(c->bev, text, strlen(text)) == -1) {
		free(text);
		status_client_free(c);
		return;
	}
	free(text);
	bufferevent_setcb(c->bev, NULL, status_client_written,
	    status_client_event, c);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	if (bufferevent_enable(c->bev, EV_WRITE) == -1)
		status_client_free(c);
	return;
fail:
	log_warn("status", "cannot answer a status request: out of memory");
	if (c != NULL && c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
	if (fd != -1)
		close(fd);
}

static void
status_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct status *s = arg;
	int fd;

	(void)what;
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("status", "accept on %s: %s", s->path,
				    strerror(errno));
			return;
		}
		status_answer(s, fd);
	}
}

/* 1: a live daemon answers on `path`; 0: stale or absent; -1: not a socket */
static int
status_in_use(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd, rc;

	if (lstat(path, &sb) == -1)
		return 0;
	if (!S_ISSOCK(sb.st_mode))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return rc;
}

struct status *
status_start(struct gw *gw)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct status *s;
	mode_t old;
	int r, bound = 0;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		log_error("status", "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->gw = gw;
	LIST_INIT(&s->clients);
	r = status_socket_path(&gw->cfg, s->path, sizeof s->path);
	if (r == 0) {
		log_info("status", "status socket off (status_socket = off)");
		free(s);
		return NULL;
	}
	if (r == -1) {
		log_error("status", "%s; --health will not work", s->path);
		free(s);
		return NULL;
	}
	switch (status_in_use(s->path)) {
	case 1:
		log_error("status", "another process answers on %s (a second "
		    "gateway on the same database?); no status socket",
		    s->path);
		goto fail;
	case -1:
		log_error("status", "%s exists and is not a socket; no status "
		    "socket", s->path);
		goto fail;
	default:
		(void)unlink(s->path);
	}
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1)
		goto syserr;
	/* owner and group only: the status names addresses and counts */
	old = umask(0117);
	r = bind(s->fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r == -1)
		goto syserr;
	bound = 1;
	if (listen(s->fd, STATUS_CLIENTS_MAX) == -1)
		goto syserr;
	s->ev = event_new(gw->base, s->fd, EV_READ | EV_PERSIST,
	    status_accept_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1) {
		log_error("status", "cannot watch %s: out of memory", s->path);
		goto fail_unlink;
	}
	log_info("status", "status socket %s (barev-gateway --health asks it)",
	    s->path);
	return s;
syserr:
	log_error("status", "cannot listen on %s: %s; --health will not work",
	    s->path, strerror(errno));
fail_unlink:
	if (bound)
		(void)unlink(s->path);
fail:
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->fd != -1)
		close(s->fd);
	free(s);
	return NULL;
}

void
status_stop(struct status *s)
{
	if (s == NULL)
		return;
	while (!LIST_EMPTY(&s->clients))
		status_client_free(LIST_FIRST(&s->clients));
	event_free(s->ev);
	close(s->fd);
	(void)unlink(s->path);
	free(s);
}

/* ---- client ---- */

static long
status_ms_left(uint64_t deadline_ms)
{
	return (long)((int64_t)deadline_ms - (int64_t)cm_now_ms());
}

int
status_query(const char *path, int timeout_ms, FILE *out, FILE *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline_ms;
	struct pollfd pfd;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	long left;
	int fd = -1, rc = 1;

	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(err, "health: %s: path too long for a unix socket\n",
		    path);
		return 1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((buf = malloc(STATUS_ANSWER_MAX + 1)) == NULL ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(err, "health: %s\n", strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
		fprintf(err, "health: cannot connect to %s: %s (is "
		    "barev-gateway running with this configuration?)\n",
		    path, strerror(errno));
		goto out;
	}
	deadline_ms = cm_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if ((left = status_ms_left(deadline_ms)) <= 0) {
			fprintf(err, "health: no complete answer from %s "
			    "within %d ms (event loop stuck?)\n", path,
			    timeout_ms);
			goto out;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(err, "health: poll: %s\n", strerror(errno));
			goto out;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, buf + len, STATUS_ANSWER_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(err, "health: reading %s: %s\n", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0 || (len += (size_t)n) == STATUS_ANSWER_MAX)
			break;
	}
	buf[len] = '\0';
	if (len == 0) {
		fprintf(err, "health: %s closed without an answer\n", path);
		goto out;
	}
	fputs(buf, out);
	if (buf[len - 1] != '\n')
		fputc('\n', out);
	rc = strncmp(buf, "ok:", 3) == 0 ? 0 : 1;
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return rc;
}
