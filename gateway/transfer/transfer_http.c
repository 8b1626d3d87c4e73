/*
 * transfer_http — the HTTP client of file transfers: download a user's
 * link into the spool (libevent's evhttp client), upload a spool file to
 * an XEP-0363 slot (a plain HTTP/1.1 PUT with Content-Length written here,
 * because evhttp's client cannot stream a request body).  A PUT may start
 * while its spool file is still being received: it sends what is on disk
 * and waits for xfer_http_put_avail() to say there is more.  Serving the
 * spool ourselves is transfer_serve.c.
 *
 * The one idea: bytes go from socket to file or file to socket in bounded
 * steps (evhttp's chunk callback; a write low-watermark that refills 1 MiB
 * at a time), so memory never depends on the file size.  TLS is OpenSSL
 * under the same bufferevents.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gw.h"
#include "log.h"
#include "transfer.h"
#include "transfer_int.h"

#define PUT_CHUNK	(1u << 20)	/* refill when the output drops below this */

/* shared by every request of the gateway: gw->xfer (transfer_int.h) */

struct xfer_http {
	struct gw *gw;
	xfer_http_cb cb;
	void *arg;
	int fd;
	uint64_t size, max, bytes;
	int finished;
	struct event *defer;		/* reports and frees outside libevent's callbacks */
	int ok;
	char why[192];
	/* GET */
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	/* PUT */
	struct bufferevent *bev;
	struct evbuffer_file_segment *seg;	/* plain http: sendfile() from it */
	uint64_t queued;		/* body bytes handed to the output buffer */
	uint64_t avail;			/* body bytes on disk (<= size) */
	int status;
	int tls;			/* h->bev is an OpenSSL bufferevent */
	char host[256];			/* the URL's host, for reasons */
};


void
xfer_http_shutdown(struct gw *gw)
{
	struct xfer_module *m = gw->xfer;

	if (m == NULL)
		return;
	if (m->dns) {
		evdns_base_free(m->dns, 1);
		m->dns = NULL;
	}
	if (m->keep_tls)
		return;
	if (m->ssl) {
		SSL_CTX_free(m->ssl);
		m->ssl = NULL;
	}
	free(m->ssl_ca);
	m->ssl_ca = NULL;
}

void
transfer_test_keep_tls(struct gw *gw, int keep)
{
	struct xfer_module *m = xfer_module(gw);

	if (m == NULL)
		return;
	m->keep_tls = keep;
	if (!keep)
		xfer_http_shutdown(gw);
}

/*
 * The resolver lives while HTTP clients do: made by the first, freed with
 * the last.  Its UDP socket is then no fd the daemon keeps after its files
 * (test_fault_linkcut counts them), and each new batch of transfers reads
 * the host's resolv.conf as it is now.
 */
