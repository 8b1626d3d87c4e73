/*
 * transfer_url — what a file link is (scheme, host, port, path) and whether
 * the gateway may fetch it (download_hosts, issue 15).  Split from
 * transfer_http.c so the policy can be read, and tested, on its own: the
 * fetch uses the same parse, so the host and port checked are the ones
 * connected to.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "config.h"
#include "transfer.h"

int
xfer_url_parse(const char *url, struct xfer_url *u)
{
	struct evhttp_uri *uri = evhttp_uri_parse(url);
	const char *scheme, *host, *path, *q;
	size_t hl;
	int rc = -1;

	if (uri == NULL)
		return -1;
	scheme = evhttp_uri_get_scheme(uri);
	host = evhttp_uri_get_host(uri);
	path = evhttp_uri_get_path(uri);
	q = evhttp_uri_get_query(uri);
	if (scheme == NULL || host == NULL || *host == '\0')
		goto out;
	if (strcasecmp(scheme, "https") == 0)
		u->tls = 1;
	else if (strcasecmp(scheme, "http") == 0)
		u->tls = 0;
	else
		goto out;
	hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
		snprintf(u->host, sizeof(u->host), "%.*s", (int)(hl - 2), host + 1);
	else
		snprintf(u->host, sizeof(u->host), "%s", host);
	for (char *p = u->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	u->port = evhttp_uri_get_port(uri);
	if (u->port <= 0)
		u->port = u->tls ? 443 : 80;
	if ((size_t)snprintf(u->path, sizeof(u->path), "%s%s%s",
	    path && *path ? path : "/", q ? "?" : "", q ? q : "") >= sizeof(u->path))
		goto out;
	rc = 0;
out:
	evhttp_uri_free(uri);
	return rc;
}

/* No "." or ".." segment, raw or percent-encoded: a path prefix must hold. */
static int
path_plain(const char *path)
{
	char *dec, *seg, *end;
	size_t n = strcspn(path, "?#");
	int ok = 1;

	if ((dec = strndup(path, n)) == NULL)
		return 0;
	seg = evhttp_uridecode(dec, 0, NULL);
	free(dec);
	if (seg == NULL)
		return 0;
	dec = seg;
	for (; ok && *seg; seg = *end ? end + 1 : end) {
		end = seg + strcspn(seg, "/\\");
		if ((end - seg == 1 && seg[0] == '.') ||
		    (end - seg == 2 && seg[0] == '.' && seg[1] == '.'))
			ok = 0;
	}
	free(dec);
	return ok;
}

/*
 * One allowed link prefix (download_hosts, issue 15): "http(s)://host[:port]
 * [/path]" pins scheme, host, port and a path prefix; a bare "host[:port]"
 * allows http and https on that port, or on their default ports (80, 443)
 * without one.  Never a host on any port: an admin or metrics service on
 * the upload host must not be fetchable.
 * 2: the link is under it; 1: same host, but not under it; 0: other host.
 */
static int
prefix_match(const char *entry, const struct xfer_url *u)
{
	struct xfer_url e;
	char buf[2048];
	const char *hostport, *close;
	int any_scheme, explicit_port;

	any_scheme = strncasecmp(entry, "http://", 7) != 0 &&
	    strncasecmp(entry, "https://", 8) != 0;
	if ((size_t)snprintf(buf, sizeof(buf), "%s%s", any_scheme ? "http://" : "",
	    entry) >= sizeof(buf) || xfer_url_parse(buf, &e) == -1)
		return 0;
	if (strcmp(e.host, u->host) != 0)
		return 0;
	/* xfer_url_parse fills in the scheme's port: was one written? */
	hostport = strstr(buf, "://") + 3;
	close = hostport[0] == '[' ? strchr(hostport, ']') : hostport;
	explicit_port = close != NULL &&
	    close[strcspn(close, ":/")] == ':';
	if (!any_scheme && e.tls != u->tls)
		return 1;
	if (explicit_port ? e.port != u->port : u->port != (u->tls ? 443 : 80))
		return 1;
	/* the config is lower-cased: paths compare without case (the port is
	 * what keeps other services out; the path narrows it further) */
	if (strncasecmp(u->path, e.path, strlen(e.path)) != 0 || !path_plain(u->path))
		return 1;
	return 2;
}

int
xfer_url_allowed(const struct gw_strlist *allowed, const char *upload_service,
    const char *url)
{
	struct xfer_url u;
	int best = 0, m;

	if (xfer_url_parse(url, &u) == -1)
		return 0;
	for (size_t i = 0; i < allowed->n; i++) {
		if (allowed->v[i] == NULL || allowed->v[i][0] == '\0')
			continue;
		if ((m = prefix_match(allowed->v[i], &u)) == 2)
			return 1;
		best = m > best ? m : best;
	}
	/* default: the upload service's own host, on the default ports */
	if (allowed->n == 0 && upload_service != NULL && upload_service[0] != '\0') {
		if ((m = prefix_match(upload_service, &u)) == 2)
			return 1;
		best = m > best ? m : best;
	}
	return best == 1 ? -1 : 0;
}
