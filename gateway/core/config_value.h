/*
 * config_value — value syntaxes of gateway.conf (config_value.c), for
 * config.c.  Each conversion returns 0, or -1 when the text is not of its
 * syntax; each check returns 1 when the text is acceptable.
 */
#ifndef GW_CONFIG_VALUE_H
#define GW_CONFIG_VALUE_H

#include <stdint.h>

#include "config.h"

/* in place: without leading/trailing white space; lower-cased */
char *config_trim(char *s);
void config_lower(char *s);

/* a duration > 0: seconds, or with ms/s/m/h/d (30s, 7d) -> milliseconds */
int config_duration(const char *s, uint64_t *ms);
/* a size: bytes, or with K/M/G (100M) -> bytes */
int config_size(const char *s, uint64_t *bytes);
/* a whole number from 1 to 1000000 */
int config_count(const char *s, unsigned *n);
int config_port(const char *s, uint16_t *port);

int config_domain_ok(const char *s);
int config_bare_jid_ok(const char *s);
int config_host_ok(const char *s);
int config_prefix_ok(const char *s);
int config_listen_ok(const char *s);

/*
 * A comma-separated list, each item checked by `ok`; on a bad item -1
 * with *bad pointing at it (in *badcopy, which the caller frees).
 */
int config_list(const char *s, struct gw_strlist *out,
    int (*ok)(const char *), const char **bad, char **badcopy);
void config_list_free(struct gw_strlist *l);

#endif
