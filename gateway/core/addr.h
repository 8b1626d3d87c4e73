/*
 * addr — Barev addresses as users type them and as JIDs on the component.
 *
 * A Barev contact `nick@ADDR` (port 1337) or `nick@[ADDR]:PORT` becomes the
 * JID localpart XEP-0106-escaped: bob@201:abcd::1 -> bob\40201\3aabcd\3a\3a1
 * (DESIGN.md "Addresses").  Addresses are always emitted in RFC 5952 form
 * and compared numerically; nicks compare case-insensitively (BAREV.md §1).
 * Pure functions: no I/O, and no allocation but gw_baddr_from_jid's.
 */
#ifndef GW_ADDR_H
#define GW_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define GW_NICK_MAX 64		/* bytes */
#define GW_ADDR_TEXT 46		/* INET6_ADDRSTRLEN */
#define GW_DEFAULT_PORT 1337

struct gw_baddr {
	char nick[GW_NICK_MAX + 1];
	char addr[GW_ADDR_TEXT];	/* RFC 5952 */
	uint16_t port;
};

/* Canonical RFC 5952 text of an IPv6 address (any input form); 0 or -1. */
int gw_addr_canon(const char *in, char *out, size_t outlen);
/* 1 when a canonical address is in Yggdrasil's 200::/7, else 0 */
int gw_addr_is_yggdrasil(const char *addr);
/* Same address, numerically. */
int gw_addr_equal(const char *a, const char *b);

/* A nick is 1..64 bytes of printable UTF-8 without space, @ / \ " ' < > &. */
int gw_nick_check(const char *nick, char *err, size_t errlen);

/*
 * Parse what a user typed: `nick@ADDR` or `nick@[ADDR]:PORT` (mixed case,
 * uncompressed IPv6 fine).  A bare `nick@ADDR:N` is read as an address, never
 * as a port (BAREV.md §1).  On error returns -1 and a sentence in err.
 */
int gw_baddr_parse(const char *in, struct gw_baddr *out, char *err, size_t errlen);
/* `nick@addr` or `nick@[addr]:port` */
int gw_baddr_format(const struct gw_baddr *a, char *out, size_t outlen);

/* XEP-0106 escaping of a would-be localpart. -1 if it does not fit. */
int gw_jid_escape(const char *in, char *out, size_t outlen);
int gw_jid_unescape(const char *in, char *out, size_t outlen);

/* fill `a` from a stored nick, address and port */
void gw_baddr_set(struct gw_baddr *a, const char *nick, const char *addr,
    int port);

/* contact <-> localpart on the component */
int gw_baddr_to_localpart(const struct gw_baddr *a, char *out, size_t outlen);
int gw_baddr_from_localpart(const char *local, struct gw_baddr *out);
/* the same from a whole JID on the component: its node (libstrophe splits
 * it, the resource first), lower-cased like stored nicks; the one function
 * here that allocates (and frees) */
int gw_baddr_from_jid(const char *jid, struct gw_baddr *out);
/* the contact's JID on `component`: the escaped localpart, lower-cased
 * as servers nodeprep it; -1 if it does not fit */
int gw_baddr_to_jid(const struct gw_baddr *a, const char *component,
    char *out, size_t outlen);
/* the same for a stored contact's nick, address and port */
int gw_contact_jid(const char *nick, const char *addr, int port,
    const char *component, char *out, size_t outlen);

#endif
