/*
 * barevlink internals — shared by the files of this module only; the module's
 * interface is barevlink.h.  Everything here is prefixed bl_ and lives in the
 * file named in its comment.
 *
 * Ownership: struct bl owns identities, contacts, listeners and pipes.  A
 * contact points at most at one dial in flight (outbound, not yet up) and at
 * most one up pipe (BAREV.md §2: one pipe per pair).  Inbound connections
 * that have not identified their peer yet belong to their listener only.
 */
#ifndef BL_INTERNAL_H
#define BL_INTERNAL_H

#include <sys/queue.h>
#include <netinet/in.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "barevlink.h"

#ifndef TAILQ_FOREACH_SAFE	/* glibc's queue.h lacks it */
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define BL_ADDRSTRLEN	46	/* INET6_ADDRSTRLEN */
#define BL_DEFAULT_PORT	1337
#define BL_NICKMAX	255	/* bytes of a nick we store */
/* inbound connections still in the header phase per source address: more
 * from one allowlisted address are refused before a read (flood bound) */
#define BL_MAX_PENDING_PER_ADDR 8
/* bytes a pipe may hold that the kernel has not taken (the peer's window is
 * full): past it sends are refused (the gateway keeps the message in its
 * outbox), and a pipe that then writes nothing for the keepalive's whole
 * patience (ping_timeout x ping_misses) is dropped */
#define BL_MAX_UNSENT	(1024 * 1024)

struct bl_pipe;
struct bl_listener;

struct bl_ident {
	int64_t			 id;
	char			*nick;
	struct in6_addr		 addr;
	char			 addrtxt[BL_ADDRSTRLEN];	/* RFC 5952 */
	uint16_t		 port;
	struct bl_listener	*listener;
	/* our presence, owned copies (BAREV.md §3) */
	int			 available;
	char			*show;
	char			*status;
	char			*photo;
	TAILQ_HEAD(, bl_contact) contacts;
	TAILQ_ENTRY(bl_ident)	 entry;	/* in listener->idents */
	/* dialsched.c: contacts waiting for a dial slot, and our place in
	 * bl->dial_ring while there are any */
	TAILQ_HEAD(, bl_contact) ready;
	TAILQ_ENTRY(bl_ident)	 ring_entry;
	int			 in_ring;
};

/* Kept small: a gateway holds one per provisioned contact, most of them
 * idle (issue 13).  Strings are sized to their text, the redial timer is
 * made by the first dial. */
struct bl_contact {
	int64_t			 id;
	struct bl_ident		*ident;
	char			*nick;	/* one block: nick, then addrtxt */
	char			*addrtxt;	/* RFC 5952, in nick's block */
	struct in6_addr		 addr;
	uint16_t		 port;
	int			 want;
	struct bl_pipe		*pipe;	/* up */
	struct bl_pipe		*dial;	/* our dial in flight */
	unsigned		 backoff;	/* next redial's upper bound, ms */
	struct event		*redial;	/* NULL until the first dial */
	TAILQ_ENTRY(bl_contact)	 entry;	/* in ident->contacts */
	TAILQ_ENTRY(bl_contact)	 ready_entry;	/* in ident->ready */
	int			 ready;		/* waiting for a dial slot */
};

struct bl_listener {
	struct bl		*bl;
	struct in6_addr		 addr;
	char			 addrtxt[BL_ADDRSTRLEN];
	uint16_t		 port;
	struct evconnlistener	*evl;	/* NULL when bind failed */
	char			 err[128];
	struct event		*retry;	/* next bind attempt after a failure */
	unsigned		 retry_ms;
	TAILQ_HEAD(, bl_ident)	 idents;
	TAILQ_ENTRY(bl_listener) entry;
};

/* one allowlisted source address; refcounted by contacts */
struct bl_allow {
	struct in6_addr		 addr;
	unsigned		 refs;
	unsigned		 pending;	/* inbound in header phase */
};

enum bl_pstate {
	BL_P_CONNECT,		/* our dial: waiting for connect() */
	BL_P_HANDSHAKE,		/* stream headers being exchanged */
	BL_P_UP,
	BL_P_CLOSING,		/* killed; waiting for the reaper */
	BL_P_LINGER,		/* flushing </stream:stream> before the close */
};

struct bl_ping {
	uint64_t		 seq;
	uint64_t		 cookie;
	uint64_t		 deadline;	/* monotonic ms */
	TAILQ_ENTRY(bl_ping)	 entry;
};

