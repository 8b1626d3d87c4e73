/*
 * test_config — the configuration file as an operator meets it: a good file
 * loads with its defaults, every mistake is reported with the key's name
 * (and the line), the environment overrides the file, the secret can come
 * from a file, and SIGHUP's diff applies only what is safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

extern char **environ;

static int failures;
static char tmpdir[256];

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		failures++;						\
	}								\
} while (0)

static const char *
write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF) {
		perror(path);
		exit(2);
	}
	fclose(f);
	return path;
}

#define BASE \
	"component_jid = barev.example.org\n" \
	"component_secret = s3cret\n" \
	"database = /tmp/gw.sqlite\n"

/* load `text`, expect failure, and expect every `needles` in the error */
static void
expect_error(const char *text, const char *needle1, const char *needle2)
{
	struct gw_config c;
	char err[512] = "";
	const char *path = write_file("bad.conf", text);

	if (gw_config_load(&c, path, err, sizeof err) == 0) {
		fprintf(stderr, "expected an error mentioning %s for:\n%s\n",
		    needle1, text);
		failures++;
		gw_config_free(&c);
		return;
	}
	if (strstr(err, needle1) == NULL ||
	    (needle2 != NULL && strstr(err, needle2) == NULL)) {
		fprintf(stderr, "error \"%s\" lacks \"%s\"/\"%s\"\n", err,
		    needle1, needle2 != NULL ? needle2 : "");
		failures++;
	}
}

static void
test_good_file_and_defaults(void)
{
	struct gw_config c;
	char err[512];
	const char *path = write_file("good.conf",
	    "# the gateway\n"
	    "\n"
	    "  component_jid   =   Barev.Example.org  \n"
	    "component_secret = \"a secret # with a hash \\\" and quote\"\n"
	    "database=/var/lib/gw.sqlite\n"
	    "admins = alice@example.org, Bob@Example.org ,\n"
	    "log_level = debug\n"
	    "registration = open\n"
	    "barev_address = 0201:ABCD:0000::0001\n"
	    "refuse_outside_yggdrasil = no\n"
	    "outbox_ttl = 2h\n"
	    "max_file_size = 5G\n"
	    "avatar_max_bytes = 64K\n"
	    "http_listen = [::1]:5280\n"
	    "http_public_url = https://files.example.org/\n"
	    "download_hosts = upload.example.org,files.example.org\n"
	    "barev_ping_idle = 1500ms\n"
	    "server_restart_hold = off\n");

	CHECK(gw_config_load(&c, path, err, sizeof err) == 0);
	CHECK(c.server_restart_hold_ms == 0);	/* "off" turns it off */
	CHECK(strcmp(c.component_jid, "barev.example.org") == 0);
	CHECK(strcmp(c.component_secret,
	    "a secret # with a hash \" and quote") == 0);
	CHECK(strcmp(c.database, "/var/lib/gw.sqlite") == 0);
	CHECK(c.admins.n == 2);
	CHECK(gw_config_is_admin(&c, "bob@example.org"));
	CHECK(gw_config_is_admin(&c, "ALICE@example.org/phone"));
	CHECK(!gw_config_is_admin(&c, "mallory@example.org"));
	CHECK(!gw_config_is_admin(&c, "alice@example.org.evil"));
	CHECK(c.log_level == LOG_LVL_DEBUG);
	CHECK(c.registration == GW_REG_OPEN);
	CHECK(strcmp(c.barev_address, "201:abcd::1") == 0);
	CHECK(c.refuse_outside_yggdrasil == 0);	/* turned off explicitly */
	CHECK(c.outbox_ttl_ms == 2ULL * 3600 * 1000);
	CHECK(c.max_file_size == 5ULL << 30);
	CHECK(c.avatar_max_bytes == 65536);
	CHECK(strcmp(c.http_public_url, "https://files.example.org") == 0);
	CHECK(c.download_hosts.n == 2);
	CHECK(c.barev_ping_idle_ms == 1500);
	/* registration_domains unset: the component's parent domain */
	CHECK(gw_config_may_register(&c, "zoe@example.org"));
	CHECK(gw_config_may_register(&c, "zoe@EXAMPLE.org/phone"));
	CHECK(!gw_config_may_register(&c, "mallory@other.org"));
	CHECK(!gw_config_may_register(&c, "mallory@example.org.evil"));
	CHECK(!gw_config_may_register(&c, "mallory@barev.example.org"));
	CHECK(!gw_config_may_register(&c, "example.org"));
	/* who may grant XEP-0356 privileges: the server, not a look-alike */
	CHECK(gw_config_is_server_domain(&c, "example.org"));
	CHECK(gw_config_is_server_domain(&c, "Example.Org"));
	CHECK(!gw_config_is_server_domain(&c, "evil.example.org"));
	CHECK(!gw_config_is_server_domain(&c, "example.org.evil"));
	CHECK(!gw_config_is_server_domain(&c, "barev.example.org"));
	CHECK(!gw_config_is_server_domain(&c, ""));
	/* defaults */
	CHECK(strcmp(c.server_host, "127.0.0.1") == 0);
	CHECK(c.server_port == 5347);
	CHECK(c.barev_port == 1337);
	CHECK(strcmp(c.upload_service, "") == 0);
	/* per instance: beside the database, never a directory shared by default */
	CHECK(strcmp(c.spool_dir, "/var/lib/gw.sqlite.spool") == 0);
	CHECK(c.barev_ping_timeout_ms == 10000);
	CHECK(c.barev_header_timeout_ms == 15000);
	CHECK(c.barev_silent_initiator_ms == 2000);
	CHECK(c.barev_backoff_min_ms == 1000);
	CHECK(c.barev_backoff_max_ms == 300000);
	gw_config_free(&c);
}

