/*
 * transfer_spool — the spool directory under spool_dir: SPOOL/tmp holds
 * the file of each transfer in flight (created here, removed by xfer_end),
 * SPOOL/served the files the gateway's own listener serves
 * (transfer_serve.c) when there is no upload service.
 *
 * The one idea: nothing in the spool outlives its purpose — what a
 * previous run left in tmp/ goes at start, served files go once older than
 * served_files_ttl, at start and by a sweep while running — and the bytes
 * kept in served/ are counted, because they count against spool_quota.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>
#include <strophe.h>

#include "gw.h"
#include "log.h"
#include "transfer.h"
#include "transfer_int.h"

/* gw->xfer->served_bytes, the bytes in SPOOL/served, are counted at start
 * and by each sweep and grown by in_serve(); they count against
 * spool_quota */

/* A fresh spool file under SPOOL/tmp, opened read-write. */
int
xfer_spool_create(struct xfer *x)
{
	snprintf(x->path, sizeof(x->path), "%s/tmp/%s-%llu-XXXXXX",
	    x->gw->cfg.spool_dir, x->out ? "out" : "in", (unsigned long long)x->serial);
	if ((x->fd = mkostemp(x->path, O_CLOEXEC)) == -1) {
		log_error("transfer", "cannot create a spool file in %s/tmp: %s",
		    x->gw->cfg.spool_dir, strerror(errno));
		x->path[0] = '\0';
		return -1;
	}
	return 0;
}

static int
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0750) == -1 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(tmp, 0750) == -1 && errno != EEXIST ? -1 : 0;
}

/* Remove what a previous run left in SPOOL/tmp, and served files past
 * their age; the bytes of the files kept (for spool_quota). */
static uint64_t
spool_clean(const char *dir, time_t max_age)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX];
	struct stat st;
	int n = 0;
	uint64_t kept = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (max_age && stat(p, &st) == -1)
			continue;
		if (max_age && st.st_mtime > time(NULL) - max_age) {
			kept += (uint64_t)st.st_size;
			continue;
		}
		if (unlink(p) == 0)
			n++;
	}
	closedir(d);
	if (n)
		log_info("transfer", "removed %d old file(s) from %s", n, dir);
	return kept;
}

static time_t
served_ttl_s(const struct gw *gw)
{
	time_t s = (time_t)(gw->cfg.served_files_ttl_ms / 1000);

	return s > 0 ? s : 1;
}

/* The next look at served files: 1/24 of their lifetime, between a second
 * and an hour, from the current config (served_files_ttl reloads). */
static int
sweep_arm(struct gw *gw)
{
	uint64_t ms = gw->cfg.served_files_ttl_ms / 24;
	struct timeval tv;

	if (ms < 1000)
		ms = 1000;
	if (ms > 3600000)
		ms = 3600000;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return evtimer_add(gw->xfer->sweeper, &tv);
}

/* Served files expire while we run, not only at start. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	char served[PATH_MAX];

	(void)fd;
	(void)what;
	snprintf(served, sizeof(served), "%s/served", gw->cfg.spool_dir);
	gw->xfer->served_bytes = spool_clean(served, served_ttl_s(gw));
	sweep_arm(gw);
}

int
xfer_spool_sweep_start(struct gw *gw)
{
	if ((gw->xfer->sweeper = evtimer_new(gw->base, sweep_cb, gw)) == NULL)
		return -1;
	return sweep_arm(gw);
}

void
xfer_spool_prepare(struct gw *gw)
{
	char tmp[PATH_MAX], served[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s/tmp", gw->cfg.spool_dir);
	snprintf(served, sizeof(served), "%s/served", gw->cfg.spool_dir);
	if (mkdir_p(tmp) == -1 || mkdir_p(served) == -1) {
		/* not fatal: messages still flow; files fail with a reason */
		log_error("transfer", "cannot create the spool %s: %s", gw->cfg.spool_dir,
		    strerror(errno));
	}
	spool_clean(tmp, 0);
	gw->xfer->served_bytes = spool_clean(served, served_ttl_s(gw));
}

void
xfer_spool_stop(struct gw *gw)
{
	if (gw->xfer->sweeper) {
		event_free(gw->xfer->sweeper);
		gw->xfer->sweeper = NULL;
	}
}