static struct evdns_base *
dns(struct gw *gw)
{
	struct xfer_module *m = gw->xfer;

	if (m->dns == NULL)
		m->dns = evdns_base_new(gw->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	return m->dns;
}

static void
dns_release(struct gw *gw)
{
	struct xfer_module *m = gw->xfer;

	/* never inside a resolver callback: xfer_http_free runs from the
	 * owner's callbacks, which `report` calls from its own event */
	if (--m->http_live == 0 && m->dns) {
		evdns_base_free(m->dns, 1);
		m->dns = NULL;
	}
}

/*
 * The client TLS context: the system's CAs (OpenSSL's default paths, so
 * SSL_CERT_FILE / SSL_CERT_DIR work too) plus ca_file, for an upload
 * service whose certificate comes from a private CA (the demo's, a
 * company's).  Built at start so a bad ca_file stops the gateway with its
 * reason instead of failing every transfer later; rebuilt when a SIGHUP
 * changed ca_file (connections in flight keep the old one: each SSL holds
 * a reference to its context).
 */
int
xfer_http_tls_init(struct gw *gw)
{
	const char *ca = gw->cfg.ca_file ? gw->cfg.ca_file : "";
	struct xfer_module *m = xfer_module(gw);
	SSL_CTX *ctx;
	char *copy, buf[160];

	if (m == NULL)
		return -1;
	if (m->ssl != NULL && m->ssl_ca != NULL && strcmp(m->ssl_ca, ca) == 0)
		return 0;
	if ((copy = strdup(ca)) == NULL || (ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		free(copy);
		log_error("transfer", "cannot create the TLS context");
		return -1;
	}
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		log_warn("transfer", "cannot load the system's CA certificates");
	if (ca[0] != '\0') {
		ERR_clear_error();
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
			log_error("transfer", "ca_file: cannot load CA certificates "
			    "from %s: %s", ca, buf);
			SSL_CTX_free(ctx);
			free(copy);
			return -1;
		}
		log_info("transfer", "HTTPS trusts the system's CAs and %s", ca);
	} else if (m->ssl != NULL)
		log_info("transfer", "HTTPS trusts the system's CAs only");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (m->ssl != NULL)
		SSL_CTX_free(m->ssl);
	free(m->ssl_ca);
	m->ssl = ctx;
	m->ssl_ca = copy;
	return 0;
}

/* A client TLS bufferevent for `host`, certificate verified: the name (or
 * an IP literal, which SSL_set1_host checks against IP SANs) and SNI,
 * which RFC 6066 allows for host names only. */
static struct bufferevent *
tls_bev(struct gw *gw, const char *host)
{
	unsigned char a[16];
	SSL *ssl;
	struct bufferevent *bev;

	/* a reload may have changed ca_file; a bad new one fails this
	 * transfer with the reason logged, and is tried again next time */
	if (xfer_http_tls_init(gw) == -1)
		return NULL;
	if ((ssl = SSL_new(gw->xfer->ssl)) == NULL)
		return NULL;
	if (inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1)
		SSL_set_tlsext_host_name(ssl, host);
	if (SSL_set1_host(ssl, host) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(gw->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/*
 * Why TLS on `bev` failed, for the user's note and a WARN line: a
 * certificate the gateway does not trust is by far the commonest cause (an
 * upload service with a private CA), and "connection closed" would hide
 * it.  0 if TLS did not fail.
 */
static int
tls_why(struct bufferevent *bev, const char *host, char *why, size_t len)
{
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
	long vr;
	char buf[120];

	if (ssl == NULL)
		return 0;
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		snprintf(why, len, "the certificate of %s is not trusted (%s)", host,
		    X509_verify_cert_error_string(vr));
		log_warn("transfer", "HTTPS to %s: certificate not trusted: %s; if the "
		    "server's CA is private, set ca_file (or SSL_CERT_FILE)", host,
		    X509_verify_cert_error_string(vr));
		return 1;
	}
	if (e == 0)
		return 0;
	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(why, len, "TLS to %s failed: %s", host, buf);
	log_warn("transfer", "HTTPS to %s: %s", host, buf);
	return 1;
}

/* ---- the end of a request, always from a fresh loop iteration ---- */

static void
report(evutil_socket_t fd, short what, void *arg)
{
	struct xfer_http *h = arg;

	(void)fd;
	(void)what;
	if (h->conn) {
		evhttp_connection_free(h->conn);	/* frees a pending request too */
		h->conn = NULL;
		h->req = NULL;
	}
	if (h->bev) {
		bufferevent_free(h->bev);
		h->bev = NULL;
	}
	h->cb(h->arg, h->ok, h->ok ? NULL : h->why);	/* may free h */
}

static void
finish(struct xfer_http *h, int ok, const char *why)
{
	if (h->finished)
		return;
	h->finished = 1;
	h->ok = ok;
	if (!ok && h->why[0] == '\0')
		snprintf(h->why, sizeof(h->why), "%s", why ? why : "HTTP failed");
	if (h->bev)
		bufferevent_disable(h->bev, EV_READ | EV_WRITE);
	event_active(h->defer, EV_TIMEOUT, 0);
}

static struct xfer_http *
xh_new(struct gw *gw, int fd, xfer_http_cb cb, void *arg)
{
	struct xfer_http *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->gw = gw;
	h->fd = fd;
	h->cb = cb;
	h->arg = arg;
	if ((h->defer = evtimer_new(gw->base, report, h)) == NULL) {
		free(h);
		return NULL;
	}
	gw->xfer->http_live++;
	return h;
}

void
xfer_http_free(struct xfer_http *h)
{
	if (h == NULL)
		return;
	if (h->conn)
		evhttp_connection_free(h->conn);
	if (h->bev)
		bufferevent_free(h->bev);
	if (h->seg)
		evbuffer_file_segment_free(h->seg);
	event_free(h->defer);
	dns_release(h->gw);
	free(h);
}

uint64_t xfer_http_bytes(const struct xfer_http *h) { return h->bytes; }

/* ---- GET ---- */

static int
get_headers(struct evhttp_request *req, void *arg)
{
	struct xfer_http *h = arg;
	int code = evhttp_request_get_response_code(req);
	const char *cl = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Length");

	if (code < 200 || code > 299) {
		snprintf(h->why, sizeof(h->why), "the server answered HTTP %d %s", code,
		    evhttp_request_get_response_code_line(req) ?
		    evhttp_request_get_response_code_line(req) : "");
		return -1;
	}
	if (cl && strtoull(cl, NULL, 10) > h->max) {
		snprintf(h->why, sizeof(h->why), "the file is larger than the gateway's"
		    " limit of %llu bytes", (unsigned long long)h->max);
		return -1;
	}
	return 0;
}

static void
get_chunk(struct evhttp_request *req, void *arg)
{
	struct xfer_http *h = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);

	if (h->finished) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (h->bytes + evbuffer_get_length(in) > h->max) {
		evbuffer_drain(in, evbuffer_get_length(in));
		snprintf(h->why, sizeof(h->why), "the file is larger than the gateway's"
		    " limit of %llu bytes", (unsigned long long)h->max);
		finish(h, 0, NULL);
		return;
	}
	while (evbuffer_get_length(in) > 0) {
		int n = evbuffer_write(in, h->fd);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (errno == ENOSPC || errno == EDQUOT)
				snprintf(h->why, sizeof(h->why),
				    "the gateway's disk is full");
			else
				snprintf(h->why, sizeof(h->why),
				    "cannot write the spool file: %s", strerror(errno));
			evbuffer_drain(in, evbuffer_get_length(in));
			finish(h, 0, NULL);
			return;
		}
		h->bytes += (uint64_t)n;
	}
}

static void
get_error(enum evhttp_request_error err, void *arg)
{
	struct xfer_http *h = arg;
	static const char *const what[] = {
		[EVREQ_HTTP_TIMEOUT] = "the download timed out",
		[EVREQ_HTTP_EOF] = "the server closed the connection early",
		[EVREQ_HTTP_INVALID_HEADER] = "the server sent an invalid HTTP header",
		[EVREQ_HTTP_BUFFER_ERROR] = "the download connection failed",
		[EVREQ_HTTP_REQUEST_CANCEL] = "the download was cancelled",
		[EVREQ_HTTP_DATA_TOO_LONG] = "the file is larger than the gateway's limit",
	};

	if (h->why[0] == '\0' && h->conn != NULL &&
	    tls_why(evhttp_connection_get_bufferevent(h->conn), h->host, h->why,
	    sizeof(h->why)))
		return;
	if (h->why[0] == '\0' && (unsigned)err < sizeof(what) / sizeof(what[0]) && what[err])
		snprintf(h->why, sizeof(h->why), "%s", what[err]);
}

static void
get_done(struct evhttp_request *req, void *arg)
{
	struct xfer_http *h = arg;

	h->req = NULL;		/* evhttp frees it after this callback */
	if (req == NULL || evhttp_request_get_response_code(req) / 100 != 2) {
		if (h->why[0] == '\0')
			snprintf(h->why, sizeof(h->why), "the download failed");
		finish(h, 0, NULL);
		return;
	}
	finish(h, 1, NULL);
}

struct xfer_http *
xfer_http_get(struct gw *gw, const char *url, int fd, uint64_t max,
    xfer_http_cb cb, void *arg)
{
	struct xfer_http *h;
	struct xfer_url u;
	struct bufferevent *bev = NULL;
	struct evkeyvalq *hd;
	char hostport[300];

	if (xfer_url_parse(url, &u) == -1 || (h = xh_new(gw, fd, cb, arg)) == NULL)
		return NULL;
	h->max = max;
	snprintf(h->host, sizeof(h->host), "%s", u.host);
	if (u.tls && (bev = tls_bev(gw, u.host)) == NULL)
		goto fail;
	h->conn = evhttp_connection_base_bufferevent_new(gw->base, dns(gw), bev,
	    u.host, (unsigned short)u.port);
	if (h->conn == NULL)
		goto fail;
	evhttp_connection_set_timeout(h->conn, XFER_HTTP_TIMEOUT_S);
	evhttp_connection_set_max_body_size(h->conn, (ev_ssize_t)(max > INT64_MAX ? INT64_MAX : max));
	if ((h->req = evhttp_request_new(get_done, h)) == NULL)
		goto fail;
	evhttp_request_set_header_cb(h->req, get_headers);
	evhttp_request_set_chunked_cb(h->req, get_chunk);
	evhttp_request_set_error_cb(h->req, get_error);
	hd = evhttp_request_get_output_headers(h->req);
	snprintf(hostport, sizeof(hostport), strchr(u.host, ':') ? "[%s]:%d" : "%s:%d",
	    u.host, u.port);
	evhttp_add_header(hd, "Host", hostport);
	evhttp_add_header(hd, "User-Agent", "barev-gateway/" BAREV_VERSION);
	evhttp_add_header(hd, "Connection", "close");
	if (evhttp_make_request(h->conn, h->req, EVHTTP_REQ_GET, u.path) == -1) {
		h->req = NULL;	/* freed by evhttp on failure */
		goto fail;
	}
	return h;
fail:
	if (h->conn == NULL && bev)
		bufferevent_free(bev);
	if (h->req && h->conn == NULL)
		evhttp_request_free(h->req);
	xfer_http_free(h);
	return NULL;
}

/* ---- PUT ---- */

/* Keep about PUT_CHUNK bytes of the file in the output buffer, never
 * beyond what is on disk (a window past EOF would end the connection). */
static int
put_fill(struct xfer_http *h)
{
	struct evbuffer *out = bufferevent_get_output(h->bev);

	while (h->seg && h->queued < h->avail && evbuffer_get_length(out) < PUT_CHUNK) {
		uint64_t left = h->avail - h->queued;
		size_t n = left < PUT_CHUNK ? (size_t)left : PUT_CHUNK;

		/* a window on the file: the kernel copies it (sendfile) */
		if (evbuffer_add_file_segment(out, h->seg, (ev_off_t)h->queued, (ev_off_t)n) == -1)
			return -1;
		h->queued += n;
	}
	while (h->queued < h->avail && evbuffer_get_length(out) < PUT_CHUNK) {
		struct evbuffer_iovec v;
		uint64_t left = h->avail - h->queued;
		size_t want = left < PUT_CHUNK ? (size_t)left : PUT_CHUNK;
		ssize_t n;

		if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1)
			return -1;
		if (v.iov_len > want)
			v.iov_len = want;
		n = pread(h->fd, v.iov_base, v.iov_len, (off_t)h->queued);
		if (n <= 0) {
			snprintf(h->why, sizeof(h->why), "cannot read the spool file: %s",
			    n == 0 ? "shorter than expected" : strerror(errno));
			return -1;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(out, &v, 1);
		h->queued += (uint64_t)n;
	}
	/* the output still holds the request head at first */
	h->bytes = evbuffer_get_length(out) >= h->queued ? 0 :
	    h->queued - evbuffer_get_length(out);
	return 0;
}

static void
put_write(struct bufferevent *bev, void *arg)
{
	struct xfer_http *h = arg;
	struct timeval tv = { XFER_HTTP_TIMEOUT_S, 0 };

	(void)bev;
	if (h->finished)
		return;
	if (put_fill(h) == -1) {
		finish(h, 0, NULL);
		return;
	}
	if (h->queued == h->size && evbuffer_get_length(bufferevent_get_output(h->bev)) == 0)
		bufferevent_set_timeouts(h->bev, &tv, &tv);	/* now the answer */
}

void
xfer_http_put_avail(struct xfer_http *h, uint64_t avail)
{
	if (h == NULL || h->bev == NULL || h->finished || avail <= h->avail)
		return;
	h->avail = avail < h->size ? avail : h->size;
	/* the output may be full: put_write takes the rest when it drains */
	if (evbuffer_get_length(bufferevent_get_output(h->bev)) > PUT_CHUNK / 2)
		return;
	if (put_fill(h) == -1)
		finish(h, 0, NULL);
}

static void
put_read(struct bufferevent *bev, void *arg)
{
	struct xfer_http *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char line[128];
	size_t n;

	if (h->finished)
		return;
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > 16384)
			finish(h, 0, "the upload server sent an oversized answer");
		return;
	}
	n = evbuffer_copyout(in, line, sizeof(line) - 1);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (sscanf(line, "HTTP/%*d.%*d %d", &h->status) != 1) {
		finish(h, 0, "the upload server sent something other than HTTP");
		return;
	}
	if (h->status / 100 != 2) {
		snprintf(h->why, sizeof(h->why), "the upload server answered %s", line);
		finish(h, 0, NULL);
		return;
	}
	if (h->queued < h->size) {
		finish(h, 0, "the upload server answered before the whole file was sent");
		return;
	}
	h->bytes = h->size;
	finish(h, 1, NULL);
}