static void
test_minimal_file_and_its_defaults(void)
{
	struct gw_config c;
	char err[512];

	CHECK(gw_config_load(&c, write_file("min.conf", BASE), err,
	    sizeof err) == 0);
	CHECK(c.log_level == LOG_LVL_INFO);
	CHECK(c.registration == GW_REG_ADMIN);
	/* on unless turned off: Barev lives in 200::/7 (issue 15) */
	CHECK(c.refuse_outside_yggdrasil == 1);
	CHECK(c.outbox_ttl_ms == 7ULL * 86400 * 1000);
	CHECK(c.max_file_size == 100ULL << 20);
	CHECK(c.max_incoming_per_contact == 3);
	CHECK(c.max_incoming_total == 32);
	CHECK(c.spool_quota == 1ULL << 30);
	CHECK(c.admins.n == 0);
	CHECK(strcmp(c.barev_address, "") == 0);
	CHECK(strcmp(c.spool_dir, "/tmp/gw.sqlite.spool") == 0);
	gw_config_free(&c);

	/* an explicit spool_dir is kept as written */
	CHECK(gw_config_load(&c, write_file("spool.conf", BASE
	    "spool_dir = /srv/spool\n"), err, sizeof err) == 0);
	CHECK(strcmp(c.spool_dir, "/srv/spool") == 0);
	gw_config_free(&c);

	CHECK(gw_config_load(&c, write_file("dials.conf", BASE), err, sizeof err) == 0);
	CHECK(c.max_concurrent_dials == 64);	/* issue 13 */
	CHECK(strcmp(c.metrics_path, "") == 0);	/* metrics off */
	gw_config_free(&c);

	CHECK(gw_config_load(&c, write_file("dom.conf", BASE
	    "registration_domains = other.org, Example.NET\n"), err,
	    sizeof err) == 0);
	CHECK(gw_config_may_register(&c, "a@other.org"));
	CHECK(gw_config_may_register(&c, "a@example.net/x"));
	CHECK(!gw_config_may_register(&c, "a@example.org"));
	/* the server itself may always grant; so may registration_domains */
	CHECK(gw_config_is_server_domain(&c, "example.org"));
	CHECK(gw_config_is_server_domain(&c, "example.net"));
	CHECK(!gw_config_is_server_domain(&c, "third.org"));
	gw_config_free(&c);
	/* URL prefixes pin scheme, host and port (issue 15) */
	CHECK(gw_config_load(&c, write_file("prefix.conf", BASE
	    "download_hosts = https://Upload.example.org:5281/file_share/, "
	    "127.0.0.1:5280, [::1]:8080\n"), err, sizeof err) == 0);
	CHECK(c.download_hosts.n == 3 && strcmp(c.download_hosts.v[0],
	    "https://upload.example.org:5281/file_share/") == 0);
	gw_config_free(&c);
}

