/*
 * What a user types as a Barev address, and the JID it becomes.
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"

static int failed;

#define CHECK(cond) do { if (!(cond)) { failed++; \
	fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } } while (0)

static void
parses_to(const char *in, const char *nick, const char *addr, int port)
{
	struct gw_baddr a;
	char err[200];

	if (gw_baddr_parse(in, &a, err, sizeof(err)) != 0) {
		fprintf(stderr, "parse(%s) failed: %s\n", in, err);
		failed++;
		return;
	}
	CHECK(strcmp(a.nick, nick) == 0);
	CHECK(strcmp(a.addr, addr) == 0);
	CHECK(a.port == port);
}

static void
refused(const char *in, const char *errpart)
{
	struct gw_baddr a;
	char err[200] = "";

	if (gw_baddr_parse(in, &a, err, sizeof(err)) == 0) {
		fprintf(stderr, "parse(%s) accepted, should not\n", in);
		failed++;
	} else if (strstr(err, errpart) == NULL) {
		fprintf(stderr, "parse(%.40s): error \"%s\" lacks \"%s\"\n", in, err, errpart);
		failed++;
	}
}

int
main(void)
{
	char buf[512], nick2000[2100];
	struct gw_baddr a;

	parses_to("bob@201:abcd::1", "bob", "201:abcd::1", 1337);
	parses_to("Bob@0201:ABCD:0000:0000:0000:0000:0000:0001", "Bob", "201:abcd::1", 1337);
	parses_to("bob@[201:abcd::1]:1338", "bob", "201:abcd::1", 1338);
	parses_to("  bob@201:1::1  ", "bob", "201:1::1", 1337);
	/* never guess a port out of nick@ADDR:N (BAREV.md §1): it is an address */
	parses_to("bob@201:1::1:99", "bob", "201:1::1:99", 1337);

	refused("bob@", "missing");
	refused("bob@not-an-ip", "not an IPv6 address");
	refused("bob@201:1::1:99999", "not an IPv6 address");
	refused("@201:1::1", "nick is empty");
	refused("bob", "nick@ADDRESS");
	refused("bob@[201:1::1]:0", "port");
	refused("bob@[201:1::1]:70000", "port");
	refused("b ob@201:1::1", "spaces");
	refused("bob@::ffff:1.2.3.4", "not an IPv6 address");
	memset(nick2000, 'n', 2000);
	strcpy(nick2000 + 2000, "@201:1::1");
	refused(nick2000, "at most 64");

	CHECK(gw_addr_is_yggdrasil("201:1::1"));
	CHECK(gw_addr_is_yggdrasil("3ff:1::1"));
	CHECK(!gw_addr_is_yggdrasil("400::1"));
	CHECK(!gw_addr_is_yggdrasil("fe80::1"));
	CHECK(gw_addr_equal("0200:0001::0001", "200:1::1"));

	/* DESIGN.md's example */
	CHECK(gw_baddr_parse("bob@201:abcd::1", &a, buf, sizeof(buf)) == 0);
	CHECK(gw_baddr_to_localpart(&a, buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "bob\\40201\\3aabcd\\3a\\3a1") == 0);
	CHECK(gw_baddr_from_localpart("bob\\40201\\3aabcd\\3a\\3a1", &a) == 0);
	CHECK(strcmp(a.nick, "bob") == 0 && strcmp(a.addr, "201:abcd::1") == 0);
	/* servers lower-case localparts; upper-case hex escapes come back too */
	CHECK(gw_baddr_from_localpart("bob\\40201\\3AABCD\\3A\\3A1", &a) == 0);
	CHECK(strcmp(a.addr, "201:abcd::1") == 0);

	CHECK(gw_baddr_parse("bob@[201:abcd::1]:1338", &a, buf, sizeof(buf)) == 0);
	CHECK(gw_baddr_to_localpart(&a, buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "bob\\40[201\\3aabcd\\3a\\3a1]\\3a1338") == 0);
	CHECK(gw_baddr_from_localpart(buf, &a) == 0 && a.port == 1338);

	/* XEP-0106: a backslash is escaped only before an escape sequence */
	CHECK(gw_jid_escape("a\\b", buf, sizeof(buf)) == 0 && strcmp(buf, "a\\b") == 0);
	CHECK(gw_jid_escape("a\\40b", buf, sizeof(buf)) == 0 && strcmp(buf, "a\\5c40b") == 0);
	CHECK(gw_jid_unescape("a\\5c40b", buf, sizeof(buf)) == 0 && strcmp(buf, "a\\40b") == 0);
	CHECK(gw_jid_escape("x y'z", buf, sizeof(buf)) == 0 && strcmp(buf, "x\\20y\\27z") == 0);
	CHECK(gw_jid_escape("abcdef", buf, 4) == -1);

	CHECK(gw_nick_check("Ünïcødé", buf, sizeof(buf)) == 0);
	CHECK(gw_nick_check("\xff\xfe", buf, sizeof(buf)) == -1);

	if (failed)
		fprintf(stderr, "%d checks failed\n", failed);
	else
		printf("test_addr: all checks passed\n");
	return failed != 0;
}
