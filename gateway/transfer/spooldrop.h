/*
 * spooldrop — a finished transfer's spool file given back to the file
 * system in steps, so that freeing a large file never stalls the loop.
 */
#ifndef GW_SPOOLDROP_H
#define GW_SPOOLDROP_H

#include <stddef.h>

struct gw;

/* how much of a file one loop turn frees (a multiple of any block size) */
#define SPOOL_DROP_STEP (32u << 20)

/*
 * Forget a spool file: `path` (may be NULL or "") is unlinked at once, so
 * nothing finds it any more; `fd` (or -1) is taken.  A file shorter than
 * SPOOL_DROP_STEP is closed now; a longer one stays open and is shortened
 * by a step per loop turn, then closed.  While the gateway stops, or out
 * of memory, it is closed now (which frees it in one go).
 */
void spool_drop(struct gw *gw, int fd, const char *path);
/* files still being given back (tests, status) */
size_t spool_drops_pending(const struct gw *gw);
/* close them all now (the module's stop; the loop is ending) */
void spool_drops_stop(struct gw *gw);

#endif
