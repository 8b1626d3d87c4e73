/*
 * transfer_limits — what a Barev peer's file offers may make the gateway
 * do with its disk and its connections (issue 15, items 2 and 3).
 *
 * Pure decisions, no I/O: transfer_in.c gathers the numbers and addresses,
 * these say yes or why not, so the rules are unit-tested on their own.
 *  - An incoming offer is accepted only while the contact and the gateway
 *    have fewer incoming transfers than their caps and the spool quota
 *    holds the offered size on top of every accepted offer's size (a
 *    reservation, whether its bytes arrived yet or not) and the files the
 *    gateway serves.
 *  - A streamhost is used only on the offering peer's own address, never a
 *    local, special or gateway-own address (the data connection leaves
 *    from an identity's address, past the firewall's view).
 *  - The user hears about refused offers, but a flood of offers is one note
 *    per contact and reason per interval, not one per offer.
 */
#ifndef GW_TRANSFER_LIMITS_H
#define GW_TRANSFER_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct xl_limits {
	unsigned per_contact;	/* incoming transfers at once from one contact */
	unsigned total;		/* incoming transfers at once, every contact */
	uint64_t quota;		/* spool bytes: reservations + served files */
};

/* the gateway now, without the offer being judged */
struct xl_load {
	unsigned contact_n;	/* incoming transfers of the offering contact */
	unsigned total_n;	/* incoming transfers of every contact */
	uint64_t reserved;	/* bytes held for transfers in flight */
	uint64_t served;	/* bytes of the files the gateway serves */
};

enum xl_verdict {
	XL_OK,
	XL_PER_CONTACT,		/* the contact has per_contact transfers running */
	XL_TOTAL,		/* the gateway has total transfers running */
	XL_QUOTA,		/* size does not fit in what the quota leaves */
};

enum xl_verdict xl_admit(const struct xl_limits *lim, const struct xl_load *load,
    uint64_t size);

/* Refusal notes: at most one per contact and reason per interval. */
#define XL_NOTE_SLOTS	32
struct xl_notes {
	struct {
		int64_t contact;	/* 0 = free slot */
		int reason;		/* e.g. an enum xl_verdict */
		int64_t at_ms;
	} v[XL_NOTE_SLOTS];
};

/* 1 = tell the user now (remembered from now_ms); 0 = the contact's last
 * note for this reason is younger than interval_ms.  More than
 * XL_NOTE_SLOTS pairs: the oldest is forgotten (told again next time). */
int xl_note_due(struct xl_notes *n, int64_t contact, int reason, int64_t now_ms,
    int64_t interval_ms);

enum xl_sh {
	XL_SH_OK,
	XL_SH_BAD,		/* not a numeric IPv6 address or port 1-65535 */
	XL_SH_SPECIAL,		/* loopback, unspecified, multicast, IPv4-mapped */
	XL_SH_OWN,		/* one of the gateway's own (identity) addresses */
	XL_SH_ELSEWHERE,	/* an address other than the offering peer's */
};

/*
 * May the gateway connect to this streamhost of `peer_addr`'s offer?
 * `own` lists the gateway's identity addresses (any textual IPv6 form).
 * On XL_SH_OK *port is the port.
 */
enum xl_sh xl_streamhost(const char *host, const char *port, const char *peer_addr,
    const char *const *own, size_t nown, uint16_t *port_out);
/* a short phrase for logs and users: "not the contact's own address" */
const char *xl_streamhost_why(enum xl_sh v);

#endif
