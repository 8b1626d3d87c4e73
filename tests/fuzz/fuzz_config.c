/*
 * fuzz_config — the configuration file parser (gateway/core/config.c) on
 * arbitrary file contents, as the daemon reads it at start and on SIGHUP:
 * load; on success ask the questions the daemon asks (admins, who may
 * register) and apply it as a reload over a known-good configuration
 * (the SIGHUP diff), then free both.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static char path[600];

static const char base_conf[] =
    "component_jid = barev.example.org\ncomponent_secret = s\n"
    "database = /nonexistent/gw.sqlite\nadmins = admin@example.org\n";

static void
write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "w");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char base_path[600];
	struct gw_config cur, next;
	char err[512];

	if (path[0] == '\0') {
		const char *dir = getenv("TEST_TMPDIR");
		char tmpl[] = "/tmp/barev-fuzz-config.XXXXXX";

		if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL)
			abort();
		snprintf(path, sizeof path, "%s/fuzz.conf", dir);
		snprintf(base_path, sizeof base_path, "%s/base.conf", dir);
		write_file(base_path, base_conf, strlen(base_conf));
		log_set_level(LOG_LVL_ERROR);
	}
	if (size > 256 * 1024)
		return 0;
	write_file(path, data, size);
	memset(&next, 0, sizeof next);
	if (gw_config_load(&next, path, err, sizeof err) == -1) {
		if (strlen(err) == 0 || memchr(err, '\n', strlen(err)) != NULL) {
			/* an error must be one line that says something */
			fprintf(stderr, "bad error text: '%s'\n", err);
			abort();
		}
		gw_config_free(&next);
		return 0;
	}
	(void)gw_config_is_admin(&next, "admin@example.org");
	(void)gw_config_is_admin(&next, "Admin@Example.org/res");
	(void)gw_config_may_register(&next, "alice@example.org");
	(void)gw_config_may_register(&next, "alice@barev.example.org/x");
	memset(&cur, 0, sizeof cur);
	if (gw_config_load(&cur, base_path, err, sizeof err) == -1)
		abort();
	(void)gw_config_reload(&cur, &next);	/* frees next */
	gw_config_free(&cur);
	log_set_level(LOG_LVL_ERROR);	/* a reload may have changed it */
	return 0;
}