struct bl_token {
	uint64_t		 token;
	uint64_t		 end;	/* p->queued once this unit is out */
	TAILQ_ENTRY(bl_token)	 entry;
};

/*
 * One TCP connection speaking Barev.  Freed only by the reaper (an event of
 * its own), never inside a callback chain, so a pointer to a pipe stays
 * valid for the whole of any callback even when the gateway closes it.
 */
struct bl_pipe {
	struct bl		*bl;
	struct bl_listener	*listener;	/* inbound only */
	struct bl_ident		*ident;		/* known at once when we dial */
	struct bl_contact	*contact;
	struct xs_conn		*conn;
	int			 fd;		/* while connecting */
	struct event		*connev;	/* while connecting */
	struct in6_addr		 src;		/* the peer's address */
	struct event		 timer;		/* dial / silent / ping */
	struct event		*pollev;	/* while the pipe is full */
	const char		*drain_why;	/* logged when the drain ends */
	uint8_t			 state;		/* enum bl_pstate */
	uint8_t			 outbound;
	uint8_t			 hdr_sent;
	uint8_t			 pending_counted;
	uint8_t			 orderly;
	uint8_t			 in_reap;
	uint8_t			 misses;
	uint8_t			 was_up;
	uint8_t			 draining;	/* said goodbye, still reading */
	uint8_t			 bye_ours;	/* ... because our user went offline */
	uint8_t			 conn_failed;	/* closed by an error, not an end */
	uint8_t			 dial_slot;	/* holds one of cfg.max_dials */
	uint64_t		 ka_seq;	/* keepalive ping in flight, 0 = none */
	uint64_t		 ka_sent;	/* ms */
	uint64_t		 last_rx;	/* ms */
	uint64_t		 queued;	/* bytes handed to xs_conn */
	uint8_t			 full;		/* BL_MAX_UNSENT reached: sends refused */
	uint8_t			 full_logged;
	uint64_t		 stall_written;	/* bytes written when last seen moving */
	uint64_t		 stall_since;	/* ms: when that was */
	TAILQ_HEAD(, bl_ping)	 pings;
	TAILQ_HEAD(, bl_token)	 tokens;
	TAILQ_ENTRY(bl_pipe)	 entry;		/* bl->pipes */
	TAILQ_ENTRY(bl_pipe)	 reap_entry;	/* bl->reap */
};

TAILQ_HEAD(bl_pipeq, bl_pipe);

struct bl {
	struct event_base	*base;
	struct bl_config	 cfg;	/* defaults filled in */
	struct bl_events	 ev;
	void			*arg;
	void			*idents;	/* tsearch trees */
	void			*contacts;
	void			*allow;
	TAILQ_HEAD(, bl_listener) listeners;
	struct bl_pipeq		 pipes;		/* every live pipe */
	TAILQ_HEAD(, bl_pipe)	 reap;		/* closed, to free outside callbacks */
	struct event		 reaper;
	uint64_t		 ping_seq;
	struct evbuffer		*scratch;	/* formatting, emptied after use */
	int			 shutting_down;
	unsigned long long	 rejected_unknown;
	unsigned long long	 rejected_policy;
	unsigned long long	 accepted;	/* inbound pipes ever made */
	/* dialsched.c */
	TAILQ_HEAD(, bl_ident)	 dial_ring;	/* identities with ready contacts */
	unsigned		 dials_inflight;	/* slots taken */
	unsigned		 dials_peak;
	unsigned		 dials_waiting;		/* contacts ready */
	unsigned		 wanted;		/* contacts with want set */
	unsigned long long	 dials_started;
	struct event		 dialpump;
};

/* addr.c */
int	 bl_addr_parse(const char *in, struct in6_addr *out);
int	 bl_addr_cmp(const struct in6_addr *a, const struct in6_addr *b);
void	 bl_addr_text(const struct in6_addr *a, char *out);
int	 bl_jid_split(const char *jid, char *local, size_t locallen,
	    struct in6_addr *addr);

/* format.c: exact wire bytes (BAREV.md §2-5); -1 on allocation failure */
struct evbuffer;
int	 bl_fmt_header(struct evbuffer *out, const char *nick,
	    const char *addr, const char *peernick, const char *peeraddr);
int	 bl_fmt_presence(struct evbuffer *out, const struct bl_presence *p);
int	 bl_fmt_message(struct evbuffer *out, const char *to, const char *from,
	    const char *body);
