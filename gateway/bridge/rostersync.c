/*
 * rostersync — each roster grant (every component connect) makes every
 * user's roster hold what the gateway wants there: the gateway JID and her
 * provisioned contacts, subscription both, named, in group "Barev".
 *
 * The one idea: the work is proportional to what changed, not to what
 * exists.  Where the grant reads as well as writes (XEP-0356 roster type
 * "both"), each user's roster is read first (a privileged roster get)
 * and only the items missing or different from what a push would write are
 * pushed; a restart with nothing changed pushes nothing.  The reads are
 * paced: at most ROSTER_SYNC_WINDOW in flight.  A read that fails or goes
 * unanswered costs that user the old way, every item pushed (idempotent);
 * a refused read does so for every user left in the round.  A grant that
 * only writes ("set") pushes everything, as before.
 *
 * Items on the component's domain that are not her contacts are left where
 * they are (docs/design.md "Roster"): the XMPP roster is the source of truth
 * for whom she allows, and the gateway cannot tell an item it should have
 * removed from one the store lost (a restored backup).  They are counted in
 * the round's log line.
 */
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bridge.h"
#include "bridge_int.h"
#include "component.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "translate.h"

#define NS_ROSTER "jabber:iq:roster"
#define ROSTER_SYNC_WINDOW 16	/* roster reads in flight at once */

/* one round: the users of a grant, read a window at a time */
struct roster_sync {
	unsigned gen;		/* bumped by each grant: older answers ignored */
	int64_t *idents;	/* users to sync, by identity (they may go) */
	size_t n, cap, next;
	unsigned inflight;
	int get_refused;	/* a read was refused: push the rest */
	int done;
	/* the round's figures, logged when it ends */
	size_t read, pushed, fell_back, stray;
	struct timespec t0;
};

/* the argument of one read */
struct roster_get {
	unsigned gen;
	int64_t ident;
};

/* an item of the roster she has, by JID */
struct roster_have {
	const char *jid;	/* borrowed from the answer */
	xmpp_stanza_t *el;
};

static void sync_pump(struct bridge *br);

/* the server link is down: nothing sent now would arrive */
static int
sync_link_down(struct gw *gw)
{
	return gw->send_fn == NULL &&
	    (gw->comp == NULL || comp_state(gw->comp) != COMP_UP);
}

/* the link went down mid-round: stop; the grant of the next connect
 * starts a new round, which reads again whoever was not done */
static void
sync_interrupted(struct roster_sync *s)
{
	if (s->done)
		return;
	s->done = 1;
	log_info("bridge", "roster sync interrupted by the server link going"
	    " down after %zu roster(s) read: the next connect reads them again",
	    s->read);
}

static int
have_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct roster_have *)a)->jid,
	    ((const struct roster_have *)b)->jid);
}

/* the item for `jid` in her roster, or NULL */
static xmpp_stanza_t *
have_find(void *tree, const char *jid)
{
	struct roster_have key = { .jid = jid };
	struct roster_have **hit = tfind(&key, &tree, have_cmp);

	return hit ? (*hit)->el : NULL;
}

static void
tree_noop(void *p)
{
	(void)p;
}

/*
 * Her roster as the server reports it (`query`, NULL: empty) against what
 * the gateway wants: push what is missing or different.  Returns the number
 * of items pushed, or -1 when out of memory (nothing pushed yet).
 */