static void
test_bad_values_name_their_key(void)
{
	expect_error(BASE "server_port = 70000\n",
	    "server_port: \"70000\" is not a port (1-65535)", "bad.conf:4");
	expect_error(BASE "barev_port = 0\n", "barev_port", "not a port");
	expect_error(BASE "log_level = loud\n", "log_level", "loud");
	expect_error(BASE "registration = maybe\n", "registration", "maybe");
	expect_error(BASE "refuse_outside_yggdrasil = perhaps\n",
	    "refuse_outside_yggdrasil", "perhaps");
	expect_error(BASE "outbox_ttl = 7w\n", "outbox_ttl", "7w");
	expect_error(BASE "outbox_ttl = 0\n", "outbox_ttl", NULL);
	expect_error(BASE "max_file_size = lots\n", "max_file_size", "lots");
	expect_error(BASE "avatar_max_bytes = -1\n", "avatar_max_bytes", NULL);
	expect_error(BASE "max_incoming_per_contact = 0\n",
	    "max_incoming_per_contact: \"0\" is not a whole number", NULL);
	expect_error(BASE "max_incoming_total = 3K\n", "max_incoming_total", "3K");
	expect_error(BASE "spool_quota = much\n", "spool_quota", "much");
	expect_error(BASE "admins = alice@example.org, example.org\n",
	    "admins", "\"example.org\"");
	expect_error(BASE "admins = alice@example.org/phone\n", "admins", NULL);
	expect_error(BASE "barev_address = 10.0.0.1\n", "barev_address", NULL);
	expect_error(BASE "download_hosts = ftp://upload.example.org/\n",
	    "download_hosts", "ftp://");
	expect_error(BASE "download_hosts = https:///file_share/\n",
	    "download_hosts", NULL);
	expect_error(BASE "download_hosts = https://a.org/x y\n",
	    "download_hosts", NULL);
	expect_error(BASE "http_listen = 5280\n", "http_listen", NULL);
	expect_error(BASE "http_public_url = ftp://x\n", "http_public_url",
	    NULL);
	expect_error(BASE "upload_service = up@load\n", "upload_service", NULL);
	expect_error(BASE "barev_ping_idle = soon\n", "barev_ping_idle", NULL);
	/* 0 is "off" only where the key says so */
	expect_error(BASE "barev_ping_idle = 0\n", "barev_ping_idle", NULL);
	expect_error(BASE "server_restart_hold = -1\n", "server_restart_hold",
	    NULL);
	expect_error("component_jid = a@b\ncomponent_secret = x\n"
	    "database = d\n", "component_jid", NULL);
	expect_error(BASE "component_secret_file = /x\n", "component_secret",
	    "component_secret_file");
	expect_error(BASE "server_port = \"5347\n", "server_port",
	    "unterminated");
	expect_error(BASE "server_port = 5347\nserver_port = 5348\n",
	    "server_port", "twice");
	expect_error(BASE "just some words\n", "bad.conf:4", "key = value");
	expect_error(BASE "max_concurrent_dials = 0\n", "max_concurrent_dials",
	    NULL);
	expect_error(BASE "http_listen = 127.0.0.1:5281\nmetrics_path = metrics\n",
	    "metrics_path", "URL path");
	expect_error(BASE "metrics_path = /metrics\n", "metrics_path",
	    "http_listen");
}

static void
test_unknown_key_named_with_line(void)
{
	expect_error(BASE "\n# comment\ncomponent_port = 5347\n",
	    "unknown key \"component_port\"", "bad.conf:6");
}

static void
test_missing_required_named(void)
{
	expect_error("server_port = 5347\n", "component_jid", "database");
	expect_error("component_jid = barev.example.org\ndatabase = d\n",
	    "component_secret", NULL);
	expect_error("component_jid = barev.example.org\n"
	    "component_secret = x\n", "missing required key: database", NULL);
}

static void
test_env_overrides_file(void)
{
	struct gw_config c;
	char err[512];
	const char *path = write_file("env.conf",
	    BASE "server_port = 99999\nlog_level = info\n");

	/* the environment wins, even over a value that would be invalid */
	setenv("BAREV_GATEWAY_SERVER_PORT", "5400", 1);
	setenv("BAREV_GATEWAY_LOG_LEVEL", "warn", 1);
	CHECK(gw_config_load(&c, path, err, sizeof err) == 0);
	CHECK(c.server_port == 5400);
	CHECK(c.log_level == LOG_LVL_WARN);
	gw_config_free(&c);

	/* and its own errors name the key and the variable */
	setenv("BAREV_GATEWAY_SERVER_PORT", "http", 1);
	CHECK(gw_config_load(&c, path, err, sizeof err) == -1);
	CHECK(strstr(err, "server_port: \"http\" is not a port") != NULL);
	CHECK(strstr(err, "BAREV_GATEWAY_SERVER_PORT") != NULL);
	unsetenv("BAREV_GATEWAY_SERVER_PORT");
	unsetenv("BAREV_GATEWAY_LOG_LEVEL");

	/* a required key may come from the environment alone */
	setenv("BAREV_GATEWAY_DATABASE", "/tmp/env.sqlite", 1);
	CHECK(gw_config_load(&c, write_file("nodb.conf",
	    "component_jid = barev.example.org\ncomponent_secret = x\n"),
	    err, sizeof err) == 0);
	CHECK(c.database != NULL && strcmp(c.database, "/tmp/env.sqlite") == 0);
	gw_config_free(&c);
	unsetenv("BAREV_GATEWAY_DATABASE");
}

