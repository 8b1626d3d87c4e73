/*
 * transfer_limits — the rules in transfer_limits.h, with no I/O.
 *
 * The one idea: a limit is a decision on numbers and addresses handed in,
 * so each rule is tested alone and transfer_in.c only gathers and obeys.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "transfer_limits.h"

enum xl_verdict
xl_admit(const struct xl_limits *lim, const struct xl_load *load, uint64_t size)
{
	uint64_t left;

	if (load->contact_n >= lim->per_contact)
		return XL_PER_CONTACT;
	if (load->total_n >= lim->total)
		return XL_TOTAL;
	/* subtract step by step: the sum of untrusted sizes must not wrap */
	if (load->served > lim->quota)
		return XL_QUOTA;
	left = lim->quota - load->served;
	if (load->reserved > left)
		return XL_QUOTA;
	left -= load->reserved;
	return size > left ? XL_QUOTA : XL_OK;
}

int
xl_note_due(struct xl_notes *n, int64_t contact, int reason, int64_t now_ms,
    int64_t interval_ms)
{
	size_t slot = 0;

	for (size_t i = 0; i < XL_NOTE_SLOTS; i++) {
		if (n->v[i].contact == contact && n->v[i].reason == reason) {
			if (now_ms - n->v[i].at_ms < interval_ms)
				return 0;
			n->v[i].at_ms = now_ms;
			return 1;
		}
		/* a free slot, else the one told longest ago */
		if (n->v[slot].contact != 0 &&
		    (n->v[i].contact == 0 || n->v[i].at_ms < n->v[slot].at_ms))
			slot = i;
	}
	n->v[slot].contact = contact;
	n->v[slot].reason = reason;
	n->v[slot].at_ms = now_ms;
	return 1;
}

/* Addresses no Barev peer can have: connecting there reaches this machine
 * or something that is not a peer. */
static int
special(const struct in6_addr *a)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
	    IN6_IS_ADDR_MULTICAST(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
	    memcmp(a->s6_addr, mapped, sizeof(mapped)) == 0;
}

static int
same(const struct in6_addr *a, const char *text)
{
	struct in6_addr b;

	return text && inet_pton(AF_INET6, text, &b) == 1 && memcmp(a, &b, sizeof(b)) == 0;
}

enum xl_sh
xl_streamhost(const char *host, const char *port, const char *peer_addr,
    const char *const *own, size_t nown, uint16_t *port_out)
{
	struct in6_addr a;
	unsigned long p = 0;

	if (host == NULL || port == NULL || inet_pton(AF_INET6, host, &a) != 1)
		return XL_SH_BAD;
	if (*port == '\0' || strlen(port) > 5)
		return XL_SH_BAD;
	for (const char *c = port; *c; c++) {
		if (!isdigit((unsigned char)*c))
			return XL_SH_BAD;
		p = p * 10 + (unsigned long)(*c - '0');
	}
	if (p == 0 || p > 65535)
		return XL_SH_BAD;
	if (special(&a))
		return XL_SH_SPECIAL;
	for (size_t i = 0; i < nown; i++)
		if (same(&a, own[i]))
			return XL_SH_OWN;
	if (!same(&a, peer_addr))
		return XL_SH_ELSEWHERE;
	*port_out = (uint16_t)p;
	return XL_SH_OK;
}

const char *
xl_streamhost_why(enum xl_sh v)
{
	switch (v) {
	case XL_SH_OK:
		return "usable";
	case XL_SH_BAD:
		return "not an IPv6 address and port";
	case XL_SH_SPECIAL:
		return "a loopback or special address";
	case XL_SH_OWN:
		return "one of the gateway's own addresses";
	case XL_SH_ELSEWHERE:
		return "not the contact's own address";
	}
	return "refused";
}
