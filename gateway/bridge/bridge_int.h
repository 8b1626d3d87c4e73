/*
 * bridge_int — state shared by bridge.c (presence, barevlink events),
 * relay.c (messages, chat states, receipts, outbox, inbox) and roster.c
 * (roster items, the gateway JID's presence).  Private to those files.
 */
#ifndef GW_BRIDGE_INT_H
#define GW_BRIDGE_INT_H

#include <sys/queue.h>
#include <stdint.h>
#include <time.h>
#include <strophe.h>

#include "passthru.h"
#include "translate.h"
#include "addr.h"
#include "avatar.h"
#include "store.h"

struct event;
struct gw;
struct roster_sync;
struct pep;

/* One connected resource of a local user (presence aggregation). */
struct br_resource {
	LIST_ENTRY(br_resource) entry;
	char *resource;
	int priority;
	enum tr_show show;
	char *status;
};


/* A local user with a Barev identity. */
struct br_user {
	LIST_ENTRY(br_user) entry;
	struct bridge *br;
	int64_t ident;
	char jid[STORE_JID_MAX];
	char nick[GW_NICK_MAX + 1];
	char address[GW_ADDR_TEXT];
	int port;
	LIST_HEAD(, br_resource) resources;
	LIST_HEAD(, br_contact) contacts;	/* this user's, via user_entry */
	int online;		/* any resource available */
	/* online at her peers through her server's restart (she had a
	 * resource when the link dropped, none after it came back) until
	 * she logs back in or the hold ends: no goodbye, no re-dial */
	int held;
};

/*
 * An outbox row handed to barevlink: in `inflight` until the kernel has it
 * (bl `sent`), then in `unread` until a ping sent after it is answered
 * (the peer read it: the row is deleted, the receipt sent).
 */
struct br_inflight {
	TAILQ_ENTRY(br_inflight) entry;
	int64_t row;
	int want_receipt;
	char *xmpp_id;
	char *from_jid;
	size_t body_len;	/* counted as relayed once in the kernel */
	uint64_t ping;		/* unread: the ping after it, 0 = none yet */
};

struct br_contact {
	LIST_ENTRY(br_contact) entry;
	LIST_ENTRY(br_contact) user_entry;	/* in user->contacts */
	int64_t id;
	int64_t ident;
	struct bridge *br;
	struct br_user *user;
	/* Four strings in one allocation sized to them, owned through `nick`
	 * (contact_strings() in bridge.c): a provisioned contact costs its
	 * text, not the largest text a JID or a name may have (issue 13). */
	char *nick;
	char *address;
	char *name;		/* "" = none */
	char *jid;		/* contact@component (bare) */
	int port;
	/* the peer as seen from XMPP */
	int pipe_up;
	int available;		/* announced available to the user */
	char show[8];
	char *status;
	/* XMPP -> Barev */
	int outbox_queued;	/* rows waiting in the store (approximate) */
	/* handed over, not yet in the kernel; in it, not yet confirmed read */
	TAILQ_HEAD(br_inflight_q, br_inflight) inflight;
	struct br_inflight_q unread;
	uint64_t read_ping;	/* the ping confirming `unread`, 0 = none out */
	int pipe_cut;		/* bl pipe_cut: the pipe going down was cut */
	struct event *typing_ev;	/* refreshes <composing/> (BAREV.md §4) */
	int typing_ticks;
	int batch_mark;		/* relay.c: seen while committing a batch */
	/* peercaps.c: the peer said it is a barev-gateway (this pipe only) */
	int peer_gateway;
	uint64_t caps_probe;	/* our disco#info awaiting an answer, or 0 */
	int was_gateway;	/* ... on an earlier pipe (kept in the store) */
	struct event *caps_ev;	/* the queue waits for the answer until then */
	/* pep.c: OMEMO key reads across the pipe (this pipe only) */
	unsigned pep_subscribed;	/* device lists we subscribed it to */
	unsigned pep_waiting;	/* the user's reads waiting for the peer */
	unsigned pep_asking;	/* the peer's reads waiting for her server */
};

