/*
 * config — the configuration's keys: apply environment overrides to the
 * file's text, validate, and diff two configurations on SIGHUP.  Reading
 * the file is config_file.c, the value syntaxes config_value.c.
 *
 * The one idea: every key is one row of `config_keys` (name, type, field,
 * default, flags).  Loading is three passes over raw text — file, then
 * environment, then defaults — followed by one conversion pass, so an
 * invalid file value that the environment overrides is never an error, and
 * the raw text kept per key makes reload diffs generic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_value.h"
#include "config_int.h"


enum config_type {
	CT_STR,		/* any text */
	CT_DOMAIN,	/* a domain JID (no @, no /), lower-cased */
	CT_PORT,	/* 1-65535 */
	CT_LOGLEVEL,
	CT_REGISTRATION,
	CT_BOOL,
	CT_DURATION,	/* -> milliseconds, > 0 */
	CT_SIZE,	/* -> bytes */
	CT_COUNT,	/* -> unsigned, 1..1000000 */
	CT_JIDLIST,	/* comma-separated bare JIDs user@domain */
	CT_HOSTLIST,	/* comma-separated host names */
	CT_PREFIXLIST,	/* comma-separated host[:port] or http(s)://host[:port][/path] */
	CT_ADDR6,	/* "" or an IPv6 address, stored in RFC 5952 form */
	CT_LISTEN,	/* "" or HOST:PORT / [ADDR6]:PORT */
	CT_URL,		/* "" or http(s)://... */
};

#define CK_REQUIRED	0x01	/* no default: must be set */
#define CK_SECRET	0x02	/* never print the value */
#define CK_RELOAD	0x04	/* safe to change on SIGHUP */
#define CK_OFF		0x08	/* a duration that 0 or "off" turns off */

struct config_key {
	const char *name;
	enum config_type type;
	size_t off;
	size_t size;
	const char *def;	/* NULL: unset unless required */
	unsigned flags;
};

#define KEY(name, field, type, def, flags) \
	{ name, type, offsetof(struct gw_config, field), \
	  sizeof(((struct gw_config *)0)->field), def, flags }

