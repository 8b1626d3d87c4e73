/*
 * test_spooldrop — a long finished spool file is gone by name at once and
 * given back a step per loop turn, never in one go; a short one, or one
 * dropped while the gateway stops, is closed at once.
 */
#include <sys/stat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gw.h"
#include "spooldrop.h"
#include "../check.h"

static char dir[512];

static int
spool_file(const char *name, off_t size, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd != -1);
	CHECK(ftruncate(fd, size) == 0);	/* sparse: the sizes are what count */
	return fd;
}

static off_t
size_of(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 ? sb.st_size : -1;
}

static int
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static void
test_a_long_file_goes_in_steps(struct gw *gw)
{
	char path[600];
	const off_t size = 3 * (off_t)SPOOL_DROP_STEP + 5;
	int fd = spool_file("long", size, path, sizeof(path)), look = dup(fd);
	struct stat sb;
	int turns = 0;

	spool_drop(gw, fd, path);
	CHECK(stat(path, &sb) == -1);		/* no name any more */
	CHECK(spool_drops_pending(gw) == 1);
	CHECK(size_of(look) == size);		/* nothing freed inside the call */
	CHECK(event_base_loop(gw->base, EVLOOP_ONCE) == 0);
	CHECK(size_of(look) == size - SPOOL_DROP_STEP);	/* one step a turn */
	while (spool_drops_pending(gw) > 0 && ++turns < 10)
		CHECK(event_base_loop(gw->base, EVLOOP_ONCE) == 0);
	CHECK(turns == 3);
	CHECK(size_of(look) == 0);
	CHECK(!is_open(fd));
	close(look);
}

static void
test_short_files_and_stopping_go_at_once(struct gw *gw)
{
	char path[600];
	int fd = spool_file("short", 4096, path, sizeof(path));
	struct stat sb;

	spool_drop(gw, fd, path);
	CHECK(stat(path, &sb) == -1 && !is_open(fd));
	CHECK(spool_drops_pending(gw) == 0);

	spool_drop(gw, -1, NULL);		/* nothing to drop: fine */

	fd = spool_file("while-stopping", 2 * (off_t)SPOOL_DROP_STEP, path,
	    sizeof(path));
	gw->stopping = 1;
	spool_drop(gw, fd, path);
	CHECK(!is_open(fd) && spool_drops_pending(gw) == 0);
	gw->stopping = 0;

	/* the module's stop closes what is still being given back */
	fd = spool_file("at-stop", 2 * (off_t)SPOOL_DROP_STEP, path, sizeof(path));
	spool_drop(gw, fd, path);
	CHECK(spool_drops_pending(gw) == 1 && is_open(fd));
	spool_drops_stop(gw);
	CHECK(!is_open(fd) && spool_drops_pending(gw) == 0 && gw->drops == NULL);
}

int
main(void)
{
	static struct gw gw;
	const char *tmp = getenv("TEST_TMPDIR");

	snprintf(dir, sizeof(dir), "%s", tmp ? tmp : "/tmp");
	gw.base = event_base_new();
	CHECK(gw.base != NULL);
	test_a_long_file_goes_in_steps(&gw);
	test_short_files_and_stopping_go_at_once(&gw);
	spool_drops_stop(&gw);
	event_base_free(gw.base);
	return CHECK_EXIT();
}
