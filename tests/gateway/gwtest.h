/*
 * gwtest — small helpers the gateway unit tests share (linked into every
 * tests/gateway/test_*.c program), so a fix to one reaches all of them.
 */
#ifndef GWTEST_H
#define GWTEST_H

/* A TCP port on ::1 that nothing listens on right now (bound, read back,
 * closed); exits with 2 if the system cannot give one. */
int gwt_free_port(void);

/* Both strings present and equal (NULL never equals anything). */
int gwt_streq(const char *a, const char *b);

#endif
