/*
 * socks5 — the Barev file data plane (BAREV.md §6.3–6.6): one file, one TCP
 * connection, XEP-0065-style SOCKS5 greeting, then raw bytes whose count is
 * the only completion signal.
 *
 * Receiving: connect to the offered streamhosts in order (source bound to
 * our identity's address), do the client half of SOCKS5 reading every reply
 * exactly, then write exactly `size` bytes to a file descriptor (telling
 * the caller as they land, for a reader that follows the file).
 * Sending: listen on the first free port of a range, take the data
 * connection only from the peer's address (anything else is closed before a
 * byte is read), do the server half, stream `size` bytes from a file with
 * sendfile(), shutdown(SHUT_WR) and wait (bounded) until the peer has
 * acknowledged every byte or closed.
 *
 * Knows nothing of XMPP or SQLite: the caller negotiates the transfer and
 * passes addresses, the SOCKS5 destination (hex SHA1), sizes and fds.
 * Memory per transfer is one fixed buffer, whatever the file size.
 */
#ifndef BAREVLINK_SOCKS5_H
#define BAREVLINK_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct s5;

#define S5_PORT_MIN 50000	/* BAREV.md §6.3 */
#define S5_PORT_MAX 50049

struct s5_events {
	/*
	 * Receiver: the SOCKS5 handshake with hosts[i] succeeded (time to send
	 * streamhost-used).  Sender: the peer's data connection finished its
	 * handshake and bytes start to flow.  Optional.
	 */
	void (*connected)(void *arg, size_t host_index);
	/*
	 * Once, at the end: ok=1 when every byte was written (receiver: to the
	 * fd; sender: acknowledged by or read by the peer), else ok=0 and `why`
	 * is a short phrase for users and logs.  The callback may s5_free().
	 */
	void (*done)(void *arg, int ok, const char *why);
};

struct s5_host {
	const char *host;	/* numeric IPv6 (or IPv4) address */
	uint16_t port;
};

struct s5_recv_params {
	const char *src_addr;		/* bind the source to this (NULL: any) */
	const struct s5_host *hosts;	/* tried in order */
	size_t nhosts;
	const char *dst;		/* SOCKS5 DST.ADDR: 40 hex chars */
	uint64_t size;			/* exactly this many bytes */
	int fd;				/* written from its current offset; not closed */
	unsigned connect_timeout_ms;	/* [10000] per host, connect + handshake */
	unsigned idle_timeout_ms;	/* [30000] no byte for this long -> fail */
	/* optional: `bytes` are in the fd so far (after every write, before
	 * the `done` of a complete transfer), for a reader that follows the
	 * file as it grows; called with the events' arg, must not s5_free() */
	void (*progress)(void *arg, uint64_t bytes);
};

struct s5_send_params {
	const char *bind_addr;		/* listen here (our identity's address) */
	uint16_t port_min, port_max;	/* [S5_PORT_MIN..S5_PORT_MAX] */
	const char *peer_addr;		/* the only address allowed to connect */
	const char *dst;		/* what we answer in the reply (40 hex) */
	int fd;				/* read from offset 0; not closed */
	uint64_t size;
	unsigned accept_timeout_ms;	/* [60000] no data connection -> fail */
	unsigned idle_timeout_ms;	/* [30000] no progress -> fail */
	unsigned drain_timeout_ms;	/* [30000] after the last byte, for the ack */
};

/* NULL with a log line when nothing could be started */
struct s5 *s5_recv_start(struct event_base *base, const struct s5_recv_params *p,
    const struct s5_events *ev, void *arg);
/* *port is the port we listen on (for the streamhost offer) */
struct s5 *s5_send_start(struct event_base *base, const struct s5_send_params *p,
    const struct s5_events *ev, void *arg, uint16_t *port);
/* bytes written to the fd (receiver) or to the socket (sender) so far */
uint64_t s5_bytes(const struct s5 *s);
/* data connections closed because they came from another address */
unsigned s5_refused(const struct s5 *s);
/* closes every fd it opened; no more events */
void s5_free(struct s5 *s);

/* hex SHA1(sid + initiator + target), the SOCKS5 DST.ADDR (XEP-0065 §5.3.2);
 * out has room for 41 bytes */
void s5_dst_addr(const char *sid, const char *initiator, const char *target,
    char out[41]);

#endif
