/*
 * translate — the gateway's reason to exist, without anything else: XMPP
 * presence in, what a Barev peer is told out; Barev presence in, what the
 * XMPP user is told out; the same for messages and chat states, and the
 * roster items the gateway writes.  Pure functions of their arguments: no
 * sending, no store, no timers, no event loop (docs/design.md "Layers"), so
 * tests/gateway/test_translate.c covers them alone.
 */
#ifndef GW_TRANSLATE_H
#define GW_TRANSLATE_H

#include <strophe.h>

/* an XMPP <show>, in the order of tr_show_rank() */
enum tr_show { TR_SHOW_NONE = 0, TR_SHOW_CHAT, TR_SHOW_AWAY, TR_SHOW_XA,
    TR_SHOW_DND };

/* RFC 6121 §4.7.2.1 <show> text (NULL: none); anything else is none */
enum tr_show tr_show_parse(const char *text);

/*
 * One of the user's resources, as far as her Barev presence goes.  Her
 * peers see one presence for all of them: the highest priority wins, then
 * the most available show.
 */
struct tr_resource {
	int priority;
	enum tr_show show;
	const char *status;
};
/* does `a` speak for the user rather than `b` (b may be NULL)? */
int tr_resource_wins(const struct tr_resource *a, const struct tr_resource *b);

/*
 * What a Barev peer can show (BAREV.md §3): away (for away and xa: purple
 * shows xa as available), dnd, or nothing (available, chat).
 */
const char *tr_show_to_barev(enum tr_show show);

/* A presence stanza from a Barev peer, read (BAREV.md §3). */
struct tr_peer_presence {
	int ignore;		/* type error: no change at all */
	int available;		/* unavailable, or pascal's <show>offline */
	char show[8];		/* "", away, xa, dnd, chat */
	char *status;		/* NULL: none; malloc'd */
	/* a vcard-temp:x:update element in a presence not typed unavailable
	 * (pascal's <show>offline</show> still tells its avatar) */
	int avatar;
	char *photo;		/* its <photo> token, NULL when empty */
};
/* Fills `out`; free it with tr_peer_presence_clear(). */
void tr_peer_presence_read(xmpp_stanza_t *st, struct tr_peer_presence *out);
void tr_peer_presence_clear(struct tr_peer_presence *p);

/*
 * The contact's presence for the user's XMPP client: from `from` (the
 * contact's full JID) to `to`, available with show/status and the XEP-0153
 * photo hash ("" = no avatar), or unavailable (status only).  NULL on no
 * memory.
 */
xmpp_stanza_t *tr_contact_presence(const char *from, const char *to,
    int available, const char *show, const char *status,
    const char *photo_hash);

/* ---- messages and chat states (BAREV.md §4) ---- */

#define TR_NS_CHATSTATES "http://jabber.org/protocol/chatstates"

/* The XEP-0085 state a message carries (a static string), NULL: none.
 * purple's legacy jabber:x:event <composing/> is not one. */
const char *tr_chatstate_of(xmpp_stanza_t *st);

/*
 * What a user's chat state becomes at a Barev peer, which reads body-less
 * chat-state messages only (barevlink's bl_send_chatstate writes them).
 * purple's typing indicator lasts ~1 s: composing is repeated while she
 * types; any other state ends the typing with paused (barevlink adds
 * active: pascal clears on paused, purple on active), except an active
 * while she was not typing, which tells a peer nothing new.
 */
enum tr_typing {
	TR_TYPING_NONE = 0,	/* nothing sent, the repeat stopped */
	TR_TYPING_COMPOSING,	/* composing now, then repeated */
	TR_TYPING_STOP,		/* the repeat stopped, paused sent */
};
enum tr_typing tr_user_chatstate(const char *state, int was_typing);

/* A user's message to a contact, read. */
struct tr_user_message {
	char *body;		/* NULL: none or empty; malloc'd */
	const char *state;	/* XEP-0085, static; NULL: none */
	int want_receipt;	/* a XEP-0184 request */
};
/* Fills `out`; free it with tr_user_message_clear(). */
void tr_user_message_read(xmpp_stanza_t *st, struct tr_user_message *out);
void tr_user_message_clear(struct tr_user_message *m);

