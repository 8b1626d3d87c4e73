/*
 * socks5_int.h — what the files of the SOCKS5 data plane share, and only
 * they: socks5.c (one connection's state, its socket, timer and events),
 * socks5_recv.c (the receiver, XEP-0065 target) and socks5_send.c (the
 * sender, streamhost).  The interface is socks5.h.
 */
#ifndef BL_SOCKS5_INT_H
#define BL_SOCKS5_INT_H

#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "socks5.h"

#define S5_BUF		(256 * 1024)	/* receiver's one buffer, if it copies */
#define S5_SEND_SLICE	(4u << 20)	/* bytes per writable event, for fairness */
#define S5_DRAIN_POLL_MS 50

enum s5_state {
	/* receiver */
	R_START, R_CONNECT, R_GREET, R_REQUEST, R_REPLY_REST, R_DATA,
	/* sender */
	S_LISTEN, S_GREET, S_METHODS, S_REQUEST, S_REQUEST_REST, S_DATA, S_DRAIN,
	S5_DONE,
};

struct s5 {
	struct event_base *base;
	int sender;
	enum s5_state state;
	int fd;				/* the data connection */
	int lfd;			/* sender's listener */
	struct event *ev;		/* on fd or lfd */
	struct event *tmr;
	struct s5_events cb;
	void *arg;
	int file;
	uint64_t size, bytes;
	unsigned refused;
	char dst[41];
	/* receiver */
	char src[INET6_ADDRSTRLEN];
	struct s5_host *hosts;
	size_t nhosts, cur;
	void (*progress)(void *arg, uint64_t bytes);
	unsigned connect_ms, idle_ms;
	char *buf;
	int pipe[2];			/* socket -> pipe -> file, or -1 */
	/* sender */
	struct in6_addr peer;
	unsigned accept_ms, drain_ms;
	unsigned drain_left_ms;
	/* handshake: bytes to write, bytes to read exactly */
	unsigned char out[64];
	size_t out_len, out_off;
	unsigned char in[300];
	size_t need, have;
};

/* ---- socks5.c: the connection ---- */
struct s5 *s5_new(struct event_base *base, const struct s5_events *ev, void *arg);
/* (re)arm the fd event; timeout_ms 0 = none */
int s5_watch(struct s5 *s, int fd, short what, unsigned timeout_ms);
void s5_timer(struct s5 *s, unsigned ms);
void s5_close_conn(struct s5 *s);
void s5_close_listener(struct s5 *s);
/* the end: release the sockets, then tell the owner (who may free us) */
void s5_finish(struct s5 *s, int ok, const char *why);
/* write what is left of s->out; 1 all written, 0 wait, -1 error */
int s5_flush_out(struct s5 *s);
/* read exactly up to s->need bytes into s->in; 1 complete, 0 wait, -1 EOF/error */
int s5_fill_in(struct s5 *s);
void s5_expect_bytes(struct s5 *s, size_t n);
void s5_queue_out(struct s5 *s, const void *p, size_t n);
/* a request (code 1, CONNECT) or reply (code 0) for DST.ADDR, port 0 */
void s5_queue_dst(struct s5 *s, unsigned char code);
void s5_nonblock_nodelay(int fd);
/* bytes still to read after the 5-byte head of a SOCKS5 request/reply */
int s5_addr_rest(const unsigned char *head);

/* ---- socks5_recv.c: the receiver ---- */
void s5_recv_event(struct s5 *s, short what);
void s5_recv_try_host(struct s5 *s);
void s5_recv_next_host(struct s5 *s, const char *why);
void s5_recv_pipe_close(struct s5 *s);

/* ---- socks5_send.c: the sender ---- */
void s5_send_event(struct s5 *s, short what);
void s5_send_drain_tick(struct s5 *s);

#endif
