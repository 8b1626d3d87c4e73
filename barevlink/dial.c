/*
 * dial — our side of "both peers listen and both dial" (BAREV.md §2).
 *
 * The source address is bound to the identity's own address before
 * connect(): the peer allowlists by source IP, and a host with several
 * Barev addresses would otherwise pick any of them.  IPV6_FREEBIND lets
 * that bind succeed for an address the host does not carry yet (the
 * identity can be configured before the operator adds it; the connect
 * then fails and is retried with backoff instead of failing the config).
 *
 * Redials back off exponentially with jitter, so two peers that lost a pipe
 * at the same moment do not dial each other in lockstep forever.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "internal.h"
#include "log.h"
#include "rng.h"

static struct bl *
contact_bl(const struct bl_contact *c)
{
	return (c->ident->listener->bl);
}

static void
redial_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	bl_dialq_ready(arg);	/* dials when a slot is free (dialsched.c) */
}

void
bl_redial_cancel(struct bl_contact *c)
{
	if (c->redial != NULL)
		evtimer_del(c->redial);
}

int
bl_redial_pending(const struct bl_contact *c)
{
	return (c->redial != NULL && evtimer_pending(c->redial, NULL) != 0);
}

void
bl_redial_free(struct bl_contact *c)
{
	if (c->redial != NULL)
		event_free(c->redial);
	c->redial = NULL;
}

void
bl_dial_schedule(struct bl_contact *c, int now)
{
	struct bl	*bl = contact_bl(c);
	struct timeval	 tv;
	unsigned	 ms = 0;

	if (!c->want || c->pipe != NULL || c->dial != NULL || c->ready ||
	    bl->shutting_down)
		return;
	/* made once, by the contact's first dial: idle contacts have none */
	if (c->redial == NULL &&
	    (c->redial = evtimer_new(bl->base, redial_cb, c)) == NULL) {
		log_error("barevlink", "dial %s@%s: out of memory", c->nick,
		    c->addrtxt);
		return;
	}
	if (!now) {
		ms = cm_backoff_step(&c->backoff, bl->cfg.backoff_min_ms,
		    bl->cfg.backoff_max_ms);
	} else {
		/* two gateways restarted together must not dial each other
		 * in the same millisecond (crossing dials, BAREV.md §2) */
		ms = cm_random_u32() % (bl->cfg.dial_jitter_ms + 1);
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->redial, &tv);
}

static void
dial_ready(evutil_socket_t fd, short what, void *arg)
{
	struct bl_pipe	*p = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	(void)what;
	event_free(p->connev);
	p->connev = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		bl_pipe_kill(p, strerror(err), BL_CLOSE_ABORT);
		return;
	}
	bl_pipe_connected(p);
}

static int
dial_socket(struct bl_contact *c)
{
	struct sockaddr_in6 sa;
	int		 fd, one = 1;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (-1);
	(void)setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = c->ident->addr;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto fail;
	sa.sin6_addr = c->addr;
	sa.sin6_port = htons(c->port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 &&
	    errno != EINPROGRESS)
		goto fail;
	return (fd);
fail:
	close(fd);
	return (-1);
}

void
bl_dial_start(struct bl_contact *c)
{
	struct bl	*bl = contact_bl(c);
	struct bl_pipe	*p;
	int		 fd;

	if (!c->want || c->pipe != NULL || c->dial != NULL ||
	    bl->shutting_down)
		return;
	/* no redial either: nothing will change until the gateway says so
	 * (it calls bl_contact_want() again when its policy changes) */
	if (bl->ev.permit != NULL &&
	    !bl->ev.permit(bl->arg, c->ident->addrtxt, c->addrtxt)) {
		log_debug("barevlink", "not dialling %s@[%s]:%u from [%s]:"
		    " refused by policy", c->nick, c->addrtxt, c->port,
		    c->ident->addrtxt);
		return;
	}
	if ((fd = dial_socket(c)) == -1) {
		log_warn("barevlink", "dial %s@[%s]:%u from [%s]: %s", c->nick,
		    c->addrtxt, c->port, c->ident->addrtxt, strerror(errno));
		bl_dial_schedule(c, 0);
		return;
	}
	if ((p = bl_pipe_outbound(c, fd)) == NULL)
		goto fail;
	p->connev = event_new(bl->base, fd, EV_WRITE, dial_ready, p);
	if (p->connev == NULL || event_add(p->connev, NULL) == -1) {
		bl_pipe_kill(p, "out of memory", BL_CLOSE_ABORT);
		return;
	}
	log_debug("barevlink", "dialling %s@[%s]:%u", c->nick, c->addrtxt,
	    c->port);
	return;
fail:
	close(fd);
	log_error("barevlink", "dial %s@%s: out of memory", c->nick, c->addrtxt);
	bl_dial_schedule(c, 0);
}
