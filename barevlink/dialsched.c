/*
 * dialsched — outgoing dials go through a fixed number of slots
 * (cfg.max_dials), shared fairly by the identities.
 *
 * After a server restart or a network outage every wanted contact of every
 * online user wants a dial at once: 10,000 connect()s in one loop turn
 * would exhaust file descriptors and the peers' SYN backlogs alike.  So a
 * contact whose (re)dial timer fires does not dial; it becomes "ready" and
 * waits in its identity's queue.  The identities with ready contacts form
 * a ring: each free slot goes to the next identity in the ring, which then
 * moves to the back, so a user with 1,000 contacts does not starve one
 * with ten.  A slot is held from the connect() until the pipe is up or the
 * dial failed; freeing it starts the next dial from an event of its own,
 * never inside the callback chain that closed the pipe.
 */
#include "internal.h"

static void
dialq_remove(struct bl_contact *c)
{
	struct bl_ident	*id = c->ident;
	struct bl	*bl = id->listener->bl;

	TAILQ_REMOVE(&id->ready, c, ready_entry);
	c->ready = 0;
	bl->dials_waiting--;
	if (TAILQ_EMPTY(&id->ready) && id->in_ring) {
		TAILQ_REMOVE(&bl->dial_ring, id, ring_entry);
		id->in_ring = 0;
	}
}

static void
dialq_pump(struct bl *bl)
{
	struct bl_ident	*id;
	struct bl_contact *c;

	while (bl->dials_inflight < bl->cfg.max_dials && !bl->shutting_down &&
	    (id = TAILQ_FIRST(&bl->dial_ring)) != NULL) {
		c = TAILQ_FIRST(&id->ready);
		dialq_remove(c);
		/* round robin: this identity waits behind the others now */
		if (id->in_ring) {
			TAILQ_REMOVE(&bl->dial_ring, id, ring_entry);
			TAILQ_INSERT_TAIL(&bl->dial_ring, id, ring_entry);
		}
		bl_dial_start(c);
	}
}

static void
dialpump_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dialq_pump(arg);
}

void
bl_dialq_init(struct bl *bl)
{
	TAILQ_INIT(&bl->dial_ring);
	event_assign(&bl->dialpump, bl->base, -1, 0, dialpump_cb, bl);
}

/* the contact's (re)dial timer fired: dial when a slot is free */
void
bl_dialq_ready(struct bl_contact *c)
{
	struct bl_ident	*id = c->ident;
	struct bl	*bl = id->listener->bl;

	if (!c->want || c->pipe != NULL || c->dial != NULL || c->ready ||
	    bl->shutting_down)
		return;
	c->ready = 1;
	TAILQ_INSERT_TAIL(&id->ready, c, ready_entry);
	bl->dials_waiting++;
	if (!id->in_ring) {
		TAILQ_INSERT_TAIL(&bl->dial_ring, id, ring_entry);
		id->in_ring = 1;
	}
	dialq_pump(bl);
}

/* no longer wanted, up by an inbound pipe, or removed: leave the queue */
void
bl_dialq_cancel(struct bl_contact *c)
{
	if (c->ready)
		dialq_remove(c);
}

void
bl_dial_slot_take(struct bl_pipe *p)
{
	p->dial_slot = 1;
	if (++p->bl->dials_inflight > p->bl->dials_peak)
		p->bl->dials_peak = p->bl->dials_inflight;
	p->bl->dials_started++;
}

/* the dial is up or gone: its slot goes to the next ready contact */
void
bl_dial_slot_release(struct bl_pipe *p)
{
	struct bl	*bl = p->bl;

	if (!p->dial_slot)
		return;
	p->dial_slot = 0;
	bl->dials_inflight--;
	if (bl->dials_waiting > 0)
		event_active(&bl->dialpump, EV_TIMEOUT, 0);
}