/*
 * What becomes of it.  A body (or, to a gateway peer, extras worth a
 * message of their own: `durable_extra`) is a row of the outbox, and a
 * Barev peer gets the body alone (BAREV.md §4: a chat state beside a body
 * makes purple drop the body).  Else a chat state goes as it is, transient
 * (tr_user_chatstate()); else nothing goes.
 */
enum tr_user_send {
	TR_SEND_NOTHING = 0,
	TR_SEND_STATE,
	TR_SEND_ROW,
};
enum tr_user_send tr_user_send(const struct tr_user_message *m,
    int durable_extra);

/* A message from a Barev peer, read (BAREV.md §4). */
struct tr_peer_message {
	char *body;		/* NULL: none or empty; malloc'd */
	const char *state;	/* XEP-0085, static; NULL: none */
};
/* Fills `out`; free it with tr_peer_message_clear(). */
void tr_peer_message_read(xmpp_stanza_t *st, struct tr_peer_message *out);
void tr_peer_message_clear(struct tr_peer_message *m);

/*
 * The message the user's XMPP client gets for `m`, from `from` (the
 * contact's full JID) to `to`.  With a body: type chat, `id` (stable
 * across the inbox), the plain body and the chat state beside it (XMPP
 * clients read both; purple's XHTML-IM and jabber:x:event are left
 * behind), *durable set.  A chat state alone: no id, the state and a
 * XEP-0334 no-store hint, *durable clear (typing is transient).  NULL
 * when there is nothing to tell, or on no memory.
 */
xmpp_stanza_t *tr_user_message(const char *from, const char *to,
    const char *id, const struct tr_peer_message *m, int *durable);

/*
 * The XEP-0184 receipt for the user's message `xmpp_id`, once its Barev
 * peer read it (relay.c knows when): from the contact's full JID `from` to
 * the full JID `to` that asked, with its own `id`.  NULL on no memory.
 */
xmpp_stanza_t *tr_receipt(const char *from, const char *to, const char *id,
    const char *xmpp_id);

/* ---- roster items (RFC 6121 §2, XEP-0356 pushes) ---- */

#define TR_ROSTER_GROUP "Barev"			/* the group of every item */
#define TR_ROSTER_GATEWAY_NAME "Barev gateway"	/* the gateway JID's name */

/* A contact's name in the roster: the one she gave it, else its nick;
 * never empty for a contact with a nick (clients show a bare escaped JID
 * otherwise). */
const char *tr_contact_name(const char *name, const char *nick);

/*
 * The roster push for `item` (a contact's JID, its localpart XEP-0106
 * escaped by addr.c, or the gateway's own): an iq set from `from` to
 * `user` with one item, named `name`, subscription both, in the one group
 * "Barev"; or subscription remove.  No id: the caller's request tracking
 * sets it.  NULL on no memory.
 */
xmpp_stanza_t *tr_roster_push(const char *from, const char *user,
    const char *item, const char *name, int remove);

/* Without the roster privilege, the item asks for itself (RFC 6121 §3.1):
 * a subscribe presence from `item` to `user` with `name` as its XEP-0172
 * nick, so her client can name it.  NULL on no memory. */
xmpp_stanza_t *tr_roster_request(const char *item, const char *user,
    const char *name);

/* Is roster item `el`, as the user's server reports it, what a push of
 * `name` would leave (name, both without ask, the group "Barev" alone)? */
int tr_roster_item_right(xmpp_stanza_t *el, const char *name);

/*
 * What a contact JID answers about itself.  disco#info: a client named
 * `nick` with what every contact supports (chat states, receipts, ping,
 * vCard) and `extra` features (n of them; what passes to a gateway peer).
 * vCard: NICKNAME `nick`, FN the contact's name (tr_contact_name); the
 * avatar's PHOTO is the caller's to add.  The payload element alone;
 * NULL on no memory.
 */
xmpp_stanza_t *tr_contact_disco(const char *nick, const char *const *extra,
    size_t n);
xmpp_stanza_t *tr_contact_vcard(const char *nick, const char *name);

#endif