/* Adding a key: one row here, one field in struct gw_config. */
static const struct config_key config_keys[] = {
	KEY("component_jid", component_jid, CT_DOMAIN, NULL, CK_REQUIRED),
	KEY("component_secret", component_secret, CT_STR, NULL,
	    CK_SECRET | CK_RELOAD),
	KEY("component_secret_file", component_secret_file, CT_STR, NULL,
	    CK_RELOAD),
	KEY("server_host", server_host, CT_STR, "127.0.0.1", 0),
	KEY("server_port", server_port, CT_PORT, "5347", 0),
	KEY("database", database, CT_STR, NULL, CK_REQUIRED),
	KEY("admins", admins, CT_JIDLIST, "", CK_RELOAD),
	KEY("log_level", log_level, CT_LOGLEVEL, "info", CK_RELOAD),
	KEY("barev_port", barev_port, CT_PORT, "1337", 0),
	KEY("registration", registration, CT_REGISTRATION, "admin", CK_RELOAD),
	KEY("barev_address", barev_address, CT_ADDR6, "", CK_RELOAD),
	KEY("registration_domains", registration_domains, CT_HOSTLIST, "",
	    CK_RELOAD),
	KEY("refuse_outside_yggdrasil", refuse_outside_yggdrasil, CT_BOOL,
	    "true", CK_RELOAD),
	KEY("outbox_ttl", outbox_ttl_ms, CT_DURATION, "7d", CK_RELOAD),
	KEY("max_file_size", max_file_size, CT_SIZE, "100M", CK_RELOAD),
	KEY("max_incoming_per_contact", max_incoming_per_contact, CT_COUNT, "3",
	    CK_RELOAD),
	KEY("max_incoming_total", max_incoming_total, CT_COUNT, "32", CK_RELOAD),
	KEY("spool_quota", spool_quota, CT_SIZE, "1G", CK_RELOAD),
	KEY("avatar_max_bytes", avatar_max_bytes, CT_SIZE, "65536", CK_RELOAD),
	KEY("upload_service", upload_service, CT_DOMAIN, "", CK_RELOAD),
	KEY("download_hosts", download_hosts, CT_PREFIXLIST, "", CK_RELOAD),
	KEY("ca_file", ca_file, CT_STR, "", CK_RELOAD),
	KEY("http_listen", http_listen, CT_LISTEN, "", 0),
	KEY("http_public_url", http_public_url, CT_URL, "", CK_RELOAD),
	KEY("served_files_ttl", served_files_ttl_ms, CT_DURATION, "7d", CK_RELOAD),
	/* "" = DATABASE.spool: see config_derive() */
	KEY("spool_dir", spool_dir, CT_STR, "", 0),
	KEY("status_socket", status_socket, CT_STR, "", 0),	/* status.h */
	KEY("max_concurrent_dials", max_concurrent_dials, CT_COUNT, "64", 0),
	KEY("server_restart_hold", server_restart_hold_ms, CT_DURATION, "120s",
	    CK_RELOAD | CK_OFF),
	KEY("metrics_path", metrics_path, CT_STR, "", 0),	/* metrics.h */
	/* test-only: integration tests shorten Barev timers with these */
	KEY("barev_ping_idle", barev_ping_idle_ms, CT_DURATION, "60s", 0),
	KEY("barev_ping_timeout", barev_ping_timeout_ms, CT_DURATION, "10s", 0),
	KEY("barev_header_timeout", barev_header_timeout_ms, CT_DURATION,
	    "15s", 0),
	KEY("barev_silent_initiator", barev_silent_initiator_ms, CT_DURATION,
	    "2s", 0),
	KEY("barev_backoff_min", barev_backoff_min_ms, CT_DURATION, "1s", 0),
	KEY("barev_backoff_max", barev_backoff_max_ms, CT_DURATION, "300s", 0),
};
#define NKEYS (sizeof config_keys / sizeof config_keys[0])

/* where a raw value came from, for error messages */
struct config_origin {
	int line;		/* > 0: file line; 0: environment; -1: default */
};