int	 bl_fmt_chatstate(struct evbuffer *out, const char *to,
	    const char *from, const char *state);
int	 bl_fmt_ping(struct evbuffer *out, const char *id, const char *from,
	    const char *to);
int	 bl_fmt_ping_result(struct evbuffer *out, const char *id,
	    const char *from, const char *to);
int	 bl_fmt_jid(char *out, size_t len, const char *nick, const char *addr);

/* dial.c */
void	 bl_dial_schedule(struct bl_contact *c, int now);
void	 bl_dial_start(struct bl_contact *c);
void	 bl_redial_cancel(struct bl_contact *c);
int	 bl_redial_pending(const struct bl_contact *c);
void	 bl_redial_free(struct bl_contact *c);

/* dialsched.c */
void	 bl_dialq_init(struct bl *bl);
void	 bl_dialq_ready(struct bl_contact *c);
void	 bl_dialq_cancel(struct bl_contact *c);
void	 bl_dial_slot_take(struct bl_pipe *p);
void	 bl_dial_slot_release(struct bl_pipe *p);

/* listener.c */
struct bl_listener *bl_listener_get(struct bl *bl, const struct in6_addr *a,
	    uint16_t port);
void	 bl_listener_put(struct bl_listener *l);
void	 bl_listeners_free(struct bl *bl);

/* identity.c */
struct bl_ident *bl_ident_find(struct bl *bl, int64_t id);
struct bl_contact *bl_contact_find(struct bl *bl, int64_t id);
struct bl_allow *bl_allow_find(struct bl *bl, const struct in6_addr *a);
void	 bl_ident_presence(const struct bl_ident *id, struct bl_presence *p);

/* pipe.c */
enum bl_close { BL_CLOSE_ABORT, BL_CLOSE_ORDERLY };

/*
 * How long a stopping gateway keeps reading a pipe after its goodbye
 * (unavailable + </stream:stream>): what the peer wrote before it saw the
 * goodbye is still read and handed on, so a graceful stop loses nothing
 * that reached us.  purple answers at once; pascal never does.
 */
#define BL_DRAIN_MS	1500
struct bl_pipe *bl_pipe_inbound(struct bl_listener *l, int fd,
	    const struct in6_addr *src);
struct bl_pipe *bl_pipe_outbound(struct bl_contact *c, int fd);
void	 bl_pipe_connected(struct bl_pipe *p);
void	 bl_pipe_kill(struct bl_pipe *p, const char *why, enum bl_close how);
int	 bl_pipe_drain(struct bl_pipe *p, const char *why);
void	 bl_pipe_free(struct bl_pipe *p);
void	 bl_pipe_reap(struct bl *bl);
int	 bl_pipe_send_buf(struct bl_pipe *p, struct evbuffer *buf,
	    uint64_t token);
int	 bl_pipe_send_ctl(struct bl_pipe *p, struct evbuffer *buf);
int	 bl_pipe_send_presence(struct bl_pipe *p);
int	 bl_pipe_ping(struct bl_pipe *p, uint64_t cookie);
void	 bl_timer_in(struct event *ev, uint64_t ms);
int	 bl_pipe_conn(struct bl_pipe *p, int fd);

/* pipe_header.c: the header phase, up to the pipe being up */
void	 bl_pipe_on_header(void *arg, xmpp_stanza_t *hdr);
/* an inbound peer that connected and says nothing: our header first */
void	 bl_pipe_silent_initiator(struct bl_pipe *p);
void	 bl_pipe_pending_uncount(struct bl_pipe *p);

/* pipe_send.c: the units of an up pipe, flow control, `sent` */
void	 bl_pipe_on_written(void *arg);
/* `sent` for every unit that ends at or before byte `written` */
void	 bl_pipe_tokens_sent(struct bl_pipe *p, uint64_t written);

/* ping.c */
int	 bl_ping_iq(struct bl_pipe *p, xmpp_stanza_t *st);
void	 bl_ping_arm(struct bl_pipe *p);
void	 bl_ping_tick(struct bl_pipe *p);
int	 bl_jid_me(const struct bl_pipe *p, char *out, size_t len);
int	 bl_jid_peer(const struct bl_pipe *p, char *out, size_t len);
#define BL_JIDLEN	(BL_NICKMAX + 1 + BL_ADDRSTRLEN)

#endif
