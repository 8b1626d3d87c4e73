/*
 * upkeep — periodic pruning of store rows that are no longer needed
 * (finished transfers older than served_files_ttl).  See upkeep.c.
 */
#ifndef GW_UPKEEP_H
#define GW_UPKEEP_H

struct gw;

int upkeep_start(struct gw *gw);	/* prunes at once, then hourly */
void upkeep_stop(struct gw *gw);

#endif
