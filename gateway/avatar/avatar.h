/*
 * avatar — XEP-0153 avatars across the bridge (issue 4, DESIGN.md "Flows").
 *
 * Peer -> XMPP: a new photo token in a peer's presence -> one vCard fetch
 * over the pipe -> image checked (magic bytes, size cap) and stored ->
 * the SHA1 of the image bytes rides in the contact's presence to the user,
 * and vcard-temp gets on the contact JID return it.  pascal's advertised
 * token never matches its image (BAREV.md §5): tokens and hashes are kept
 * apart.
 * User -> Barev: the user's vCard photo from the server -> scaled to at
 * most 96x96 and 64 KiB -> its SHA1 in the identity's Barev presence and
 * the image in answers to the peers' vCard gets.
 *
 * The bridge calls these hooks; the module tells it through the events it
 * registered at avatar_start() when something a user or a peer should see
 * has changed (it never calls the bridge itself).  Its state is a member
 * of struct gw (gw->avatar), so two gateways in one process are apart.
 */
#ifndef GW_AVATAR_H
#define GW_AVATAR_H

#include <stdint.h>
#include <strophe.h>

struct gw;

struct avatar_events {
	/* the contact's image changed: its presence to the user says so */
	void (*contact_changed)(void *arg, int64_t contact);
	/* the user's image changed: her presence to her peers says so */
	void (*identity_changed)(void *arg, int64_t ident);
};

int avatar_start(struct gw *gw, const struct avatar_events *ev, void *arg);
void avatar_stop(struct gw *gw);

/* a peer's presence arrived; token = its <photo> text, NULL/"" = none */
void avatar_peer_presence(struct gw *gw, int64_t ident, int64_t contact,
    const char *token);
/* an iq from a peer (vCard get, or the result of our vCard fetch);
 * 1 = handled */
int avatar_peer_iq(struct gw *gw, int64_t ident, int64_t contact,
    xmpp_stanza_t *iq);
/* XEP-0153 hash of the contact's image for its presence, or NULL */
const char *avatar_contact_hash(struct gw *gw, int64_t contact);
/* add <PHOTO><TYPE/><BINVAL/></PHOTO> to a vCard reply; 0 if none */
int avatar_contact_vcard(struct gw *gw, int64_t contact, xmpp_stanza_t *vcard);

/* a presence from the user (may carry vcard-temp:x:update) */
void avatar_user_presence(struct gw *gw, int64_t ident, xmpp_stanza_t *st);
/* SHA1 of the identity's (scaled) avatar for its Barev presence, or NULL */
const char *avatar_identity_hash(struct gw *gw, int64_t ident);

/* forget what belongs to a deleted contact / identity */
void avatar_forget_contact(struct gw *gw, int64_t contact);
void avatar_forget_identity(struct gw *gw, int64_t ident);

/*
 * The image side (avatar_image.c): pure functions, no I/O, testable alone.
 * Buffers they return are malloc'd; the caller frees them.
 */
#define AVATAR_MAX_SIDE		96	/* BAREV.md §5: purple's own limit */
#define AVATAR_OUT_MAX_BYTES	65536	/* ditto: what we send to peers */
#define AVATAR_SRC_MAX_PIXELS	(16L * 1024 * 1024)	/* decode bound */

/* "image/png", "image/jpeg" or "image/gif" by magic bytes, else NULL */
const char *avatar_image_sniff(const unsigned char *data, size_t len);
/* width and height from the header, without decoding; 0 or -1 */
int avatar_image_dims(const unsigned char *data, size_t len, int *w, int *h);
/* lower-case hex SHA1 of the bytes (XEP-0153's hash) into hex[41]; -1 (and
 * "") when out of memory */
int avatar_image_sha1(const unsigned char *data, size_t len, char hex[41]);
/*
 * An image a Barev peer accepts: at most max_side x max_side pixels
 * (aspect kept, never enlarged) and max_bytes bytes.  A source already
 * within both limits is kept byte for byte; others are resampled to PNG
 * (JPEG when PNG does not fit).  0 with out, outlen and mime set, -1 when
 * the bytes are not a png/jpeg/gif we can decode or nothing fits.
 */
int avatar_image_fit(const unsigned char *data, size_t len, int max_side,
    size_t max_bytes, unsigned char **out, size_t *outlen, const char **mime);
/* base64 without whitespace (BAREV.md §5: "on one line"); NULL on failure */
char *avatar_b64_encode(const unsigned char *data, size_t len);
/* decode, ignoring whitespace (vCards wrap lines); -1 if not base64 */
int avatar_b64_decode(const char *text, unsigned char **out, size_t *outlen);

#endif
