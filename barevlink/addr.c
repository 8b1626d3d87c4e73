/*
 * addr — Barev addresses: parse any IPv6 text form, compare numerically,
 * print RFC 5952 (BAREV.md §1).
 *
 * purple writes compressed lower-case text and pascal upper-case zero-padded
 * groups (`0201:ABCD::00A1`); both name the same peer, so nothing here ever
 * compares address *text*.  inet_pton accepts both forms and inet_ntop emits
 * the RFC 5952 one.
 */
#include <arpa/inet.h>
#include <string.h>

#include "internal.h"

/* any IPv6 text form, optionally in brackets; no zone ids */
int
bl_addr_parse(const char *in, struct in6_addr *out)
{
	char	 buf[BL_ADDRSTRLEN + 2];
	size_t	 n;

	if (in == NULL)
		return (-1);
	n = strlen(in);
	if (n >= 2 && in[0] == '[' && in[n - 1] == ']') {
		in++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return (-1);
	memcpy(buf, in, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET6, buf, out) != 1)
		return (-1);
	return (0);
}

int
bl_addr_cmp(const struct in6_addr *a, const struct in6_addr *b)
{
	return (memcmp(a, b, sizeof(*a)));
}

/* out has BL_ADDRSTRLEN bytes */
void
bl_addr_text(const struct in6_addr *a, char *out)
{
	if (inet_ntop(AF_INET6, a, out, BL_ADDRSTRLEN) == NULL)
		out[0] = '\0';
}

int
bl_addr_canon(const char *in, char *out, size_t outlen)
{
	struct in6_addr	 a;
	char		 buf[BL_ADDRSTRLEN];

	if (bl_addr_parse(in, &a) == -1)
		return (-1);
	bl_addr_text(&a, buf);
	if (strlen(buf) >= outlen)
		return (-1);
	strcpy(out, buf);
	return (0);
}

/*
 * Split a header's `from`/`to` ("nick@ADDR", "nick@[ADDR]:PORT") into its
 * localpart and numeric address.  Returns 0, 1 when the localpart is fine
 * but the domain is not an IPv6 address (addr is then zero), -1 when there
 * is no usable localpart.
 */
int
bl_jid_split(const char *jid, char *local, size_t locallen,
    struct in6_addr *addr)
{
	const char	*at, *dom, *end;
	char		 buf[BL_ADDRSTRLEN + 2];
	size_t		 n;

	memset(addr, 0, sizeof(*addr));
	if (jid == NULL || (at = strchr(jid, '@')) == NULL)
		return (-1);
	n = at - jid;
	if (n == 0 || n >= locallen)
		return (-1);
	memcpy(local, jid, n);
	local[n] = '\0';

	dom = at + 1;
	/* a resource is not part of Barev, but be tolerant of one */
	end = strchr(dom, '/');
	n = end != NULL ? (size_t)(end - dom) : strlen(dom);
	if (n > 0 && dom[0] == '[') {
		/* "[addr]" or "[addr]:port": keep the bracketed part */
		end = memchr(dom, ']', n);
		if (end == NULL)
			return (1);
		dom++;
		n = end - dom;
	}
	if (n == 0 || n >= sizeof(buf))
		return (1);
	memcpy(buf, dom, n);
	buf[n] = '\0';
	if (bl_addr_parse(buf, addr) == -1)
		return (1);
	return (0);
}