struct bridge {
	struct gw *gw;
	LIST_HEAD(, br_user) users;
	LIST_HEAD(, br_contact) contacts;
	/* tsearch(3) indexes of the lists above: every stanza and every
	 * Barev event looks one of them up */
	void *users_by_ident, *users_by_jid, *contacts_by_id;
	/* contacts by (identity, nick without case, address): what a JID on
	 * the component names for one user (br_contact_for) */
	void *contacts_by_addr;
	/* contacts by (identity, their JID without case or resource): the
	 * JID the server writes is the one the gateway pushed, so most
	 * lookups end here without parsing it (br_contact_for) */
	void *contacts_by_jid;
	struct event *ttl_ev;
	struct event *resync_ev;	/* end of the re-learning after a reconnect */
	struct event *hold_ev;		/* end of the server-restart hold */
	int resyncing;
	int stopping;		/* bridge_shutdown() ran: no new dials */
	/* outbox rows in the kernel, deleted together on the next loop turn */
	int64_t *done_rows;
	size_t done_n, done_cap;
	struct event *done_ev;
	/* messages accepted from one read of the server link, committed in
	 * one transaction before any of them is handed to a pipe (relay.c) */
	struct br_accepted *acc;
	size_t acc_n, acc_cap;
	struct event *acc_ev;
	char *privileged_host;	/* server host that granted roster both/set */
	struct roster_sync *rsync;	/* rostersync.c: the reads of a grant */
	int roster_refused;	/* ... but refused a push: until one works,
				 * subscription requests do the job */
	uint64_t next_cookie;
	struct pep *pep;	/* pep.c's reads waiting for the peer */
};

/* policy.c: barevlink's permit() event; WARNs once after the load */
int br_permit(void *arg, const char *local, const char *remote);
void br_policy_warn(struct bridge *br);

/* registry.c: users and contacts in memory */
int br_registry_load(struct bridge *br);
void br_contact_free(struct bridge *br, struct br_contact *c);
void br_user_free(struct bridge *br, struct br_user *u);	/* no contacts left */

/* presence.c */
/* the contact's presence to `to` (NULL: its user) as it stands */
void br_contact_presence_send(struct bridge *br, struct br_contact *c,
    const char *to);
void br_peer_presence(struct bridge *br, struct br_contact *c,
    xmpp_stanza_t *st);
void br_user_presence(struct bridge *br, struct br_user *u, xmpp_stanza_t *st,
    int avail);
/* what her resources add up to, to her peers */
void br_user_publish(struct bridge *br, struct br_user *u);
void br_resource_free(struct br_resource *r);
/* what the avatar module tells the bridge (arg: the bridge) */
extern const struct avatar_events br_avatar_events;
/* bridge.c: what the transfer module tells */
extern const struct transfer_events br_transfer_events;

/* bridge.c */
struct br_user *br_user_by_ident(struct bridge *br, int64_t ident);
struct br_user *br_user_by_jid(struct bridge *br, const char *bare);
struct br_contact *br_contact_by_id(struct bridge *br, int64_t id);
/* the contact that `to` (a JID on the component) names for the user */
struct br_contact *br_contact_for(struct br_user *u, const char *to);
/* ... and by its parts (nick compared without case, address as stored) */
struct br_contact *br_contact_by_addr(struct bridge *br, int64_t ident,
    const char *nick, const char *address);
void br_update_want(struct bridge *br, struct br_contact *c);
/* the pipe is up and usable: flush the queue, offer transfers */
void br_pipe_ready(struct bridge *br, struct br_contact *c);
xmpp_stanza_t *br_stanza(const char *name, const char *type, const char *from,
    const char *to);
void br_add_text_child(xmpp_stanza_t *parent, const char *name, const char *ns,
    const char *text);
/* error reply with a human text; does not answer errors */
void br_error_reply(struct gw *gw, xmpp_stanza_t *st, const char *type,
    const char *cond, const char *text);
char *br_bare(const char *jid);		/* malloc'd, lower-cased */
char *br_resource_of(const char *jid);	/* malloc'd or NULL */

/* relay.c */
int relay_message_from_user(struct bridge *br, struct br_user *u,
    struct br_contact *c, xmpp_stanza_t *st);
void relay_message_from_peer(struct bridge *br, struct br_contact *c,
    xmpp_stanza_t *st);
void relay_pipe_up(struct bridge *br, struct br_contact *c);
void relay_pipe_down(struct bridge *br, struct br_contact *c);
void relay_sent(struct bridge *br, struct br_contact *c, uint64_t token);
void relay_ping_done(struct bridge *br, struct br_contact *c, uint64_t cookie,
    int ok);
void relay_contact_forget(struct bridge *br, struct br_contact *c);
/* commit the messages accepted so far: every stanza that is not a message
 * to a contact passes this first, so nothing overtakes them */
void relay_commit_accepted(struct bridge *br);
void relay_flush_inbox(struct bridge *br);
int relay_start(struct bridge *br);
void relay_stop(struct bridge *br);
/* deliver a stanza to XMPP now, or hold it in the inbox if the link is down */
void relay_to_user(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st,
    int durable);
