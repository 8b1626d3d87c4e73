/*
 * addr — parsing, canonicalising and escaping Barev addresses.
 *
 * XEP-0106 §4: the ten characters a localpart cannot hold are written \XX;
 * a backslash is itself escaped only where it would be read as the start
 * of one of those ten sequences.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

#include "addr.h"
#include "barevlink.h"
#include "xmlstream.h"

static const char jid_escapable[] = " \"&'/:<>@\\";

/*
 * barevlink's canonical text (one canonicaliser in the tree), minus what
 * is no Barev address to provision: brackets, IPv4-mapped, unspecified.
 */
int
gw_addr_canon(const char *in, char *out, size_t outlen)
{
	struct in6_addr a;

	if (in == NULL || in[0] == '[' || bl_addr_canon(in, out, outlen) == -1)
		return -1;
	if (inet_pton(AF_INET6, out, &a) != 1 ||
	    IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_UNSPECIFIED(&a)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int
gw_addr_is_yggdrasil(const char *addr)
{
	struct in6_addr a;

	if (inet_pton(AF_INET6, addr, &a) != 1)
		return 0;
	return (a.s6_addr[0] & 0xfe) == 0x02;
}

int
gw_addr_equal(const char *x, const char *y)
{
	struct in6_addr a, b;

	if (inet_pton(AF_INET6, x, &a) != 1 || inet_pton(AF_INET6, y, &b) != 1)
		return 0;
	return memcmp(&a, &b, sizeof(a)) == 0;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2 && (s[1] & 0xc0) == 0x80)
		return 2;
	if ((s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80) {
		if (s[0] == 0xe0 && s[1] < 0xa0)
			return 0;
		if (s[0] == 0xed && s[1] >= 0xa0)
			return 0;	/* surrogates */
		return 3;
	}
	if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
		if (s[0] == 0xf0 && s[1] < 0x90)
			return 0;
		if (s[0] == 0xf4 && s[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

int
gw_nick_check(const char *nick, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)nick;
	size_t len, n;

	if (nick == NULL || *nick == '\0') {
		snprintf(err, errlen, "the nick is empty");
		return -1;
	}
	if ((len = strlen(nick)) > GW_NICK_MAX) {
		snprintf(err, errlen, "the nick is %zu bytes long; at most %d are allowed",
		    len, GW_NICK_MAX);
		return -1;
	}
	while (*p) {
		if ((n = utf8_len(p)) == 0) {
			snprintf(err, errlen, "the nick is not valid UTF-8");
			return -1;
		}
		if (n == 1 && (*p <= 0x20 || *p == 0x7f ||
		    strchr("@/\\\"'<>&", *p) != NULL)) {
			snprintf(err, errlen, "the nick may not contain spaces,"
			    " control characters or any of @ / \\ \" ' < > &");
			return -1;
		}
		p += n;
	}
	return 0;
}

int
gw_baddr_parse(const char *in, struct gw_baddr *out, char *err, size_t errlen)
{
	const char *at, *host;
	char addr[128];
	size_t nicklen;
	long port = GW_DEFAULT_PORT;

	memset(out, 0, sizeof(*out));
	while (in && isspace((unsigned char)*in))
		in++;
	if (in == NULL || (at = strrchr(in, '@')) == NULL) {
		snprintf(err, errlen, "write the Barev address as nick@ADDRESS or"
		    " nick@[ADDRESS]:PORT");
		return -1;
	}
	nicklen = (size_t)(at - in);
	if (nicklen > GW_NICK_MAX) {
		snprintf(err, errlen, "the nick is %zu bytes long; at most %d are allowed",
		    nicklen, GW_NICK_MAX);
		return -1;
	}
	memcpy(out->nick, in, nicklen);
	out->nick[nicklen] = '\0';
	if (gw_nick_check(out->nick, err, errlen) == -1)
		return -1;
	host = at + 1;
	if (*host == '\0') {
		snprintf(err, errlen, "the address after @ is missing");
		return -1;
	}
	if (*host == '[') {
		const char *close = strchr(host, ']');
		char *end;

		if (close == NULL || (size_t)(close - host - 1) >= sizeof(addr)) {
			snprintf(err, errlen, "missing ] after the address");
			return -1;
		}
		memcpy(addr, host + 1, (size_t)(close - host - 1));
		addr[close - host - 1] = '\0';
		if (close[1] == ':') {
			port = strtol(close + 2, &end, 10);
			if (close[2] == '\0' || *end != '\0' || port < 1 || port > 65535) {
				snprintf(err, errlen, "the port must be a number from 1 to 65535");
				return -1;
			}
		} else if (close[1] != '\0') {
			snprintf(err, errlen, "unexpected text after ]");
			return -1;
		}
	} else {
		size_t hl = strlen(host);

		while (hl > 0 && isspace((unsigned char)host[hl - 1]))
			hl--;
		if (hl >= sizeof(addr)) {
			snprintf(err, errlen, "\"%.40s…\" is not an IPv6 address", host);
			return -1;
		}
		memcpy(addr, host, hl);
		addr[hl] = '\0';
	}
	if (gw_addr_canon(addr, out->addr, sizeof(out->addr)) == -1) {
		snprintf(err, errlen, "\"%.60s\" is not an IPv6 address", addr);
		return -1;
	}
	out->port = (uint16_t)port;
	return 0;
}

int
gw_baddr_format(const struct gw_baddr *a, char *out, size_t outlen)
{
	int n;

	if (a->port == GW_DEFAULT_PORT || a->port == 0)
		n = snprintf(out, outlen, "%s@%s", a->nick, a->addr);
	else
		n = snprintf(out, outlen, "%s@[%s]:%u", a->nick, a->addr, a->port);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Is s (at a backslash) the start of one of the ten escape sequences? */
static int
is_escape_seq(const char *s, char *decoded)
{
	int hi, lo, c;

	if (s[0] != '\\' || (hi = hexval((unsigned char)s[1])) < 0 ||
	    (lo = hexval((unsigned char)s[2])) < 0)
		return 0;
	c = hi * 16 + lo;
	if (c == 0 || strchr(jid_escapable, c) == NULL)
		return 0;
	if (decoded)
		*decoded = (char)c;
	return 1;
}

int
gw_jid_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = in; *p; p++) {
		int esc = *p != '\\' ? strchr(jid_escapable, *p) != NULL :
		    is_escape_seq(p, NULL);

		if (esc) {
			if (o + 3 >= outlen)
				return -1;
			snprintf(out + o, 4, "\\%02x", (unsigned char)*p);
			o += 3;
		} else {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = *p;
		}
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

int
gw_jid_unescape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	char c;

	for (const char *p = in; *p; p++) {
		if (is_escape_seq(p, &c))
			p += 2;
		else
			c = *p;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int
gw_baddr_to_localpart(const struct gw_baddr *a, char *out, size_t outlen)
{
	char plain[GW_NICK_MAX + GW_ADDR_TEXT + 16];

	if (gw_baddr_format(a, plain, sizeof(plain)) == -1)
		return -1;
	return gw_jid_escape(plain, out, outlen);
}

void
gw_baddr_set(struct gw_baddr *a, const char *nick, const char *addr, int port)
{
	snprintf(a->nick, sizeof(a->nick), "%s", nick);
	snprintf(a->addr, sizeof(a->addr), "%s", addr);
	a->port = (uint16_t)port;
}

int
gw_baddr_to_jid(const struct gw_baddr *a, const char *component, char *out,
    size_t outlen)
{
	char local[3 * (GW_NICK_MAX + GW_ADDR_TEXT + 16)];
	int n;

	if (gw_baddr_to_localpart(a, local, sizeof(local)) == -1)
		return -1;
	for (char *p = local; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	n = snprintf(out, outlen, "%s@%s", local, component);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int
gw_baddr_from_localpart(const char *local, struct gw_baddr *out)
{
	char plain[3 * (GW_NICK_MAX + GW_ADDR_TEXT + 16)];
	char err[128];

	if (gw_jid_unescape(local, plain, sizeof(plain)) == -1)
		return -1;
	return gw_baddr_parse(plain, out, err, sizeof(err));
}

int
gw_baddr_from_jid(const char *jid, struct gw_baddr *out)
{
	char *node = jid != NULL ? xmpp_jid_node(xs_ctx(), jid) : NULL;
	int rc;

	if (node == NULL)
		return -1;
	for (char *p = node; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	rc = gw_baddr_from_localpart(node, out);
	xmpp_free(xs_ctx(), node);
	return rc;
}

int
gw_contact_jid(const char *nick, const char *addr, int port,
    const char *component, char *out, size_t outlen)
{
	struct gw_baddr a;

	gw_baddr_set(&a, nick, addr, port);
	return gw_baddr_to_jid(&a, component, out, outlen);
}