void
config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
config_key_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(config_keys[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

/* true/yes/1/on or false/no/0/off, any case; -1 neither */
static int
config_bool(const char *raw, int *out)
{
	if (strcasecmp(raw, "true") == 0 || strcasecmp(raw, "yes") == 0 ||
	    strcmp(raw, "1") == 0 || strcasecmp(raw, "on") == 0)
		*out = 1;
	else if (strcasecmp(raw, "false") == 0 ||
	    strcasecmp(raw, "no") == 0 || strcmp(raw, "0") == 0 ||
	    strcasecmp(raw, "off") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* The string keys: checked by their kind, stored as a copy. */
static int
config_convert_str(const struct config_key *k, void *field, const char *raw,
    char *why, size_t whylen)
{
	unsigned char a6[16];
	char canon[INET6_ADDRSTRLEN], *s;

	if (k->type == CT_DOMAIN && *raw != '\0' &&
	    !config_domain_ok(raw)) {
		config_err(why, whylen, "\"%s\" is not a domain JID "
		    "(e.g. barev.example.org)", raw);
		return -1;
	}
	if (k->type == CT_URL && *raw != '\0' &&
	    ((strncmp(raw, "http://", 7) != 0 &&
	    strncmp(raw, "https://", 8) != 0) ||
	    strpbrk(raw, " \t\"<>") != NULL)) {
		config_err(why, whylen, "\"%s\" is not an http:// or "
		    "https:// URL", raw);
		return -1;
	}
	if (k->type == CT_LISTEN && *raw != '\0' &&
	    !config_listen_ok(raw)) {
		config_err(why, whylen, "\"%s\" is not HOST:PORT or "
		    "[IPV6]:PORT", raw);
		return -1;
	}
	if (k->type == CT_ADDR6 && *raw != '\0') {
		if (inet_pton(AF_INET6, raw, a6) != 1 ||
		    inet_ntop(AF_INET6, a6, canon, sizeof canon) == NULL) {
			config_err(why, whylen, "\"%s\" is not an IPv6 "
			    "address", raw);
			return -1;
		}
		raw = canon;
	}
	if ((s = strdup(raw)) == NULL) {
		config_err(why, whylen, "out of memory");
		return -1;
	}
	if (k->type == CT_DOMAIN)
		config_lower(s);
	if (k->type == CT_URL) {
		size_t n = strlen(s);
		while (n > 0 && s[n - 1] == '/')
			s[--n] = '\0';
	}
	free(*(char **)field);
	*(char **)field = s;
	return 0;
}

/* The list keys: each item checked by the list's kind. */
static int
config_convert_list(const struct config_key *k, void *field, const char *raw,
    char *why, size_t whylen)
{
	const char *bad;
	char *badcopy = NULL;
	int rc;

	config_list_free(field);
	rc = config_list(raw, field, k->type == CT_JIDLIST ?
	    config_bare_jid_ok : k->type == CT_PREFIXLIST ?
	    config_prefix_ok : config_host_ok, &bad, &badcopy);
	if (rc == 0)
		return 0;
	if (bad == NULL) {
		config_err(why, whylen, "out of memory");
		return -1;
	}
	if (k->type == CT_JIDLIST)
		config_err(why, whylen, "\"%s\" is not a bare JID "
		    "(user@domain)", bad);
	else if (k->type == CT_PREFIXLIST)
		config_err(why, whylen, "\"%s\" is neither a host[:port]"
		    " nor an http(s)://host[:port]/path prefix", bad);
	else
		config_err(why, whylen, "\"%s\" is not a host name", bad);
	free(badcopy);
	return -1;
}

/*
 * Convert `raw` into the key's field.  On failure `why` says what is wrong
 * with the value (quoted), without the key name.
 */
static int
config_convert(const struct config_key *k, struct gw_config *c,
    const char *raw, char *why, size_t whylen)
{
	void *field = (char *)c + k->off;
	enum log_level lvl;

	switch (k->type) {
	case CT_STR:
	case CT_DOMAIN:
	case CT_URL:
	case CT_LISTEN:
	case CT_ADDR6:
		return config_convert_str(k, field, raw, why, whylen);
	case CT_PORT:
		if (config_port(raw, field) == -1) {
			config_err(why, whylen, "\"%s\" is not a port (1-65535)",
			    raw);
			return -1;
		}
		return 0;
	case CT_LOGLEVEL:
		if (log_level_parse(raw, &lvl) == -1) {
			config_err(why, whylen, "\"%s\" is not a log level "
			    "(error|warn|info|debug)", raw);
			return -1;
		}
		*(enum log_level *)field = lvl;
		return 0;
	case CT_REGISTRATION:
		if (strcasecmp(raw, "admin") == 0)
			*(enum gw_registration *)field = GW_REG_ADMIN;
		else if (strcasecmp(raw, "open") == 0)
			*(enum gw_registration *)field = GW_REG_OPEN;
		else {
			config_err(why, whylen, "\"%s\" is not admin or open",
			    raw);
			return -1;
		}
		return 0;
	case CT_BOOL:
		if (config_bool(raw, field) == -1) {
			config_err(why, whylen, "\"%s\" is not a boolean "
			    "(true/false/yes/no/1/0)", raw);
			return -1;
		}
		return 0;
	case CT_DURATION:
		if ((k->flags & CK_OFF) && (strcmp(raw, "0") == 0 ||
		    strcasecmp(raw, "off") == 0)) {
			*(uint64_t *)field = 0;
			return 0;
		}
		if (config_duration(raw, field) == -1) {
			config_err(why, whylen, "\"%s\" is not a duration > 0 "
			    "(seconds, or with ms/s/m/h/d, e.g. 30s, 7d)", raw);
			return -1;
		}
		return 0;
	case CT_SIZE:
		if (config_size(raw, field) == -1) {
			config_err(why, whylen, "\"%s\" is not a size (bytes, "
			    "or with K/M/G, e.g. 100M)", raw);
			return -1;
		}
		return 0;
	case CT_COUNT:
		if (config_count(raw, field) == -1) {
			config_err(why, whylen, "\"%s\" is not a whole number "
			    "from 1 to 1000000", raw);
			return -1;
		}
		return 0;
	case CT_JIDLIST:
	case CT_HOSTLIST:
	case CT_PREFIXLIST:
		return config_convert_list(k, field, raw, why, whylen);
	}
	config_err(why, whylen, "internal error: unknown key type");
	return -1;
}

static void
config_field_free(const struct config_key *k, struct gw_config *c)
{
	void *field = (char *)c + k->off;

	switch (k->type) {
	case CT_STR:
	case CT_DOMAIN:
	case CT_URL:
	case CT_LISTEN:
	case CT_ADDR6:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case CT_JIDLIST:
	case CT_HOSTLIST:
	case CT_PREFIXLIST:
		config_list_free(field);
		break;
	default:
		break;
	}
}

void
gw_config_free(struct gw_config *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		config_field_free(&config_keys[i], c);
		if (c->raw != NULL)
			free(c->raw[i]);
	}
	free(c->raw);
	free(c->path);
	memset(c, 0, sizeof *c);
}

/*
 * Defaults that belong to one instance, derived from its database path.
 * A fixed default directory would be shared by every gateway on the host,
 * and each empties SPOOL/tmp at start: a second instance (a shard, a test
 * server) would delete the first one's transfers in flight.  The raw text
 * stays "" so a reload diff compares what the operator wrote.
 */
static int
config_derive(struct gw_config *c)
{
	size_t n;

	if (c->spool_dir != NULL && *c->spool_dir != '\0')
		return 0;
	n = strlen(c->database) + sizeof ".spool";
	free(c->spool_dir);
	if ((c->spool_dir = malloc(n)) == NULL)
		return -1;
	snprintf(c->spool_dir, n, "%s.spool", c->database);
	return 0;
}

/* The environment wins over the file: BAREV_<KEY>; -1 out of memory. */
static int
config_from_env(struct gw_config *c, int *lines)
{
	char env[128];
	const char *ev;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		config_env_name(config_keys[i].name, env, sizeof env);
		if ((ev = getenv(env)) == NULL)
			continue;
		free(c->raw[i]);
		if ((c->raw[i] = strdup(ev)) == NULL)
			return -1;
		lines[i] = 0;
	}
	return 0;
}

/* Required keys before values: name everything that is missing. */
static int
config_check_required(struct gw_config *c, int si, int sfi, char *err,
    size_t errlen)
{
	char missing[256];
	size_t i, p;

	missing[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		const char *name = config_keys[i].name;

		if ((int)i == si) {
			if ((c->raw[si] == NULL || *c->raw[si] == '\0') &&
			    (c->raw[sfi] == NULL || *c->raw[sfi] == '\0'))
				name = "component_secret (or "
				    "component_secret_file)";
			else
				continue;
		} else if (!(config_keys[i].flags & CK_REQUIRED) ||
		    (c->raw[i] != NULL && *c->raw[i] != '\0'))
			continue;
		p = strlen(missing);
		snprintf(missing + p, sizeof missing - p, "%s%s",
		    p > 0 ? ", " : "", name);
	}
	if (missing[0] != '\0') {
		config_err(err, errlen, "missing required key%s: %s",
		    strchr(missing, ',') != NULL ? "s" : "", missing);
		return -1;
	}
	if (c->raw[si] != NULL && *c->raw[si] != '\0' &&
	    c->raw[sfi] != NULL && *c->raw[sfi] != '\0') {
		config_err(err, errlen, "component_secret and "
		    "component_secret_file are both set; keep one");
		return -1;
	}
	return 0;
}

/* Every key's text (or its default) into its field; -1 with `err` set. */
static int
config_convert_all(struct gw_config *c, const char *path, const int *lines,
    char *err, size_t errlen)
{
	char why[512], where[256 + 64];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (c->raw[i] == NULL && k->def != NULL &&
		    (c->raw[i] = strdup(k->def)) == NULL) {
			config_err(err, errlen, "out of memory");
			return -1;
		}
		if (c->raw[i] == NULL)
			continue;
		if (config_convert(k, c, c->raw[i], why, sizeof why) == -1) {
			config_where(path, lines[i], k->name, where,
			    sizeof where);
			config_err(err, errlen, "%s: %s%s", k->name, why, where);
			return -1;
		}
	}
	return 0;
}

/* component_secret_file, when set, is the secret; -1 with `err` set. */
static int
config_secret_from_file(struct gw_config *c, int si, char *err, size_t errlen)
{
	if (c->component_secret_file != NULL &&
	    *c->component_secret_file != '\0') {
		free(c->component_secret);
		c->component_secret = NULL;
		if (config_read_secret(c->component_secret_file,
		    &c->component_secret, err, errlen) == -1)
			return -1;
		/* raw text of the effective secret, for reload diffs only */
		free(c->raw[si]);
		if ((c->raw[si] = strdup(c->component_secret)) == NULL)
			goto nomem;
	}
	if (c->component_secret_file == NULL &&
	    (c->component_secret_file = strdup("")) == NULL)
		goto nomem;
	return 0;
nomem:
	config_err(err, errlen, "out of memory");
	return -1;
}

/* What only the values together tell (files, paths); -1 with `err` set. */
static int
config_check_values(const struct gw_config *c, const char *path,
    const int *lines, char *err, size_t errlen)
{
	char where[256 + 64];

	/* --test-config should catch an unreadable CA file, not the first
	 * transfer (its contents are checked when the gateway starts) */
	if (c->ca_file[0] != '\0') {
		FILE *f = fopen(c->ca_file, "re");

		if (f == NULL) {
			config_where(path, lines[config_key_find("ca_file")],
			    "ca_file", where, sizeof where);
			config_err(err, errlen, "ca_file: cannot read %s: %s%s",
			    c->ca_file, strerror(errno), where);
			return -1;
		}
		fclose(f);
	}
	/* metrics are served on http_listen, at a path of their own */
	if (c->metrics_path[0] != '\0' && (c->metrics_path[0] != '/' ||
	    strpbrk(c->metrics_path, "?# \t") != NULL)) {
		config_err(err, errlen, "metrics_path: \"%s\" is not a URL path"
		    " such as /metrics", c->metrics_path);
		return -1;
	}
	if (c->metrics_path[0] != '\0' && c->http_listen[0] == '\0') {
		config_err(err, errlen, "metrics_path is set but http_listen is"
		    " not: the metrics are served on http_listen");
		return -1;
	}
	return 0;
}

int
gw_config_load(struct gw_config *c, const char *path, char *err,
    size_t errlen)
{
	int lines[NKEYS];
	size_t i;
	int si = config_key_find("component_secret");
	int sfi = config_key_find("component_secret_file");

	memset(c, 0, sizeof *c);
	if ((c->raw = calloc(NKEYS, sizeof *c->raw)) == NULL)
		goto nomem;
	if (path != NULL && (c->path = strdup(path)) == NULL)
		goto nomem;
	for (i = 0; i < NKEYS; i++)
		lines[i] = -1;

	if (path != NULL &&
	    config_read_file(path, c->raw, lines, err, errlen) == -1)
		goto fail;
	if (config_from_env(c, lines) == -1)
		goto nomem;
	if (config_check_required(c, si, sfi, err, errlen) == -1 ||
	    config_convert_all(c, path, lines, err, errlen) == -1 ||
	    config_secret_from_file(c, si, err, errlen) == -1 ||
	    config_check_values(c, path, lines, err, errlen) == -1)
		goto fail;
	if (config_derive(c) == -1)
		goto nomem;
	return 0;

nomem:
	config_err(err, errlen, "out of memory");
fail:
	gw_config_free(c);
	return -1;
}

int
gw_config_may_register(const struct gw_config *c, const char *jid)
{
	const struct gw_strlist *l = &c->registration_domains;
	const char *at, *dom, *parent;
	size_t i, len;

	if (jid == NULL || (at = strchr(jid, '@')) == NULL)
		return 0;
	dom = at + 1;
	len = strcspn(dom, "/");
	/* config_list() keeps no empty entries */
	for (i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == len && strncasecmp(l->v[i], dom, len) == 0)
			return 1;
	if (l->n > 0 || c->component_jid == NULL)
		return 0;
	/* barev.example.org -> example.org; a one-label component: itself */
	parent = strchr(c->component_jid, '.');
	parent = parent != NULL ? parent + 1 : c->component_jid;
	return strlen(parent) == len && strncasecmp(parent, dom, len) == 0;
}

int
gw_config_is_server_domain(const struct gw_config *c, const char *domain)
{
	const struct gw_strlist *l = &c->registration_domains;
	const char *parent;
	size_t i;

	if (domain == NULL || *domain == '\0' || c->component_jid == NULL)
		return 0;
	for (i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], domain) == 0)
			return 1;
	parent = strchr(c->component_jid, '.');
	parent = parent != NULL ? parent + 1 : c->component_jid;
	return strcasecmp(parent, domain) == 0;
}