static long
sync_user(struct bridge *br, struct br_user *u, xmpp_stanza_t *query,
    size_t *stray)
{
	const char *me = br->gw->cfg.component_jid;
	size_t n = 0, domain = 0, known = 0, melen = strlen(me);
	struct roster_have *have = NULL;
	struct br_contact *c;
	xmpp_stanza_t *el;
	void *tree = NULL;
	long pushed = 0;

	for (el = query ? xmpp_stanza_get_children(query) : NULL; el;
	    el = xmpp_stanza_get_next(el))
		n++;
	if (n && (have = calloc(n, sizeof(*have))) == NULL)
		return -1;
	n = 0;
	for (el = query ? xmpp_stanza_get_children(query) : NULL; el;
	    el = xmpp_stanza_get_next(el)) {
		const char *name = xmpp_stanza_get_name(el);
		const char *jid = xmpp_stanza_get_attribute(el, "jid");
		struct roster_have **slot;
		size_t jl;

		if (name == NULL || strcmp(name, "item") != 0 || jid == NULL)
			continue;
		have[n].jid = jid;
		have[n].el = el;
		if ((slot = tsearch(&have[n], &tree, have_cmp)) == NULL) {
			tdestroy(tree, tree_noop);
			free(have);
			return -1;
		}
		if (*slot != &have[n])
			continue;	/* the same JID twice: the first counts */
		jl = strlen(jid);
		if (jl > melen + 1 && jid[jl - melen - 1] == '@' &&
		    strcasecmp(jid + jl - melen, me) == 0)
			domain++;
		n++;
	}
	/* the gateway JID: once it is right, its push would only have
	 * probed her presence (roster_gateway_add) */
	if ((el = have_find(tree, me)) != NULL &&
	    tr_roster_item_right(el, TR_ROSTER_GATEWAY_NAME)) {
		gw_send_release(br->gw, br_stanza("presence", "probe", me, u->jid));
	} else {
		roster_gateway_add(br, u);
		pushed++;
	}
	LIST_FOREACH(c, &u->contacts, user_entry) {
		el = have_find(tree, c->jid);
		known += el != NULL;
		if (el == NULL || !tr_roster_item_right(el,
		    tr_contact_name(c->name, c->nick))) {
			roster_contact(br, c, 0, 0);
			pushed++;
		}
	}
	tdestroy(tree, tree_noop);
	free(have);
	*stray = domain > known ? domain - known : 0;
	if (*stray)
		log_info("bridge", "%s's roster holds %zu item(s) on %s that are"
		    " not her Barev contacts: left as they are", u->jid, *stray, me);
	return pushed;
}

static void
sync_push_all(struct bridge *br, struct roster_sync *s, struct br_user *u)
{
	struct br_contact *c;

	roster_push_all(br, u);
	s->fell_back++;
	s->pushed++;
	LIST_FOREACH(c, &u->contacts, user_entry)
		s->pushed++;
}

/* the answer to one read (NULL: none in time, or the gateway stops) */
static void
sync_got(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	struct roster_get *g = arg;
	struct bridge *br = gw->bridge;
	struct roster_sync *s = br ? br->rsync : NULL;
	const char *type = reply ? xmpp_stanza_get_type(reply) : NULL;
	struct br_user *u;
	char cause[256];
	size_t stray = 0;
	long pushed;

	if (br == NULL || br->stopping || s == NULL || s->gen != g->gen)
		goto out;		/* a newer grant has its own round */
	s->inflight--;
	if (sync_link_down(gw)) {
		sync_interrupted(s);
		goto out;
	}
	u = br_user_by_ident(br, g->ident);
	if (u == NULL || !roster_granted_for(br, u->jid))
		goto next;
	if (type && strcmp(type, "result") == 0) {
		/* no <query/> at all reads as an empty roster */
		pushed = sync_user(br, u, xmpp_stanza_get_child_by_name_and_ns(reply,
		    "query", NS_ROSTER), &stray);
		if (pushed >= 0) {
			s->read++;
			s->pushed += (size_t)pushed;
			s->stray += stray;
			goto next;
		}
		log_error("bridge", "out of memory comparing %s's roster:"
		    " every item pushed", u->jid);
	} else if (reply != NULL && !s->get_refused) {
		s->get_refused = 1;
		log_warn("bridge", "the server refused to read %s's roster (%s):"
		    " every item is pushed for the users left", u->jid,
		    gw_iq_error_text(reply, cause, sizeof(cause)));
	}
	sync_push_all(br, s, u);
next:
	sync_pump(br);
out:
	free(g);
}