void relay_typing_stop(struct br_contact *c);	/* her <composing/> lapses */

/* outbox.c (relay.c's rule): rows to the pipes and the proof they were read */
void outbox_contact_forget(struct br_contact *c);
/* hand one committed row to c's pipe now: 0, or -1 (it stays queued) */
int outbox_handoff(struct bridge *br, struct br_contact *c,
    const struct store_outmsg *m);
void outbox_flush(struct bridge *br, struct br_contact *c);	/* its queue */
/* delete the rows proved read now (the batch timer's work; at stop) */
void outbox_forget_rows_now(struct bridge *br);
/* the row is about to be deleted as read: an expiry must leave it */
int outbox_row_forgotten(struct bridge *br, int64_t row);

/* peercaps.c: is the peer another barev-gateway? (docs/design.md) */
#define PEERCAPS_FEATURE "urn:barev:gateway:0"
/* asks; 1 when it will call br_pipe_ready() itself once answered */
int peercaps_pipe_up(struct bridge *br, struct br_contact *c);
void peercaps_pipe_down(struct br_contact *c);
void peercaps_forget(struct br_contact *c);
/* might the contact's next message go to a gateway? (keep its extras) */
#define peercaps_maybe_gateway(c) ((c)->peer_gateway || (c)->was_gateway)
/* a disco#info get or our probe's answer from the peer: 1 when handled */
int peercaps_peer_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st);
/* features a contact JID shows on XMPP because its peer is a gateway */
const char *const *peercaps_passed(const struct br_contact *c, size_t *n);

/* who is who on c's pipe, for passthru (translate/passthru.h) */
static inline struct tr_pair
br_pair(const struct br_contact *c)
{
	struct tr_pair p = { c->user->jid, c->user->nick, c->user->address,
	    c->jid, c->nick, c->address };

	return p;
}

/* pep.c: OMEMO keys between gateways (XEP-0384 devices and bundles) */
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
/* a pubsub iq from a user to a contact JID (always handled) */
int pep_user_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st);
/* an iq from the peer: 1 if it was a key read or the answer to ours */
int pep_peer_iq(struct bridge *br, struct br_contact *c, xmpp_stanza_t *st);
/* messages carrying a PEP event, each way: 1 when consumed */
int pep_user_message(struct bridge *br, struct br_contact *c,
    xmpp_stanza_t *st);
int pep_peer_message(struct bridge *br, struct br_contact *c,
    xmpp_stanza_t *st);
void pep_pipe_down(struct bridge *br, struct br_contact *c);
int pep_start(struct bridge *br);
void pep_stop(struct bridge *br);

/* roster.c */
/* the user's server granted us her roster (XEP-0356), working or not */
int roster_granted_for(struct bridge *br, const char *user_jid);
/* ... and it is not refusing pushes: a push alone does the job */
int roster_privileged_for(struct bridge *br, const char *user_jid);
/* put `item` (named `name`) into the user's roster, or take it out;
 * `probe`: once a push put it there, probe her presence from it */
void roster_item(struct bridge *br, const char *user, const char *item,
    const char *name, int remove, int probe);
void roster_contact(struct bridge *br, struct br_contact *c, int remove,
    int probe);
/* tests: how long a push may go unanswered (0: the default) */
void roster_test_push_ms(struct gw *gw, unsigned ms);
/* how long a roster push or get may go unanswered */
unsigned roster_request_ms(struct gw *gw);
/* push every item the gateway wants in u's roster (no read first) */
void roster_push_all(struct bridge *br, struct br_user *u);
/* the gateway JID as an item of her roster */
void roster_gateway_add(struct bridge *br, struct br_user *u);
/* ... and online for her (roster_gateway_add + available presence) */
void roster_gateway_join(struct bridge *br, struct br_user *u);
/* the gateway JID's presence to `to` (type NULL = available) */
void roster_gateway_presence(struct bridge *br, const char *to,
    const char *type);
/* a presence to the gateway JID: probes and subscriptions answered (1);
 * 0 for the user's available/unavailable, which the bridge aggregates */
int roster_gateway_stanza(struct bridge *br, xmpp_stanza_t *st,
    const char *type, const char *from_bare);

/* rostersync.c */
/* a roster grant: make every granted user's roster right; `can_get` (the
 * grant reads too): read each roster first and push only the differences */
void roster_sync_start(struct bridge *br, int can_get);
/* bridge_free(): the sync's memory (its requests were cancelled before) */
void roster_sync_free(struct bridge *br);

#endif
