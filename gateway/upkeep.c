/*
 * upkeep — store rows nothing will read again are deleted, at start and
 * then hourly, so the database does not grow with the gateway's age.
 *
 * Today that is finished file transfers (done or failed): their rows are
 * written for the transfer's own course and for an operator reading the
 * database afterwards; they are kept as long as a served file lives
 * (served_files_ttl), then pruned.
 */
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "gw.h"
#include "log.h"
#include "store.h"
#include "upkeep.h"

#define UPKEEP_EVERY_S	3600

static void
upkeep_run(struct gw *gw)
{
	int64_t keep = (int64_t)(gw->cfg.served_files_ttl_ms / 1000);
	int n = 0;

	if (store_transfer_prune(gw->store, cm_wall_s() - keep, &n) ==
	    STORE_OK && n > 0)
		log_info("upkeep", "pruned %d finished transfer(s) older than"
		    " served_files_ttl", n);
}

static void
upkeep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	upkeep_run(arg);
}

int
upkeep_start(struct gw *gw)
{
	struct timeval tv = { UPKEEP_EVERY_S, 0 };

	upkeep_run(gw);
	gw->ev_upkeep = event_new(gw->base, -1, EV_PERSIST, upkeep_cb, gw);
	if (gw->ev_upkeep == NULL || event_add(gw->ev_upkeep, &tv) == -1)
		return -1;
	return 0;
}

void
upkeep_stop(struct gw *gw)
{
	if (gw->ev_upkeep != NULL) {
		event_free(gw->ev_upkeep);
		gw->ev_upkeep = NULL;
	}
}
