/*
 * vtime — a fuzz harness's event loop in virtual time (see vtime.h).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "vtime.h"

#define MAX_WATCHED 16

/* what the loop waits on: the sockets watched, the earliest timeout */
struct waits {
	struct pollfd fds[MAX_WATCHED + 1];	/* + the harness's own */
	nfds_t nfds;
	const struct event *next;	/* earliest pending timeout */
	struct timeval when;
};

static void
die(const char *what)
{
	fprintf(stderr, "vtime: %s\n", what);
	abort();
}

static int
waits_add(const struct event_base *base, const struct event *ev, void *arg)
{
	struct waits *w = arg;
	short what = event_get_events(ev);
	struct timeval tv;

	(void)base;
	if (event_pending(ev, EV_TIMEOUT, &tv) &&
	    (w->next == NULL || evutil_timercmp(&tv, &w->when, <))) {
		w->next = ev;
		w->when = tv;
	}
	if (event_get_fd(ev) != -1 && (what & (EV_READ | EV_WRITE)) &&
	    event_pending(ev, EV_READ | EV_WRITE, NULL)) {
		if (w->nfds == MAX_WATCHED)
			die("too many sockets watched");
		w->fds[w->nfds].fd = event_get_fd(ev);
		w->fds[w->nfds].events = (short)((what & EV_READ ? POLLIN : 0) |
		    (what & EV_WRITE ? POLLOUT : 0));
		w->nfds++;
	}
	return 0;
}

int
fz_vtime_step(struct event_base *base, int grace_ms, int fire, int extra_fd,
    void (*extra_ready)(void *arg), void *arg)
{
	struct waits w = { .nfds = 0 };
	union { const struct event *c; struct event *e; } next;
	int n;

	if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0) {
		if (event_base_foreach_event(base, waits_add, &w) != 0)
			die("event_base_foreach_event");
		if (extra_fd != -1) {
			w.fds[w.nfds].fd = extra_fd;
			w.fds[w.nfds++].events = POLLIN;
		}
		if ((n = poll(w.fds, w.nfds, grace_ms)) == 0) {
			if (!fire || w.next == NULL)
				return -1;
			next.c = w.next;
			event_active(next.e, EV_TIMEOUT, 1);
		} else if (n > 0 && extra_fd != -1 &&
		    w.fds[w.nfds - 1].revents != 0 && extra_ready != NULL)
			extra_ready(arg);
	}
	(void)event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