int
gw_config_is_admin(const struct gw_config *c, const char *bare_jid)
{
	size_t i, len;
	const char *slash;

	if (bare_jid == NULL)
		return 0;
	slash = strchr(bare_jid, '/');
	len = slash != NULL ? (size_t)(slash - bare_jid) : strlen(bare_jid);
	for (i = 0; i < c->admins.n; i++) {
		if (strlen(c->admins.v[i]) == len &&
		    strncasecmp(c->admins.v[i], bare_jid, len) == 0)
			return 1;
	}
	return 0;
}

static void
config_swap(const struct config_key *k, struct gw_config *a,
    struct gw_config *b)
{
	unsigned char tmp[sizeof(struct gw_strlist) > sizeof(uint64_t) ?
	    sizeof(struct gw_strlist) : sizeof(uint64_t)];

	if (k->size > sizeof tmp)
		return;		/* cannot happen: checked by the largest type */
	memcpy(tmp, (char *)a + k->off, k->size);
	memcpy((char *)a + k->off, (char *)b + k->off, k->size);
	memcpy((char *)b + k->off, tmp, k->size);
}

unsigned
gw_config_reload(struct gw_config *cur, struct gw_config *next)
{
	unsigned changed = 0;
	const char *o, *n;
	char *t;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		o = cur->raw[i] != NULL ? cur->raw[i] : "";
		n = next->raw[i] != NULL ? next->raw[i] : "";
		if (strcmp(o, n) == 0)
			continue;
		if (!(k->flags & CK_RELOAD)) {
			if (k->flags & CK_SECRET)
				log_warn("config", "%s changed but needs a "
				    "restart; keeping the old value", k->name);
			else
				log_warn("config", "%s changed (\"%s\" -> "
				    "\"%s\") but needs a restart; keeping "
				    "\"%s\"", k->name, o, n, o);
			continue;
		}
		if (k->flags & CK_SECRET)
			log_info("config", "%s changed; used from the next "
			    "connect", k->name);
		else
			log_info("config", "%s: \"%s\" -> \"%s\"", k->name, o, n);
		config_swap(k, cur, next);
		t = cur->raw[i];
		cur->raw[i] = next->raw[i];
		next->raw[i] = t;
		if (strcmp(k->name, "log_level") == 0)
			changed |= GW_CONFIG_CHANGED_LOG_LEVEL;
		else if (strcmp(k->name, "admins") == 0)
			changed |= GW_CONFIG_CHANGED_ADMINS;
		else if (k->flags & CK_SECRET)
			changed |= GW_CONFIG_CHANGED_SECRET;
		else
			changed |= GW_CONFIG_CHANGED_OTHER;
	}
	gw_config_free(next);
	return changed;
}
