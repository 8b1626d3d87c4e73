/*
 * transfer_serve — the gateway's own file server (http_listen), for when
 * there is no XEP-0363 upload service: GET or HEAD [PREFIX]/TOKEN/NAME
 * answers with SPOOL/served/TOKEN, whose 128-bit random name is the only
 * key; the NAME is for the user's eyes.  The same evhttp also answers
 * other paths (admin/metrics.c adds /metrics through xfer_serve_http()).
 *
 * The one idea: a reply is sent in SERVE_CHUNK steps, each read when the
 * previous one is written, so memory never depends on the file size.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw.h"
#include "log.h"
#include "transfer.h"
#include "transfer_int.h"

#define SERVE_CHUNK	(256u * 1024)

struct xh_serve {
	struct evhttp_request *req;
	int fd;
	uint64_t off, size;
};

static void serve_more(struct evhttp_connection *conn, void *arg);

static void
serve_end(struct xh_serve *sv)
{
	close(sv->fd);
	free(sv);
}

static void
serve_closed(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	serve_end(arg);		/* the client went away mid-file */
}

static void
serve_more(struct evhttp_connection *conn, void *arg)
{
	struct xh_serve *sv = arg;
	struct evbuffer *b;
	struct evbuffer_iovec v;
	ssize_t n;

	if (sv->off >= sv->size) {
		evhttp_connection_set_closecb(conn, NULL, NULL);
		evhttp_send_reply_end(sv->req);
		serve_end(sv);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		return;
	n = -1;
	if (evbuffer_reserve_space(b, SERVE_CHUNK, &v, 1) == 1) {
		if (v.iov_len > SERVE_CHUNK)
			v.iov_len = SERVE_CHUNK;
		if (v.iov_len > sv->size - sv->off)
			v.iov_len = (size_t)(sv->size - sv->off);
		n = pread(sv->fd, v.iov_base, v.iov_len, (off_t)sv->off);
		if (n > 0) {
			v.iov_len = (size_t)n;
			evbuffer_commit_space(b, &v, 1);
			sv->off += (uint64_t)n;
		}
	}
	if (n <= 0)
		sv->off = sv->size;	/* truncated on disk: end what we can */
	evhttp_send_reply_chunk_with_cb(sv->req, b, serve_more, sv);
	evbuffer_free(b);
}

static int
token_ok(const char *t, size_t n)
{
	if (n != 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)t[i]))
			return 0;
	return 1;
}

/* length of the path of `url` without its trailing '/' ("" and "/" -> 0) */
static size_t
url_path_prefix(const char *url)
{
	const char *p = strstr(url, "://"), *slash;
	size_t n;

	if (p == NULL || (slash = strchr(p + 3, '/')) == NULL)
		return 0;
	n = strlen(slash);
	while (n > 0 && slash[n - 1] == '/')
		n--;
	return n;
}

static void
serve_request(struct evhttp_request *req, void *arg)
{
	struct gw *gw = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	const char *slash;
	char file[4096], len[32];
	struct xh_serve *sv;
	struct stat st;
	size_t prefix;
	int fd;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, NULL);
		return;
	}
	/* [PREFIX]/TOKEN/NAME: PREFIX is http_public_url's path (a proxy may
	 * or may not strip it); the name is only for the user's eyes */
	if (path && (prefix = url_path_prefix(gw->cfg.http_public_url)) > 0 &&
	    strncmp(path, strstr(gw->cfg.http_public_url, "://") ?
	    strchr(strstr(gw->cfg.http_public_url, "://") + 3, '/') : "", prefix) == 0)
		path += prefix;
	if (path == NULL || path[0] != '/' || (slash = strchr(path + 1, '/')) == NULL ||
	    !token_ok(path + 1, (size_t)(slash - path - 1))) {
		evhttp_send_error(req, 404, NULL);
		return;
	}
	snprintf(file, sizeof(file), "%s/served/%.32s", gw->cfg.spool_dir, path + 1);
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &st) == -1) {
		if (fd != -1)
			close(fd);
		evhttp_send_error(req, 404, NULL);
		return;
	}
	snprintf(len, sizeof(len), "%lld", (long long)st.st_size);
	evhttp_add_header(oh, "Content-Type", "application/octet-stream");
	evhttp_add_header(oh, "Content-Length", len);
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ||
	    (sv = calloc(1, sizeof(*sv))) == NULL) {
		close(fd);
		evhttp_send_reply(req, 200, "OK", NULL);
		return;
	}
	sv->req = req;
	sv->fd = fd;
	sv->size = (uint64_t)st.st_size;
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), serve_closed, sv);
	serve_more(evhttp_request_get_connection(req), sv);
}

static int
listen_on(const char *host, unsigned port)
{
	struct addrinfo hints = { 0 }, *ai;
	char ps[8];
	int fd, one = 1;

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd != -1) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 64) == -1) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

int
xfer_serve_start(struct gw *gw)
{
	const char *l = gw->cfg.http_listen;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	struct evhttp *srv;
	unsigned port;
	int fd = -1;

	if (l == NULL || *l == '\0')
		return 0;
	if (l[0] == '[') {
		const char *rb = strchr(l, ']');

		if (rb == NULL || rb[1] != ':' || (size_t)(rb - l - 1) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - l - 1), l + 1);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(l, ':')) == NULL || (size_t)(colon - l) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - l), l);
	}
	if (sscanf(colon + 1, "%u", &port) != 1 || port == 0 || port > 65535)
		goto bad;
	if (xfer_module(gw) == NULL)
		return -1;
	if (gw->xfer->server != NULL)
		return 0;
	if ((srv = evhttp_new(gw->base)) == NULL)
		return -1;
	evhttp_set_allowed_methods(srv, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(srv, serve_request, gw);
	evhttp_set_timeout(srv, XFER_HTTP_TIMEOUT_S);
	/* our own socket: evhttp_bind_socket() resolves with AI_ADDRCONFIG,
	 * which refuses loopback-only hosts and namespaces */
	if ((fd = listen_on(host, port)) == -1 || evhttp_accept_socket(srv, fd) == -1) {
		log_error("transfer", "http_listen: cannot listen on %s: %s", l, strerror(errno));
		if (fd != -1)
			close(fd);
		evhttp_free(srv);
		return -1;
	}
	log_info("transfer", "serving files on %s as %s", l, gw->cfg.http_public_url);
	gw->xfer->server = srv;
	return 0;
bad:
	log_error("transfer", "http_listen: %s is not ADDR:PORT or [ADDR6]:PORT", l);
	return -1;
}

void
xfer_serve_stop(struct gw *gw)
{
	if (gw->xfer != NULL && gw->xfer->server != NULL) {
		evhttp_free(gw->xfer->server);
		gw->xfer->server = NULL;
	}
}

struct evhttp *
xfer_serve_http(struct gw *gw)
{
	return gw->xfer != NULL ? gw->xfer->server : NULL;
}
