/*
 * chatcmd — the provisioning commands as plain chat with the gateway JID,
 * for clients without XEP-0050 (Conversations, Dino): "help", "whoami",
 * "add bob@201:abcd::1 Bob", "admin create alice@example.org alice 201::5".
 * Every answer is plain text from the gateway JID; unknown input gets the
 * help text, which lists only what the sender may run.
 */
#ifndef GW_CHATCMD_H
#define GW_CHATCMD_H

#include <strophe.h>

struct gw;

/*
 * A <message> to the component JID.  Answers commands in a type='chat'
 * message to the sender's full JID.  Returns 1 when the message was for
 * the gateway itself (answered, or deliberately ignored: errors, groupchat,
 * headlines and body-less chat states), 0 when it is addressed elsewhere.
 */
int chatcmd_handle_message(struct gw *gw, xmpp_stanza_t *msg);

#endif
