/*
 * config_file — the text of the configuration: gateway.conf read line by
 * line into each key's raw text (key = value, quotes and their escapes,
 * comments, each key once), the component secret read from its own file,
 * and where a value came from (file line, environment, default) for the
 * messages about it.
 *
 * The one idea: this file only finds text; what the text means is
 * config.c's, so the environment can override a value the file got wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_value.h"
#include "config_int.h"

/* BAREV_GATEWAY_<KEY>, the environment variable of `key` */
void
config_env_name(const char *key, char *buf, size_t len)
{
	size_t i, p;

	p = (size_t)snprintf(buf, len, "%s", CONFIG_ENV_PREFIX);
	for (i = 0; key[i] != '\0' && p + 1 < len; i++)
		buf[p++] = (char)toupper((unsigned char)key[i]);
	buf[p] = '\0';
}

/* parse `value` (trimmed) into a fresh string: quotes and their escapes */
static char *
config_unquote(const char *value, const char **why)
{
	const char *p;
	char *out, *o;

	if (*value != '"')
		return strdup(value);
	if ((out = malloc(strlen(value) + 1)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	for (p = value + 1, o = out; *p != '"'; p++) {
		if (*p == '\0') {
			*why = "unterminated quoted value";
			goto fail;
		}
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*o++ = *p;
	}
	*o = '\0';
	for (p++; isspace((unsigned char)*p); p++)
		;
	if (*p != '\0' && *p != '#') {
		*why = "text after the closing quote";
		goto fail;
	}
	return out;
fail:
	free(out);
	return NULL;
}

int
config_read_file(const char *path, char **raw, int *lines, char *err,
    size_t errlen)
{
	FILE *f;
	char *buf = NULL, *line, *eq, *key, *val, *v;
	const char *why = "out of memory";
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, i;

	if ((f = fopen(path, "re")) == NULL) {
		config_err(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while ((n = getline(&buf, &cap, f)) != -1) {
		lineno++;
		if (n > CONFIG_LINE_MAX || strlen(buf) != (size_t)n) {
			config_err(err, errlen, "%s:%d: line too long or "
			    "contains a NUL byte", path, lineno);
			goto fail;
		}
		line = config_trim(buf);
		if (*line == '\0' || *line == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			config_err(err, errlen, "%s:%d: expected \"key = "
			    "value\"", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = config_trim(line);
		val = config_trim(eq + 1);
		if ((i = config_key_find(key)) == -1) {
			config_err(err, errlen, "%s:%d: unknown key \"%s\"",
			    path, lineno, key);
			goto fail;
		}
		if (raw[i] != NULL) {
			config_err(err, errlen, "%s:%d: %s: set twice (first "
			    "on line %d)", path, lineno, key, lines[i]);
			goto fail;
		}
		if ((v = config_unquote(val, &why)) == NULL) {
			config_err(err, errlen, "%s:%d: %s: %s", path, lineno,
			    key, why);
			goto fail;
		}
		raw[i] = v;
		lines[i] = lineno;
	}
	if (ferror(f)) {
		config_err(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	free(buf);
	fclose(f);
	return 0;
fail:
	free(buf);
	fclose(f);
	return -1;
}

int
config_read_secret(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f;
	char buf[CONFIG_SECRET_MAX + 2];
	size_t n;

	if ((f = fopen(path, "re")) == NULL) {
		config_err(err, errlen, "component_secret_file: cannot read "
		    "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	if (ferror(f)) {
		config_err(err, errlen, "component_secret_file: cannot read "
		    "%s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	if (n > CONFIG_SECRET_MAX) {
		config_err(err, errlen, "component_secret_file: %s is larger "
		    "than %d bytes", path, CONFIG_SECRET_MAX);
		return -1;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n) {
		config_err(err, errlen, "component_secret_file: %s is empty "
		    "or contains a NUL byte", path);
		return -1;
	}
	if ((*out = strdup(buf)) == NULL) {
		config_err(err, errlen, "out of memory");
		return -1;
	}
	explicit_bzero(buf, sizeof buf);
	return 0;
}

void
config_where(const char *path, int line, const char *key, char *buf,
    size_t len)
{
	char env[128];

	if (line > 0) {
		snprintf(buf, len, " (%s:%d)", path, line);
		return;
	}
	if (line < 0) {
		snprintf(buf, len, " (default)");
		return;
	}
	config_env_name(key, env, sizeof env);
	snprintf(buf, len, " (from %s)", env);
}
