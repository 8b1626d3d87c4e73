/*
 * metrics — the gateway's counters, as `status` text and as OpenMetrics
 * on the HTTP listener (config metrics_path, off by default), plus the
 * file-descriptor limit the daemon runs with.
 *
 * Gauges are read when asked (users, contacts, pipes, dials, queues, fds);
 * the few event counters (messages and bytes each way) are bumped where the
 * event happens, transfer outcomes and store errors are counted by the
 * store.  The event counters live in `struct gw` (gw.h).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>

#include "gw.h"


struct metrics_snap {
	int link_up;
	unsigned users, users_online, users_held, contacts;
	unsigned pipes_up, pipes_handshake;
	unsigned dials_in_flight, dials_waiting, dials_max, dials_peak;
	unsigned contacts_wanted;
	unsigned long long dials_started;
	long outbox, inbox;		/* -1: the store could not count */
	long fds_used;			/* -1: unknown */
	unsigned long long fds_limit;
	long long rss_bytes;		/* resident set; -1: unknown */
	long long store_mem_bytes;	/* SQLite's own heap (page cache...) */
	struct gw_counters c;
	unsigned long long transfers_done, transfers_failed, store_errors;
};
void metrics_snapshot(struct gw *gw, struct metrics_snap *m);

/*
 * At start: raise RLIMIT_NOFILE's soft limit to the hard limit (every
 * pipe, dial and transfer is a descriptor) and log the figure.
 */
void metrics_raise_nofile(void);

/*
 * The HTTP side: metrics_path on the transfer module's listener
 * (xfer_serve_http()), which it starts when nothing else did; after
 * bridge_start().  0, or -1 when the listener cannot start.
 */
int metrics_start(struct gw *gw);
/* OpenMetrics text of `m` (malloc'd, NUL-terminated), NULL on no memory */
char *metrics_openmetrics(const struct metrics_snap *m, size_t *len);

#endif
