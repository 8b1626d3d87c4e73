/*
 * commands — XEP-0050 ad-hoc commands on the component JID, with XEP-0004
 * forms, for admins (identities, anyone's contacts, status) and for every
 * user (their own identity and contacts).  The work itself is provision.h;
 * this module turns forms into calls and results into notes.
 *
 * Node names are an interface: operators and tests script them.
 *   admins: create-identity delete-identity list-identities add-contact
 *           remove-contact list-contacts status
 *   users:  my-identity add-contact remove-contact list-contacts set-nick
 *           register (registration = open, no identity yet)
 */
#ifndef GW_COMMANDS_H
#define GW_COMMANDS_H

#include <strophe.h>

struct gw;

#define COMMANDS_NS "http://jabber.org/protocol/commands"

/*
 * An <iq type='set'> carrying <command xmlns=COMMANDS_NS> to the component
 * JID: 1 when handled (and answered), 0 when it is not a command.
 */
int commands_handle_iq(struct gw *gw, xmpp_stanza_t *iq);

/*
 * Append to a disco#items <query> one <item jid= node= name=> for every
 * command `from_jid` may run (XEP-0050 §2.2).
 */
void commands_disco_items(struct gw *gw, const char *from_jid,
    xmpp_stanza_t *query);

/*
 * disco#info for a command node (XEP-0050 §2.3): 1 when the node is one
 * `from_jid` may run and the identity and features were appended.
 */
int commands_disco_info_node(struct gw *gw, const char *from_jid,
    const char *node, xmpp_stanza_t *query);

/* Tests only: session ages move `seconds` on (forms opened earlier are
 * older) without waiting for the clock. */
void commands_test_clock_skew(struct gw *gw, long seconds);

#endif
