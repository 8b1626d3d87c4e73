/*
 * vtime — a fuzz harness's event loop in virtual time: timeouts fire as
 * soon as nothing else can happen, so an input costs its CPU, not the
 * seconds its timers would wait (fuzz_socks5.c, fuzz_blhdr.c).
 */
#ifndef FZ_VTIME_H
#define FZ_VTIME_H

#include <event2/event.h>

/*
 * One step.  With an event active: run what is ready.  Else poll the
 * sockets `base` watches, and `extra_fd` (-1: none; the harness's own
 * end), for `grace_ms`: when one is ready, `extra_ready(arg)` if it is
 * extra_fd's, then run what is ready; when none is and `fire`, make the
 * earliest pending timeout active as if its time had come, and run it.
 * Both ends in one process on loopback, a byte is delivered within the
 * send() that wrote it, so that is the moment a real timer would have been
 * next.  0, or -1 when nothing was ready and no timeout was fired.
 */
int fz_vtime_step(struct event_base *base, int grace_ms, int fire, int extra_fd,
    void (*extra_ready)(void *arg), void *arg);

#endif
