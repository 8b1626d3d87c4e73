/*
 * config_int.h — what config.c and config_file.c share, and only they:
 * config.h is the interface, config_value.h the value syntaxes.
 */
#ifndef GW_CONFIG_INT_H
#define GW_CONFIG_INT_H

#include <stddef.h>

#define CONFIG_LINE_MAX		65536
#define CONFIG_SECRET_MAX	4096
#define CONFIG_ENV_PREFIX	"BAREV_GATEWAY_"

/* ---- config.c ---- */
/* the message into err (if any), printf-style */
void config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* the index of key `name` in the key table, -1 none */
int config_key_find(const char *name);

/* ---- config_file.c ---- */
/* BAREV_GATEWAY_<KEY>, the environment variable of `key` */
void config_env_name(const char *key, char *buf, size_t len);
/* the file's raw text per key (raw[i], lines[i] = its line); -1 with err */
int config_read_file(const char *path, char **raw, int *lines, char *err,
    size_t errlen);
/* the secret in `path` (trailing CR/LF dropped; not empty, no NUL); -1 with err */
int config_read_secret(const char *path, char **out, char *err, size_t errlen);
/* " (FILE:LINE)", " (from BAREV_GATEWAY_KEY)" or " (default)" */
void config_where(const char *path, int line, const char *key, char *buf,
    size_t len);

#endif