/* a privileged roster get (XEP-0356 roster access "get"): to her bare
 * JID, from us */
static int
sync_read(struct bridge *br, struct roster_sync *s, struct br_user *u)
{
	struct gw *gw = br->gw;
	struct roster_get *g;
	xmpp_stanza_t *st;
	int rc = -1;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	g->gen = s->gen;
	g->ident = u->ident;
	st = br_stanza("iq", "get", gw->cfg.component_jid, u->jid);
	if (st && gw_add_child(st, "query", NS_ROSTER) != NULL)
		rc = gw_iq_request(gw, st, GW_IQ_ROSTER, roster_request_ms(gw),
		    sync_got, g);
	if (st)
		xmpp_stanza_release(st);
	if (rc == -1)
		free(g);
	return rc;
}

static void
sync_pump(struct bridge *br)
{
	struct roster_sync *s = br->rsync;
	struct timespec t1;
	struct br_user *u;

	while (!s->done && s->inflight < ROSTER_SYNC_WINDOW && s->next < s->n) {
		u = br_user_by_ident(br, s->idents[s->next++]);
		if (u == NULL || !roster_granted_for(br, u->jid))
			continue;
		if (s->get_refused) {
			sync_push_all(br, s, u);
		} else if (sync_read(br, s, u) == -1) {
			if (sync_link_down(br->gw)) {
				sync_interrupted(s);
				return;
			}
			log_error("bridge", "cannot read %s's roster (out of"
			    " memory?): every item pushed", u->jid);
			sync_push_all(br, s, u);
		} else {
			s->inflight++;
		}
	}
	if (s->inflight || s->next < s->n || s->done)
		return;
	s->done = 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("bridge", "roster sync: %zu roster(s) read, %zu item(s) pushed,"
	    " %zu user(s) pushed in full without a read, %zu stray item(s),"
	    " %ld ms", s->read, s->pushed, s->fell_back, s->stray,
	    (long)((t1.tv_sec - s->t0.tv_sec) * 1000 +
	    (t1.tv_nsec - s->t0.tv_nsec) / 1000000));
}

void
roster_sync_start(struct bridge *br, int can_get)
{
	struct roster_sync *s = br->rsync;
	struct br_user *u;
	size_t n = 0;

	if (can_get && s == NULL && (s = br->rsync = calloc(1, sizeof(*s))) == NULL)
		log_error("bridge", "out of memory: rosters are pushed without"
		    " being read");
	if (s) {
		/* a new grant: the round of the previous one ends here */
		s->gen++;
		s->n = s->next = 0;
		s->inflight = 0;
		s->get_refused = s->done = 0;
		s->read = s->pushed = s->fell_back = s->stray = 0;
	}
	LIST_FOREACH(u, &br->users, entry)
		n += roster_granted_for(br, u->jid) != 0;
	if (s && can_get && n > s->cap) {
		int64_t *p = realloc(s->idents, n * sizeof(*p));

		if (p == NULL) {
			log_error("bridge", "out of memory: rosters are pushed"
			    " without being read");
			can_get = 0;
		} else {
			s->idents = p;
			s->cap = n;
		}
	}
	if (!can_get || s == NULL) {
		/* a grant to write only: make every roster right, idempotently */
		LIST_FOREACH(u, &br->users, entry)
			if (roster_granted_for(br, u->jid))
				roster_push_all(br, u);
		if (s)
			s->done = 1;
		return;
	}
	LIST_FOREACH(u, &br->users, entry)
		if (roster_granted_for(br, u->jid))
			s->idents[s->n++] = u->ident;
	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	sync_pump(br);
}

void
roster_sync_free(struct bridge *br)
{
	if (br->rsync == NULL)
		return;
	free(br->rsync->idents);
	free(br->rsync);
	br->rsync = NULL;
}