static void
put_event(struct bufferevent *bev, short what, void *arg)
{
	struct xfer_http *h = arg;
	unsigned long e;

	(void)bev;
	if (h->finished || (what & BEV_EVENT_CONNECTED))
		return;
	if (what & BEV_EVENT_TIMEOUT) {
		finish(h, 0, "the upload timed out");
		return;
	}
	if (tls_why(h->tls ? h->bev : NULL, h->host, h->why, sizeof(h->why))) {
		/* named above */
	} else if ((e = bufferevent_get_openssl_error(h->bev)) != 0) {
		char buf[120];

		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(h->why, sizeof(h->why), "TLS to the upload server failed: %s", buf);
	} else if (what & BEV_EVENT_ERROR) {
		int dnserr = bufferevent_socket_get_dns_error(h->bev);

		snprintf(h->why, sizeof(h->why), "cannot reach the upload server: %s",
		    dnserr ? evutil_gai_strerror(dnserr) : strerror(EVUTIL_SOCKET_ERROR()));
	}
	finish(h, 0, "the upload server closed the connection");
}

static int
header_ok(const char *s)
{
	return s && *s && strpbrk(s, "\r\n") == NULL;
}

struct xfer_http *
xfer_http_put_growing(struct gw *gw, const char *url, const char *const *hdrs,
    const char *content_type, int fd, uint64_t size, uint64_t avail,
    xfer_http_cb cb, void *arg)
{
	struct xfer_http *h;
	struct xfer_url u;
	struct evbuffer *out;
	struct timeval wtv = { XFER_HTTP_TIMEOUT_S, 0 };

	if (xfer_url_parse(url, &u) == -1 || (h = xh_new(gw, fd, cb, arg)) == NULL)
		return NULL;
	h->size = size;
	h->avail = avail < size ? avail : size;
	snprintf(h->host, sizeof(h->host), "%s", u.host);
	if (u.tls) {
		h->tls = 1;
		h->bev = tls_bev(gw, u.host);
	} else {
		h->bev = bufferevent_socket_new(gw->base, -1, BEV_OPT_CLOSE_ON_FREE);
		/* no mmap: pages of a big file would count as our memory */
		if (size > 0)
			h->seg = evbuffer_file_segment_new(fd, 0, (ev_off_t)size,
			    EVBUF_FS_DISABLE_MMAP);
	}
	if (h->bev == NULL)
		goto fail;
	out = bufferevent_get_output(h->bev);
	evbuffer_add_printf(out, "PUT %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n"
	    "User-Agent: barev-gateway/" BAREV_VERSION "\r\n"
	    "Content-Length: %llu\r\nContent-Type: %s\r\nConnection: close\r\n",
	    u.path, strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "",
	    u.port, (unsigned long long)size,
	    header_ok(content_type) ? content_type : "application/octet-stream");
	for (size_t i = 0; hdrs && hdrs[i] && hdrs[i + 1]; i += 2) {
		if (!header_ok(hdrs[i]) || !header_ok(hdrs[i + 1]))
			goto fail;
		evbuffer_add_printf(out, "%s: %s\r\n", hdrs[i], hdrs[i + 1]);
	}
	evbuffer_add(out, "\r\n", 2);
	bufferevent_setcb(h->bev, put_read, put_write, put_event, h);
	bufferevent_setwatermark(h->bev, EV_WRITE, PUT_CHUNK / 2, 0);
	/* libevent writes 16 KiB per writable event by default */
	bufferevent_set_max_single_write(h->bev, PUT_CHUNK);
	/* no read timeout while we send: the server is silent until the end;
	 * the write timeout only runs while there is something to write, so
	 * waiting for a growing file is bounded by its receiver, not here */
	bufferevent_set_timeouts(h->bev, NULL, &wtv);
	if (put_fill(h) == -1 ||
	    bufferevent_enable(h->bev, EV_READ | EV_WRITE) == -1 ||
	    bufferevent_socket_connect_hostname(h->bev, dns(gw), AF_UNSPEC, u.host,
	    u.port) == -1)
		goto fail;
	return h;
fail:
	xfer_http_free(h);
	return NULL;
}
