/*
 * netns — a fuzz harness's own network namespace (when root, as CI is).
 */
#ifndef FZ_NETNS_H
#define FZ_NETNS_H

/*
 * Enter a new network namespace with only loopback up: whatever an input
 * makes the code dial fails at once with "network unreachable" instead of
 * reaching the host's network, and parallel fuzzers cannot collide on
 * ports.  `reserved_ports` ("41000-41999", or NULL): kept out of the
 * kernel's ephemeral range there.  Not root: nothing happens (the host's
 * network it is).  Aborts if the namespace is made but cannot be set up.
 */
void fz_own_netns(const char *reserved_ports);

#endif
