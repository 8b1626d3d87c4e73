/*
 * status — a unix-socket status endpoint for health checks.
 *
 * Whoever connects gets the daemon's state as text and the connection is
 * closed; nothing is read.  The first line is the verdict a health check
 * needs, the rest is the admin `status` text (prov_status()):
 *
 *	ok: component link up as barev.example.org
 *	down: component link connecting (barev.example.org via 127.0.0.1:5347)
 *
 * Because the answer is produced on the event loop, a wedged loop fails the
 * check too, which a "process exists" check cannot see.  `barev-gateway
 * --health` is the client (container HEALTHCHECK, monitoring, operators).
 *
 * Where: config `status_socket`; "" (the default) is status.sock in the
 * database's directory (the state directory, writable by the daemon and
 * private to the instance), "off" disables it.
 */
#ifndef GW_STATUS_H
#define GW_STATUS_H

#include <stddef.h>
#include <stdio.h>

struct gw;
struct gw_config;
struct status;

/*
 * The socket path `cfg` selects, into buf.  1 when there is one, 0 when
 * it is "off", -1 (with a reason in buf) when the path does not fit a
 * unix socket address.
 */
int status_socket_path(const struct gw_config *cfg, char *buf, size_t len);

/*
 * Listen on the configured socket.  NULL when disabled or on failure
 * (logged; the daemon runs on without it).  A stale socket file is
 * replaced; one that another process still answers on is left alone.
 */
struct status *status_start(struct gw *gw);
/* stop listening and remove the socket file */
void status_stop(struct status *s);

/*
 * The client: connect to `path`, copy the answer to `out` and return 0
 * when its first line says "ok:", 1 otherwise (down, no answer within
 * timeout_ms, nobody listening; the reason goes to `err`).
 */
int status_query(const char *path, int timeout_ms, FILE *out, FILE *err);

#endif
