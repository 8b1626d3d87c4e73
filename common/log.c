/*
 * log — one line per event on stderr:
 *
 *	2026-11-22T10:00:00Z WARN component: message
 *
 * The whole line is formatted first and handed to the kernel in one write,
 * so lines from this process never interleave and journald sees each as one
 * record.  Newlines inside a message are flattened: one event, one line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static enum log_level log_level = LOG_LVL_INFO;

static const char *const log_names[] = {
	[LOG_LVL_ERROR] = "ERROR",
	[LOG_LVL_WARN] = "WARN",
	[LOG_LVL_INFO] = "INFO",
	[LOG_LVL_DEBUG] = "DEBUG",
};

void
log_set_level(enum log_level lvl)
{
	if (lvl > LOG_LVL_DEBUG)
		lvl = LOG_LVL_DEBUG;
	log_level = lvl;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* write(2) until done: stderr may be a pipe that takes partial writes */
static void
log_write_all(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;		/* nowhere left to complain to */
		}
		buf += n;
		len -= (size_t)n;
	}
}

void
log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct tm tm;
	time_t now;
	va_list ap;
	size_t len, i;
	int n;

	if (lvl > log_level)
		return;
	if (lvl > LOG_LVL_DEBUG)
		lvl = LOG_LVL_DEBUG;

	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(line, "0000-00-00T00:00:00Z");
	len = strlen(line);

	n = snprintf(line + len, sizeof line - len, " %s %s: ", log_names[lvl],
	    module != NULL ? module : "?");
	if (n < 0)
		return;
	len += (size_t)n;
	if (len >= sizeof line - 1)
		len = sizeof line - 2;

	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof line - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof line - len - 1) {
		/* truncated: say so instead of cutting silently */
		len = sizeof line - 5;
		memcpy(line + len, "...", 3);
		len += 3;
	} else
		len += (size_t)n;

	for (i = 0; i < len; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	line[len++] = '\n';
	log_write_all(line, len);
}
