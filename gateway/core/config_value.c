/*
 * config_value — the value syntaxes of gateway.conf, one function each:
 * durations (30s, 7d), sizes (100M), counts, ports, and the checks of
 * domains, bare JIDs, host names, URL prefixes and listen addresses, with
 * the comma-separated lists built from them.  config.c's key table says
 * which key has which syntax.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_value.h"

char *
config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

void
config_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}


static int
config_parse_uint(const char *s, unsigned long long *out, const char **rest)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	*rest = end;
	return 0;
}

int
config_duration(const char *s, uint64_t *ms)
{
	static const struct { const char *sfx; uint64_t mul; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	unsigned long long v;
	const char *rest;
	size_t i;

	if (config_parse_uint(s, &v, &rest) == -1 || v == 0)
		return -1;
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcasecmp(rest, units[i].sfx) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mul)
			return -1;
		*ms = v * units[i].mul;
		return 0;
	}
	return -1;
}

int
config_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	const char *rest;
	uint64_t mul = 1;

	if (config_parse_uint(s, &v, &rest) == -1)
		return -1;
	switch (toupper((unsigned char)*rest)) {
	case '\0':
		break;
	case 'K':
		mul = 1024;
		break;
	case 'M':
		mul = 1024 * 1024;
		break;
	case 'G':
		mul = 1024 * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*rest != '\0') {
		rest++;
		if (strcasecmp(rest, "") != 0 && strcasecmp(rest, "B") != 0 &&
		    strcasecmp(rest, "iB") != 0)
			return -1;
	}
	if (v > UINT64_MAX / mul)
		return -1;
	*bytes = v * mul;
	return 0;
}

int
config_count(const char *s, unsigned *n)
{
	unsigned long long v;
	const char *rest;

	if (config_parse_uint(s, &v, &rest) == -1 || *rest != '\0' ||
	    v < 1 || v > 1000000)
		return -1;
	*n = (unsigned)v;
	return 0;
}

int
config_port(const char *s, uint16_t *port)
{
	unsigned long long v;
	const char *rest;

	if (config_parse_uint(s, &v, &rest) == -1 || *rest != '\0' ||
	    v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* a domain label sequence: letters, digits, '-', '.', no spaces or markup */
int
config_domain_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 1023 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s) || strchr("@/\"'<>&,", *s) != NULL)
			return 0;
		if ((unsigned char)*s < 0x20)
			return 0;
	}
	return 1;
}

/* user@domain without a resource */
int
config_bare_jid_ok(const char *s)
{
	const char *at = strchr(s, '@');
	size_t i;

	if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return 0;
	for (i = 0; s + i < at; i++) {
		if (isspace((unsigned char)s[i]) ||
		    strchr("/\"'<>&:", s[i]) != NULL)
			return 0;
	}
	return config_domain_ok(at + 1);
}

void
config_list_free(struct gw_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* split on commas, trim, drop empties, lower-case, check each with ok() */
int
config_list(const char *s, struct gw_strlist *out, int (*ok)(const char *),
    const char **bad, char **badcopy)
{
	char *copy, *p, *tok, *item, **nv;

	memset(out, 0, sizeof *out);
	*bad = NULL;
	if ((copy = strdup(s)) == NULL)
		return -1;
	for (p = copy; (tok = strsep(&p, ",")) != NULL;) {
		tok = config_trim(tok);
		if (*tok == '\0')
			continue;
		config_lower(tok);
		if (!ok(tok)) {
			*badcopy = strdup(tok);
			*bad = *badcopy != NULL ? *badcopy : "?";
			goto fail;
		}
		if ((item = strdup(tok)) == NULL)
			goto fail;
		nv = reallocarray(out->v, out->n + 1, sizeof *nv);
		if (nv == NULL) {
			free(item);
			goto fail;
		}
		out->v = nv;
		out->v[out->n++] = item;
	}
	free(copy);
	return 0;
fail:
	free(copy);
	config_list_free(out);
	return -1;
}

int
config_host_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!isalnum((unsigned char)*s) && strchr(".-:[]", *s) == NULL)
			return 0;
	}
	return 1;
}

/* host, host:port, [v6]:port, or http(s)://one of those[/path] */
int
config_prefix_ok(const char *s)
{
	char host[300];
	size_t hl;

	if (strncmp(s, "http://", 7) == 0)
		s += 7;
	else if (strncmp(s, "https://", 8) == 0)
		s += 8;
	else
		return *s != '\0' && config_host_ok(s);
	hl = strcspn(s, "/");
	if (hl == 0 || hl >= sizeof(host))
		return 0;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (!config_host_ok(host))
		return 0;
	for (s += hl; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == '?' || *s == '#' || *s == 0x7f)
			return 0;
	return 1;
}

int
config_listen_ok(const char *s)
{
	const char *colon;
	unsigned char buf[16];
	char host[64];
	uint16_t port;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		size_t hl;

		if (close == NULL || close[1] != ':')
			return 0;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof host)
			return 0;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, buf) != 1)
			return 0;
		return config_port(close + 2, &port) == 0;
	}
	if ((colon = strrchr(s, ':')) == NULL || colon == s)
		return 0;
	if ((size_t)(colon - s) >= sizeof host)
		return 0;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (strchr(host, ':') != NULL)
		return 0;	/* bare IPv6 needs brackets */
	return config_host_ok(host) && config_port(colon + 1, &port) == 0;
}

