/*
 * listener — one listening socket per distinct (address, port) of our
 * identities (BAREV.md §1-2), shared by the identities on it.
 *
 * The allowlist is checked in the accept callback, from the address the
 * kernel hands us, before anything reads the socket: a connection from an
 * address no contact has is closed there (nothing sent, nothing read,
 * nothing allocated), so a flood from strangers costs an accept and a close.
 *
 * A listener that cannot bind stays in the list with its error, for the log
 * and for admins (bl_foreach_listener), and tries again after 1 s, 2 s, ...
 * up to a minute (the port may be held by an instance still stopping, or by
 * another program the operator is about to stop); we never fall back to
 * another port, since peers only ever dial the one in our address.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "backoff.h"
#include "internal.h"
#include "log.h"

static void
listener_accept(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bl_listener *l = arg;
	struct bl	*bl = l->bl;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
	struct bl_allow	*a;
	char		 src[BL_ADDRSTRLEN];

	(void)evl;
	if (salen < (int)sizeof(*sin6) || sa->sa_family != AF_INET6 ||
	    bl->shutting_down ||
	    (a = bl_allow_find(bl, &sin6->sin6_addr)) == NULL ||
	    a->pending >= BL_MAX_PENDING_PER_ADDR) {
		/* before a single read (BAREV.md §2) */
		close(fd);
		bl->rejected_unknown++;
		return;
	}
	/* allowlisted, but the gateway's policy may still refuse the pair;
	 * asked only now, so strangers cost no formatting */
	bl_addr_text(&sin6->sin6_addr, src);
	if (bl->ev.permit != NULL && !bl->ev.permit(bl->arg, l->addrtxt, src)) {
		close(fd);
		bl->rejected_policy++;
		log_debug("barevlink", "connection from [%s] to [%s]:%u refused"
		    " by policy", src, l->addrtxt, l->port);
		return;
	}
	(void)bl_pipe_inbound(l, fd, &sin6->sin6_addr);
}

static void
listener_error(struct evconnlistener *evl, void *arg)
{
	struct bl_listener *l = arg;

	(void)evl;
	/* EMFILE and friends: libevent retries on the next readiness */
	log_warn("barevlink", "accept on [%s]:%u: %s", l->addrtxt, l->port,
	    strerror(errno));
}

static int
listener_bind(struct bl_listener *l)
{
	struct sockaddr_in6 sa;
	int		 fd, one = 1;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	/*
	 * V6ONLY: Barev is IPv6 only.  REUSEADDR: restart while old pipes are
	 * in TIME_WAIT.  FREEBIND: an identity's address may be configured
	 * before the host has it (DESIGN.md "Addresses").
	 */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) == -1)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = l->addr;
	sa.sin6_port = htons(l->port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, SOMAXCONN) == -1)
		goto fail;
	l->evl = evconnlistener_new(l->bl->base, listener_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->evl == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	evconnlistener_set_error_cb(l->evl, listener_error);
	return (0);
fail:
	snprintf(l->err, sizeof(l->err), "%s", strerror(errno));
	if (fd != -1)
		close(fd);
	return (-1);
}

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

static void
listener_retry(evutil_socket_t fd, short what, void *arg)
{
	struct bl_listener *l = arg;
	struct bl *bl = l->bl;
	char	 before[sizeof(l->err)];
	struct timeval tv;

	(void)fd;
	(void)what;
	if (bl->shutting_down)
		return;
	memcpy(before, l->err, sizeof(before));
	if (listener_bind(l) == 0) {
		l->err[0] = '\0';
		log_info("barevlink", "listening on [%s]:%u (was: %s)", l->addrtxt,
		    l->port, before);
		if (bl->ev.listener != NULL)
			bl->ev.listener(bl->arg, l->addrtxt, l->port, 1, NULL);
		return;
	}
	if (strcmp(before, l->err) != 0)
		log_error("barevlink", "cannot listen on [%s]:%u: %s",
		    l->addrtxt, l->port, l->err);
	l->retry_ms = cm_backoff_next(l->retry_ms, RETRY_MIN_MS, RETRY_MAX_MS);
	tv.tv_sec = l->retry_ms / 1000;
	tv.tv_usec = (l->retry_ms % 1000) * 1000;
	evtimer_add(l->retry, &tv);
}

static void
listener_free(struct bl_listener *l)
{
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	if (l->retry != NULL)
		event_free(l->retry);
	free(l);
}

/* the listener for (a, port), created and bound on first use */
struct bl_listener *
bl_listener_get(struct bl *bl, const struct in6_addr *a, uint16_t port)
{
	struct bl_listener *l;
	int		 ok;

	TAILQ_FOREACH(l, &bl->listeners, entry)
		if (l->port == port && bl_addr_cmp(&l->addr, a) == 0)
			return (l);
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (NULL);
	l->bl = bl;
	l->addr = *a;
	l->port = port;
	bl_addr_text(a, l->addrtxt);
	TAILQ_INIT(&l->idents);
	TAILQ_INSERT_TAIL(&bl->listeners, l, entry);
	ok = listener_bind(l) == 0;
	if (ok)
		log_info("barevlink", "listening on [%s]:%u", l->addrtxt, port);
	else {
		struct timeval tv = { RETRY_MIN_MS / 1000, 0 };

		log_error("barevlink", "cannot listen on [%s]:%u: %s; trying"
		    " again", l->addrtxt, port, l->err);
		l->retry_ms = RETRY_MIN_MS;
		if ((l->retry = evtimer_new(bl->base, listener_retry, l)) != NULL)
			evtimer_add(l->retry, &tv);
	}
	if (bl->ev.listener != NULL)
		bl->ev.listener(bl->arg, l->addrtxt, port, ok,
		    ok ? NULL : l->err);
	return (l);
}

/* drop it once no identity uses it, with the handshakes still on it */
void
bl_listener_put(struct bl_listener *l)
{
	struct bl	*bl = l->bl;
	struct bl_pipe	*p, *tp;

	if (!TAILQ_EMPTY(&l->idents))
		return;
	TAILQ_FOREACH_SAFE(p, &bl->pipes, entry, tp) {
		if (p->listener != l)
			continue;
		bl_pipe_kill(p, "identity removed", BL_CLOSE_ABORT);
		p->listener = NULL;
	}
	TAILQ_REMOVE(&bl->listeners, l, entry);
	log_info("barevlink", "stopped listening on [%s]:%u", l->addrtxt,
	    l->port);
	listener_free(l);
}

/* bl_free(): every listener, whoever uses it */
void
bl_listeners_free(struct bl *bl)
{
	struct bl_listener *l;

	while ((l = TAILQ_FIRST(&bl->listeners)) != NULL) {
		TAILQ_REMOVE(&bl->listeners, l, entry);
		listener_free(l);
	}
}

void
bl_foreach_listener(struct bl *bl,
    void (*fn)(void *, const char *, uint16_t, int, const char *), void *arg)
{
	struct bl_listener *l;

	TAILQ_FOREACH(l, &bl->listeners, entry)
		fn(arg, l->addrtxt, l->port, l->evl != NULL,
		    l->evl != NULL ? NULL : l->err);
}
