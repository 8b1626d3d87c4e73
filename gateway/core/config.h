/*
 * config — the daemon's configuration file and its environment overrides.
 *
 * Format: `key = value` lines, `#` comment lines, blank lines; whitespace
 * around keys and values is trimmed; a value may be written "in quotes"
 * (inside them \" and \\ are the only escapes).  Every key can be
 * overridden by the environment variable BAREV_GATEWAY_<KEY> (upper case),
 * which wins over the file.  Errors name the key (and the file line), e.g.
 *
 *	server_port: "70000" is not a port (1-65535) (gw.conf:4)
 *
 * Durations are plain seconds or take a suffix ms|s|m|h|d and are stored in
 * milliseconds; sizes take K|M|G (binary) and are stored in bytes.  After a
 * successful load no string field is NULL: unset optional keys are "".
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum gw_registration { GW_REG_ADMIN = 0, GW_REG_OPEN };

struct gw_strlist {
	char **v;
	size_t n;
};

struct gw_config {
	char *component_jid;		/* required: barev.example.org */
	char *component_secret;		/* the effective secret (also when read
					 * from component_secret_file); never log */
	char *component_secret_file;	/* path or NULL */
	char *server_host;		/* [127.0.0.1] */
	uint16_t server_port;		/* [5347] */
	char *database;			/* required: SQLite file */
	struct gw_strlist admins;	/* [""] bare JIDs, lower-cased */
	enum log_level log_level;	/* [info] */
	uint16_t barev_port;		/* [1337] */
	enum gw_registration registration; /* [admin] */
	char *barev_address;		/* [""] IPv6 for self-registered identities */
	struct gw_strlist registration_domains; /* [""] = the server's domain */
	int refuse_outside_yggdrasil;	/* [true] dial/accept only 200::/7 */
	uint64_t outbox_ttl_ms;		/* [7d] */
	uint64_t max_file_size;		/* [100M] bytes */
	unsigned max_incoming_per_contact; /* [3] files a peer sends at once */
	unsigned max_incoming_total;	/* [32] files all peers send at once */
	uint64_t spool_quota;		/* [1G] accepted offers + served files */
	uint64_t avatar_max_bytes;	/* [65536] */
	char *upload_service;		/* [""] XEP-0363 service JID */
	struct gw_strlist download_hosts; /* [""] link prefixes we fetch files from */
	char *ca_file;			/* [""] extra CAs (PEM) for outgoing HTTPS;
					 * reloadable */
	char *http_listen;		/* [""] ADDR:PORT or [ADDR6]:PORT */
	char *http_public_url;		/* [""] http(s)://... */
	uint64_t served_files_ttl_ms;	/* [7d] files our listener serves */
	char *spool_dir;		/* [""] = DATABASE.spool, per instance */
	char *status_socket;		/* [""] = DATABASE.sock, per instance; "off" */
	unsigned max_concurrent_dials;	/* [64] Barev dials in flight at once */
	uint64_t server_restart_hold_ms; /* [120s] users online before a link
					 * loss stay so at peers this long
					 * while they log back in; 0 = off */
	char *metrics_path;		/* [""] = off; "/metrics" on http_listen */

	/* test-only timer overrides (integration tests shorten them) */
	uint64_t barev_ping_idle_ms;	/* [60s] */
	uint64_t barev_ping_timeout_ms;	/* [10s] */
	uint64_t barev_header_timeout_ms; /* [15s] */
	uint64_t barev_silent_initiator_ms; /* [2s] */
	uint64_t barev_backoff_min_ms;	/* [1s] */
	uint64_t barev_backoff_max_ms;	/* [300s] */

	/* the effective text of every key, for reload diffs (internal) */
	char **raw;
	char *path;			/* the file loaded */
};

/*
 * Load `path` (NULL: environment only) into `c`, which the caller zeroed or
 * freed before.  0, or -1 with a one-line reason in err (naming the key)
 * and `c` left empty.
 */
int gw_config_load(struct gw_config *c, const char *path, char *err,
    size_t errlen);
void gw_config_free(struct gw_config *c);

/* bare_jid is in `admins` (ASCII case-insensitive; a resource is ignored) */
int gw_config_is_admin(const struct gw_config *c, const char *bare_jid);
/* May this JID take an identity itself (registration = open)?  Its domain
 * must be in registration_domains, by default the domain the component
 * hangs under (barev.example.org -> example.org). */
int gw_config_may_register(const struct gw_config *c, const char *jid);
/* Is `domain` (a bare domain, no '@') the server the component hangs under
 * (barev.example.org -> example.org) or one of registration_domains?  Only
 * such a server may grant XEP-0356 privileges. */
int gw_config_is_server_domain(const struct gw_config *c, const char *domain);

/*
 * SIGHUP: take over from `next` every key that is safe to change at run
 * time, keep the old value (with a warning) for those that need a restart,
 * log each change ("config: log_level: info -> debug"; secrets only as
 * "changed"), and free `next`.  Returns a bitmask of what changed.
 */
#define GW_CONFIG_CHANGED_LOG_LEVEL	0x01
#define GW_CONFIG_CHANGED_ADMINS	0x02
#define GW_CONFIG_CHANGED_SECRET	0x04
#define GW_CONFIG_CHANGED_OTHER		0x08
unsigned gw_config_reload(struct gw_config *cur, struct gw_config *next);

#endif