static void
test_secret_file(void)
{
	struct gw_config c;
	char err[512], text[1024];
	char sp[512];

	snprintf(sp, sizeof sp, "%s", write_file("secret", "from-file\n"));
	snprintf(text, sizeof text, "component_jid = barev.example.org\n"
	    "database = d\ncomponent_secret_file = %s\n", sp);
	CHECK(gw_config_load(&c, write_file("sf.conf", text), err,
	    sizeof err) == 0);
	CHECK(c.component_secret != NULL &&
	    strcmp(c.component_secret, "from-file") == 0);
	gw_config_free(&c);

	snprintf(text, sizeof text, "component_jid = barev.example.org\n"
	    "database = d\ncomponent_secret_file = %s/nonexistent\n", tmpdir);
	expect_error(text, "component_secret_file", "nonexistent");

	write_file("empty-secret", "\n");
	snprintf(text, sizeof text, "component_jid = barev.example.org\n"
	    "database = d\ncomponent_secret_file = %s/empty-secret\n", tmpdir);
	expect_error(text, "component_secret_file", "empty");

	/* a path that opens but cannot be read (a directory) */
	snprintf(text, sizeof text, "component_jid = barev.example.org\n"
	    "database = d\ncomponent_secret_file = %s\n", tmpdir);
	expect_error(text, "component_secret_file", "cannot read");
}

/* ca_file: unset is "", a readable file loads, a missing one is named by
 * --test-config (the key, the path, the line) rather than by a transfer */
static void
test_ca_file(void)
{
	struct gw_config c;
	char err[512], text[1024], ca[512];

	CHECK(gw_config_load(&c, write_file("ca0.conf", BASE), err,
	    sizeof err) == 0);
	CHECK(c.ca_file != NULL && c.ca_file[0] == '\0');
	gw_config_free(&c);

	snprintf(ca, sizeof ca, "%s", write_file("ca.crt", "not checked here\n"));
	snprintf(text, sizeof text, BASE "ca_file = %s\n", ca);
	CHECK(gw_config_load(&c, write_file("ca1.conf", text), err,
	    sizeof err) == 0);
	CHECK(c.ca_file != NULL && strcmp(c.ca_file, ca) == 0);
	gw_config_free(&c);

	snprintf(text, sizeof text, BASE "ca_file = %s/no-such-ca.crt\n",
	    tmpdir);
	expect_error(text, "ca_file", "no-such-ca.crt");
	expect_error(text, "ca_file", ":4)");
}

static void
test_reload_applies_safe_keys_only(void)
{
	struct gw_config cur, next;
	char err[512];
	unsigned ch;

	CHECK(gw_config_load(&cur, write_file("r1.conf", BASE
	    "admins = alice@example.org\n"), err, sizeof err) == 0);
	CHECK(gw_config_load(&next, write_file("r2.conf",
	    "component_jid = barev.example.org\n"
	    "component_secret = new-secret\n"
	    "database = /tmp/gw.sqlite\n"
	    "admins = bob@example.org\n"
	    "log_level = debug\n"
	    "server_port = 5999\n"), err, sizeof err) == 0);
	ch = gw_config_reload(&cur, &next);
	CHECK(ch & GW_CONFIG_CHANGED_LOG_LEVEL);
	CHECK(ch & GW_CONFIG_CHANGED_ADMINS);
	CHECK(ch & GW_CONFIG_CHANGED_SECRET);
	CHECK(cur.log_level == LOG_LVL_DEBUG);
	CHECK(gw_config_is_admin(&cur, "bob@example.org"));
	CHECK(!gw_config_is_admin(&cur, "alice@example.org"));
	CHECK(strcmp(cur.component_secret, "new-secret") == 0);
	CHECK(cur.server_port == 5347);		/* needs a restart */
	gw_config_free(&cur);
}

int
main(void)
{
	char **e;
	const char *base = getenv("TEST_TMPDIR");

	/* a BAREV_GATEWAY_* variable of the caller must not leak in */
	for (e = environ; *e != NULL;) {
		if (strncmp(*e, "BAREV_GATEWAY_", 14) == 0) {
			char name[128];
			size_t n = strcspn(*e, "=");

			snprintf(name, sizeof name, "%.*s", (int)n, *e);
			unsetenv(name);
			e = environ;
		} else
			e++;
	}
	snprintf(tmpdir, sizeof tmpdir, "%s/cfgXXXXXX",
	    base != NULL ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	log_set_level(LOG_LVL_ERROR);	/* reload logs are not under test */

	test_good_file_and_defaults();
	test_minimal_file_and_its_defaults();
	test_bad_values_name_their_key();
	test_unknown_key_named_with_line();
	test_missing_required_named();
	test_env_overrides_file();
	test_secret_file();
	test_ca_file();
	test_reload_applies_safe_keys_only();

	if (failures > 0) {
		fprintf(stderr, "test_config: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_config: ok\n");
	return 0;
}
