/*
 * fuzz_addr — the text a user or a peer chooses that names someone:
 * Barev addresses as typed (nick@ADDR, nick@[ADDR]:PORT), IPv6 forms,
 * nicks, contact JIDs on the component (XEP-0106 escaped localparts), the
 * JIDs in a peer's stream header, and the URLs of file links and upload
 * slots (http(s) host extraction).  Every input is tried as each of them.
 *
 * Oracles: what parses formats back to itself (address -> text -> address,
 * escape -> unescape, contact -> localpart -> contact), canonical forms
 * are fixed points, and outputs stay NUL-terminated inside their buffers.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "barevlink.h"
#include "config.h"
#include "transfer.h"
#include "../../barevlink/internal.h"

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); abort(); } while (0)

static void
try_baddr(const char *s)
{
	struct gw_baddr a, b;
	char err[256], txt[256], local[512], jid[1024];

	if (gw_baddr_parse(s, &a, err, sizeof err) == -1) {
		if (err[0] == '\0')
			FAIL("baddr refused without a reason: %s\n", s);
		return;
	}
	if (gw_nick_check(a.nick, err, sizeof err) == -1)
		FAIL("parsed nick fails the nick check: %s\n", s);
	if (gw_baddr_format(&a, txt, sizeof txt) == -1)
		FAIL("cannot format a parsed address: %s\n", s);
	if (gw_baddr_parse(txt, &b, err, sizeof err) == -1 ||
	    strcmp(a.nick, b.nick) != 0 || strcmp(a.addr, b.addr) != 0 ||
	    a.port != b.port)
		FAIL("format/parse round trip: %s -> %s\n", s, txt);
	if (gw_baddr_to_localpart(&a, local, sizeof local) == 0) {
		if (gw_baddr_from_localpart(local, &b) == -1 ||
		    strcmp(a.addr, b.addr) != 0 || a.port != b.port ||
		    strcasecmp(a.nick, b.nick) != 0)
			FAIL("localpart round trip: %s -> %s\n", s, local);
	}
	(void)gw_baddr_to_jid(&a, "barev.example.org", jid, sizeof jid);
}

static void
try_ipv6(const char *s)
{
	char c1[GW_ADDR_TEXT], c2[GW_ADDR_TEXT], c3[GW_ADDR_TEXT];

	if (gw_addr_canon(s, c1, sizeof c1) == 0) {
		if (gw_addr_canon(c1, c2, sizeof c2) == -1 || strcmp(c1, c2) != 0)
			FAIL("canonical form is not a fixed point: %s\n", s);
		if (!gw_addr_equal(s, c1))
			FAIL("an address differs from its canonical form: %s\n", s);
		(void)gw_addr_is_yggdrasil(c1);
		if (bl_addr_canon(s, c3, sizeof c3) == -1 || strcmp(c1, c3) != 0)
			FAIL("gateway and barevlink disagree on %s\n", s);
	}
}

static void
try_escape(const char *s)
{
	char esc[2048], back[2048];
	struct gw_baddr a;

	if (gw_jid_escape(s, esc, sizeof esc) == 0) {
		if (gw_jid_unescape(esc, back, sizeof back) == -1 ||
		    strcmp(back, s) != 0)
			FAIL("XEP-0106 round trip: '%s' -> '%s' -> '%s'\n", s,
			    esc, back);
	}
	if (gw_jid_unescape(s, back, sizeof back) == 0)
		(void)gw_jid_escape(back, esc, sizeof esc);
	/* a contact JID's localpart as the server sends it */
	(void)gw_baddr_from_localpart(s, &a);
}

static void
try_peer_jid(const char *s)
{
	char local[BL_NICKMAX + 1];
	struct in6_addr a;

	(void)bl_jid_split(s, local, sizeof local, &a);
}

static void
try_url(const char *s)
{
	static char p1[] = "https://upload.example.org:5281/file_share/";
	static char p2[] = "upload.example.org";
	static char *prefixes[] = { p1, p2 };
	const struct gw_strlist allowed = { prefixes, 2 };
	struct xfer_url u;
	int r;

	if (xfer_url_parse(s, &u) == 0 &&
	    (strnlen(u.host, sizeof u.host) >= sizeof u.host ||
	    strnlen(u.path, sizeof u.path) >= sizeof u.path))
		FAIL("host or path overflows: %s\n", s);
	r = xfer_url_allowed(&allowed, "upload.example.org", s);
	if (r < -1 || r > 1)
		FAIL("xfer_url_allowed() = %d: %s\n", r, s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	char err[256];

	if (size > 4096)
		return 0;
	/* all of these arrive as C strings (XML text, form values) */
	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	try_baddr(s);
	try_ipv6(s);
	try_escape(s);
	try_peer_jid(s);
	try_url(s);
	(void)gw_nick_check(s, err, sizeof err);
	free(s);
	return 0;
}
