/*
 * transfer — files across the bridge (issue 4, DESIGN.md "Flows").
 *
 * Barev -> XMPP: SI offer from a peer -> SOCKS5 receive into the spool ->
 * XEP-0363 upload as the component (or the gateway's own HTTP listener) ->
 * a message to the user whose body is exactly the URL, plus jabber:x:oob.
 * XMPP -> Barev: a message whose OOB URL (or whole body) is an http(s) URL
 * on an allowed host -> download into the spool -> SI offer -> SOCKS5
 * serve to the peer's address only -> "delivered" or the reason, in chat.
 */
#ifndef GW_TRANSFER_H
#define GW_TRANSFER_H

#include <stdint.h>
#include <strophe.h>

struct gw;
struct evhttp;

/* what the module tells the layer above (the bridge), which registers it */
struct transfer_events {
	/* a message or error for the user from the contact's JID: sent, or
	 * held while the link is down; `st` is borrowed */
	void (*to_user)(void *arg, int64_t contact, xmpp_stanza_t *st);
};

int transfer_start(struct gw *gw, const struct transfer_events *ev, void *arg);
/* fail every transfer in flight and tell the users */
void transfer_stop(struct gw *gw);
/* the module's state goes (gw->xfer; it outlives a stop: serials stay
 * unique, and the test seam below may keep the TLS context) */
void transfer_free(struct gw *gw);

/* an iq from a peer (SI offer, bytestreams, results of our offers);
 * 1 = handled */
int transfer_peer_iq(struct gw *gw, int64_t ident, int64_t contact,
    xmpp_stanza_t *iq);
/* a message from the user to a contact; 1 = it was a file link and the
 * transfer took it over (nothing else is sent) */
int transfer_user_message(struct gw *gw, int64_t contact, xmpp_stanza_t *msg);
/* the contact's pipe went down / the contact was removed */
void transfer_pipe_down(struct gw *gw, int64_t contact);
/* a file fetched for a peer whose pipe was down is offered now */
void transfer_pipe_up(struct gw *gw, int64_t contact);
void transfer_forget_contact(struct gw *gw, int64_t contact);

/*
 * ---- inside the module: transfer_http.c and transfer_serve.c for the
 * other transfer*.c ----
 * HTTP both ways, streamed between a socket and a spool file: memory per
 * request is a bounded buffer whatever the size.  http:// and https://
 * (OpenSSL bufferevents, the peer's certificate verified against the
 * system's CAs plus ca_file, and the URL's host).
 */
struct xfer_http;
#define XFER_HTTP_TIMEOUT_S	60	/* client requests and served replies */
/* once per request: ok, or a short reason for the user; may free `h` */
typedef void (*xfer_http_cb)(void *arg, int ok, const char *why);

/* GET url into fd (at most `max` bytes; more is a failure) */
struct xfer_http *xfer_http_get(struct gw *gw, const char *url, int fd,
    uint64_t max, xfer_http_cb cb, void *arg);
/* PUT `size` bytes of fd (from offset 0) to url; hdrs = name, value,
 * name, value, ..., NULL (values with CR/LF are refused).  fd may still be
 * being written (cut-through): only the first `avail` bytes are sent until
 * xfer_http_put_avail() says more are on disk; the request announces
 * Content-Length: size from the start */
struct xfer_http *xfer_http_put_growing(struct gw *gw, const char *url,
    const char *const *hdrs, const char *content_type, int fd, uint64_t size,
    uint64_t avail, xfer_http_cb cb, void *arg);
/* the first `avail` bytes of a PUT's fd are on disk now (never less) */
void xfer_http_put_avail(struct xfer_http *h, uint64_t avail);
uint64_t xfer_http_bytes(const struct xfer_http *h);
void xfer_http_free(struct xfer_http *h);	/* cancels; no callback */
/* an http(s) URL taken apart (transfer_url.c) */
struct xfer_url {
	int tls;
	char host[256];			/* no brackets, lower-cased */
	int port;			/* the scheme's default if none given */
	char path[2048];		/* path + "?" query, never empty */
};
int xfer_url_parse(const char *url, struct xfer_url *u);
/*
 * May the gateway fetch this http(s) link?  Only if it starts with one of
 * `allowed` (download_hosts: "http(s)://host[:port][/path]" prefixes, or
 * "host[:port]" = http and https on that port, default 80/443), or, with
 * none configured, is on `upload_service`'s host on the default ports.
 * Scheme, host and port must match exactly, and a path prefix must hold
 * ("."/".." segments, even percent-encoded, never do).  1 allowed; -1 an
 * allowed host but another scheme, port or path; 0 another host.
 */
struct gw_strlist;
int xfer_url_allowed(const struct gw_strlist *allowed,
    const char *upload_service, const char *url);

/* the gateway's own file server (http_listen, transfer_serve.c):
 * GET /TOKEN/NAME serves SPOOL/served/TOKEN; started by transfer_start()
 * when there is no upload service, or by whoever else wants the listener
 * (metrics): 0 when it runs already */
int xfer_serve_start(struct gw *gw);
void xfer_serve_stop(struct gw *gw);
/* its evhttp, for other paths on the same listener; NULL: not running */
struct evhttp *xfer_serve_http(struct gw *gw);
/* the client TLS context (system CAs + ca_file); 0, or -1 logged */
int xfer_http_tls_init(struct gw *gw);
/* the HTTP client's resolver (and TLS context, unless kept), at the stop */
void xfer_http_shutdown(struct gw *gw);
/*
 * Tests only (the fuzz fixture, which starts and stops the module for
 * every input): with `keep`, transfer_stop() keeps the client TLS context
 * for the next transfer_start() — building it costs more than a whole
 * fuzz input, and it holds only the CA configuration.  keep = 0 frees it;
 * call that only while the module is stopped.
 */
void transfer_test_keep_tls(struct gw *gw, int keep);

#endif
