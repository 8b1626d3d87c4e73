/*
 * spooldrop — a finished transfer's spool file given back in steps.
 *
 * A file's blocks are freed when its last name and its last descriptor
 * are gone, inside that one unlink() or close(), and that takes ~0.15 to
 * 0.4 s per GiB (bench/relay, ext4): one loop turn that long holds up every
 * pipe and the component link.  So a long spool file is unlinked at once
 * (its name is gone, as before), kept open, and cut by SPOOL_DROP_STEP from
 * its end at each loop turn (a zero timer runs after the I/O its turn
 * found ready); the close after the last step has nothing left to free.
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gw.h"
#include "log.h"
#include "spooldrop.h"

struct spool_drop {
	TAILQ_ENTRY(spool_drop) entry;
	int fd;
	off_t size;		/* what is left of it */
};

struct spool_drops {
	TAILQ_HEAD(, spool_drop) files;
	size_t n;
	struct event *ev;
};

static void
drop_free(struct spool_drops *d, struct spool_drop *f)
{
	TAILQ_REMOVE(&d->files, f, entry);
	d->n--;
	close(f->fd);
	free(f);
}

static void
step(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval next_turn = { 0, 0 };
	struct spool_drops *d = arg;
	struct spool_drop *f = TAILQ_FIRST(&d->files);

	(void)fd;
	(void)what;
	if (f == NULL)
		return;
	f->size = f->size > SPOOL_DROP_STEP ? f->size - SPOOL_DROP_STEP : 0;
	if (ftruncate(f->fd, f->size) == -1) {
		log_warn("transfer", "cannot shorten a finished spool file: %s;"
		    " freeing it at once", strerror(errno));
		f->size = 0;
	}
	if (f->size == 0)
		drop_free(d, f);
	if (!TAILQ_EMPTY(&d->files))
		evtimer_add(d->ev, &next_turn);
}

static struct spool_drops *
drops(struct gw *gw)
{
	struct spool_drops *d = gw->drops;

	if (d != NULL)
		return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	TAILQ_INIT(&d->files);
	if ((d->ev = evtimer_new(gw->base, step, d)) == NULL) {
		free(d);
		return NULL;
	}
	return gw->drops = d;
}

void
spool_drop(struct gw *gw, int fd, const char *path)
{
	static const struct timeval next_turn = { 0, 0 };
	struct spool_drops *d;
	struct spool_drop *f;
	struct stat sb;

	if (path != NULL && *path != '\0')
		(void)unlink(path);
	if (fd == -1)
		return;
	if (gw->stopping || fstat(fd, &sb) == -1 || sb.st_size < SPOOL_DROP_STEP ||
	    (d = drops(gw)) == NULL || (f = calloc(1, sizeof(*f))) == NULL) {
		close(fd);
		return;
	}
	f->fd = fd;
	f->size = sb.st_size;
	TAILQ_INSERT_TAIL(&d->files, f, entry);
	d->n++;
	evtimer_add(d->ev, &next_turn);
}

size_t
spool_drops_pending(const struct gw *gw)
{
	return gw->drops ? gw->drops->n : 0;
}

void
spool_drops_stop(struct gw *gw)
{
	struct spool_drops *d = gw->drops;

	if (d == NULL)
		return;
	while (!TAILQ_EMPTY(&d->files))
		drop_free(d, TAILQ_FIRST(&d->files));
	event_free(d->ev);
	free(d);
	gw->drops = NULL;
}
