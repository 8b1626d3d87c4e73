/*
 * avatar — XEP-0153 avatars across the bridge (DESIGN.md "Flows",
 * BAREV.md §5).
 *
 * One `owner` per contact or identity that has, or is getting, an image:
 * the token it advertised last (settled once we asked for it), the SHA1 of
 * the image we hold, and at most one vCard fetch in flight.  A token seen
 * during a fetch waits in `next` and is fetched when the first finishes, so
 * a burst of presences (pascal sends each one twice; the server copies the
 * user's to every contact JID) costs one fetch.  The images themselves
 * live only in the store and are read when a vCard is asked for.
 */
#include <sys/queue.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "avatar.h"
#include "barevlink.h"
#include "clock.h"
#include "gw.h"
#include "iqtrack.h"
#include "log.h"
#include "store.h"
#include "xmlstream.h"

#define NS_VCARD		"vcard-temp"
#define NS_VCARD_UPDATE		"vcard-temp:x:update"
#define PEER_FETCH_MS		20000	/* unknown iqs are never answered (§5) */
#define SERVER_FETCH_MS		15000

enum av_kind { AV_CONTACT, AV_IDENTITY };

struct av_owner;

struct av_fetch {
	struct av_owner *o;		/* NULL once the owner is gone */
	char token[STORE_AVATAR_TOKEN_MAX + 1];
	char id[32];			/* peer fetches: our iq id */
	struct event *timer;		/* peer fetches; iqtrack times the others */
};

struct av_owner {
	LIST_ENTRY(av_owner) entry;
	enum av_kind kind;
	int64_t id;
	char token[STORE_AVATAR_TOKEN_MAX + 1];	/* settled; "" = none yet */
	char sha1[41];			/* of the stored image; "" = none */
	struct av_fetch *fetch;
	char next[STORE_AVATAR_TOKEN_MAX + 1];	/* seen during the fetch */
	char *jid;			/* identities: the user's bare JID */
	struct av_state *av;		/* the module it belongs to */
};

struct av_state {
	struct gw *gw;
	struct avatar_events ev;	/* the bridge's: what users see changed */
	void *ev_arg;
	LIST_HEAD(, av_owner) owners;
	void *by_key;			/* tsearch(3) of owners by (kind, id):
					 * the server copies a user's presence
					 * to each contact JID, each looks it up */
	unsigned long long next_id;
};

static void peer_fetch_start(struct av_owner *, const char *);
static void user_fetch_start(struct av_owner *, const char *);

static const char *
kind_name(enum av_kind k)
{
	return k == AV_CONTACT ? STORE_AVATAR_CONTACT : STORE_AVATAR_IDENTITY;
}

static int
owner_cmp(const void *a, const void *b)
{
	const struct av_owner *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static struct av_owner *
owner_find(struct gw *gw, enum av_kind kind, int64_t id)
{
	struct av_state *av = gw->avatar;
	struct av_owner key;
	void **node;

	if (av == NULL)
		return NULL;
	key.kind = kind;
	key.id = id;
	node = tfind(&key, &av->by_key, owner_cmp);
	return node != NULL ? *node : NULL;
}

/* an identity's JID is known once her presence came (avatar_user_presence) */
static const char *
owner_jid(const struct av_owner *o)
{
	return o->jid != NULL ? o->jid : "";
}

static struct av_owner *
owner_get(struct gw *gw, enum av_kind kind, int64_t id)
{
	struct av_state *av = gw->avatar;
	struct av_owner *o = owner_find(gw, kind, id);

	if (o != NULL || av == NULL)
		return o;
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		log_error("avatar", "out of memory");
		return NULL;
	}
	o->kind = kind;
	o->id = id;
	o->av = av;
	if (tsearch(o, &av->by_key, owner_cmp) == NULL) {
		log_error("avatar", "out of memory");
		free(o);
		return NULL;
	}
	LIST_INSERT_HEAD(&av->owners, o, entry);
	return o;
}

static void
fetch_free(struct av_fetch *f)
{
	if (f->timer)
		event_free(f->timer);
	free(f);
}

/* The owner stops waiting.  A server fetch's struct stays with iqtrack,
 * which calls back exactly once; a peer fetch's is ours to free. */
static void
fetch_detach(struct av_owner *o)
{
	struct av_fetch *f = o->fetch;

	if (f == NULL)
		return;
	o->fetch = NULL;
	f->o = NULL;
	if (o->kind == AV_CONTACT)
		fetch_free(f);
}

static void
owner_free(struct av_owner *o)
{
	fetch_detach(o);
	tdelete(o, &o->av->by_key, owner_cmp);
	LIST_REMOVE(o, entry);
	free(o->jid);
	free(o);
}

static int
token_ok(const char *token)
{
	return token != NULL && *token != '\0' &&
	    strlen(token) <= STORE_AVATAR_TOKEN_MAX;
}

/* After a fetch: the token is answered for; a newer one is fetched now. */
static void
fetch_done(struct av_owner *o, const char *token)
{
	char next[sizeof(o->next)];

	snprintf(o->token, sizeof(o->token), "%s", token);
	snprintf(next, sizeof(next), "%s", o->next);
	o->next[0] = '\0';
	if (next[0] == '\0' || strcmp(next, o->token) == 0)
		return;
	if (o->kind == AV_CONTACT)
		peer_fetch_start(o, next);
	else
		user_fetch_start(o, next);
}

/* Store the owner's new image (data NULL = none); 1 if its hash changed. */
static int
owner_set_image(struct av_owner *o, const char *token, const unsigned char *data,
    size_t len, const char *mime)
{
	char sha1[41] = "";

	if (data != NULL && avatar_image_sha1(data, len, sha1) == -1) {
		/* an image stored without its hash would look like none */
		log_error("avatar", "cannot hash the avatar of %s %lld (out of"
		    " memory)", kind_name(o->kind), (long long)o->id);
		return 0;
	}
	if (store_avatar_set(o->av->gw->store, kind_name(o->kind), o->id, token,
	    sha1, mime, data, len, cm_wall_s()) != STORE_OK) {
		log_error("avatar", "cannot store the avatar of %s %lld",
		    kind_name(o->kind), (long long)o->id);
		return 0;
	}
	if (strcmp(o->sha1, sha1) == 0)
		return 0;
	snprintf(o->sha1, sizeof(o->sha1), "%s", sha1);
	return 1;
}

/* <vCard xmlns='vcard-temp'><PHOTO><BINVAL>…: the text, or NULL */
static char *
vcard_binval(xmpp_stanza_t *iq, int *has_vcard)
{
	xmpp_stanza_t *vc, *photo, *bin;

	vc = xmpp_stanza_get_child_by_name_and_ns(iq, "vCard", NS_VCARD);
	*has_vcard = vc != NULL;
	if (vc == NULL || (photo = xmpp_stanza_get_child_by_name(vc, "PHOTO")) == NULL ||
	    (bin = xmpp_stanza_get_child_by_name(photo, "BINVAL")) == NULL)
		return NULL;
	return xmpp_stanza_get_text(bin);
}

/* <PHOTO><TYPE/><BINVAL/></PHOTO> of the stored image into `vcard` */
static int
vcard_add_photo(struct gw *gw, enum av_kind kind, int64_t id, xmpp_stanza_t *vcard)
{
	struct store_avatar a;
	xmpp_stanza_t *photo;
	char *b64 = NULL;
	int rc = 0;

	if (store_avatar_get(gw->store, kind_name(kind), id, &a) != STORE_OK)
		return 0;
	if (a.data == NULL || a.mime[0] == '\0' ||
	    (b64 = avatar_b64_encode(a.data, a.len)) == NULL)
		goto out;
	if ((photo = gw_add_child(vcard, "PHOTO", NULL)) == NULL ||
	    gw_add_text_child(photo, "TYPE", a.mime) == -1 ||
	    gw_add_text_child(photo, "BINVAL", b64) == -1) {
		log_error("avatar", "out of memory");
		goto out;
	}
	rc = 1;
out:
	free(b64);
	free(a.data);
	return rc;
}

/* ---- peer -> XMPP ---- */

static void
peer_fetch_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct av_fetch *f = arg;
	struct av_owner *o = f->o;
	char token[sizeof(f->token)];

	(void)fd;
	(void)what;
	log_info("avatar", "contact %lld did not answer our vCard request %s",
	    (long long)o->id, f->id);
	snprintf(token, sizeof(token), "%s", f->token);
	fetch_detach(o);
	if (bl_contact_state(o->av->gw->bl, o->id) != BL_PIPE_UP) {
		/* the pipe died under the request: the presence on the next
		 * pipe asks again */
		o->next[0] = '\0';
		return;
	}
	/* a live peer that does not answer will not: not again until the
	 * token changes (or the gateway restarts) */
	fetch_done(o, token);
}

static void
peer_fetch_start(struct av_owner *o, const char *token)
{
	struct av_fetch *f;
	struct timeval tv = { PEER_FETCH_MS / 1000, (PEER_FETCH_MS % 1000) * 1000 };
	xmpp_stanza_t *iq = NULL;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		goto fail;
	f->o = o;
	snprintf(f->token, sizeof(f->token), "%s", token);
	snprintf(f->id, sizeof(f->id), "av-%llu", ++o->av->next_id);
	if ((f->timer = evtimer_new(o->av->gw->base, peer_fetch_timeout, f)) == NULL ||
	    (iq = xmpp_stanza_new(xs_ctx())) == NULL ||
	    xmpp_stanza_set_name(iq, "iq") != XMPP_EOK ||
	    xmpp_stanza_set_type(iq, "get") != XMPP_EOK ||
	    xmpp_stanza_set_id(iq, f->id) != XMPP_EOK ||
	    gw_add_child(iq, "vCard", NS_VCARD) == NULL)
		goto fail;
	if (bl_send_stanza(o->av->gw->bl, o->id, iq, 0) == -1) {
		/* no pipe: the next presence (there is one per pipe) retries */
		log_debug("avatar", "cannot ask contact %lld for its vCard: no pipe",
		    (long long)o->id);
		goto drop;
	}
	evtimer_add(f->timer, &tv);
	o->fetch = f;
	xmpp_stanza_release(iq);
	log_debug("avatar", "asked contact %lld for its vCard (token %s)",
	    (long long)o->id, f->token);
	return;
fail:
	log_error("avatar", "out of memory");
drop:
	if (iq)
		xmpp_stanza_release(iq);
	if (f)
		fetch_free(f);
}

void
avatar_peer_presence(struct gw *gw, int64_t ident, int64_t contact,
    const char *token)
{
	struct av_owner *o;

	(void)ident;
	/* purple sends <photo/> with every presence: not a change (§5) */
	if (token == NULL || *token == '\0')
		return;
	if (!token_ok(token)) {
		log_debug("avatar", "contact %lld: photo token too long, ignored",
		    (long long)contact);
		return;
	}
	if ((o = owner_get(gw, AV_CONTACT, contact)) == NULL)
		return;
	if (strcmp(o->token, token) == 0)
		return;
	if (o->fetch) {
		if (strcmp(o->fetch->token, token) != 0)
			snprintf(o->next, sizeof(o->next), "%s", token);
		return;
	}
	peer_fetch_start(o, token);
}

/* The peer's answer to our vCard get. */
static void
peer_fetch_result(struct av_owner *o, xmpp_stanza_t *iq)
{
	struct gw *gw = o->av->gw;
	const char *type = xmpp_stanza_get_type(iq), *mime;
	char token[STORE_AVATAR_TOKEN_MAX + 1];
	unsigned char *data = NULL;
	size_t len = 0;
	char *b64 = NULL;
	int has_vcard, changed = 0;

	snprintf(token, sizeof(token), "%s", o->fetch->token);
	fetch_detach(o);
	if (strcmp(type, "error") == 0) {
		log_info("avatar", "contact %lld refused its vCard", (long long)o->id);
		goto settle;
	}
	b64 = vcard_binval(iq, &has_vcard);
	if (b64 == NULL || b64[strspn(b64, " \t\r\n")] == '\0') {
		/* an empty vCard: the peer has no avatar (any more) */
		changed = owner_set_image(o, token, NULL, 0, NULL);
		goto done;
	}
	/* not worth decoding: base64 is 4 characters per 3 bytes */
	if (strlen(b64) / 4 * 3 > (size_t)gw->cfg.avatar_max_bytes + 3) {
		log_warn("avatar", "contact %lld: avatar of about %zu bytes exceeds "
		    "avatar_max_bytes (%zu), ignored", (long long)o->id,
		    strlen(b64) / 4 * 3, (size_t)gw->cfg.avatar_max_bytes);
		goto settle;
	}
	if (avatar_b64_decode(b64, &data, &len) == -1) {
		log_warn("avatar", "contact %lld: vCard BINVAL is not base64, ignored",
		    (long long)o->id);
		goto settle;
	}
	if (len > (size_t)gw->cfg.avatar_max_bytes) {
		log_warn("avatar", "contact %lld: avatar of %zu bytes exceeds "
		    "avatar_max_bytes (%zu), ignored", (long long)o->id, len,
		    (size_t)gw->cfg.avatar_max_bytes);
		goto settle;
	}
	if ((mime = avatar_image_sniff(data, len)) == NULL) {
		log_warn("avatar", "contact %lld: avatar is not png/jpeg/gif, ignored",
		    (long long)o->id);
		goto settle;
	}
	changed = owner_set_image(o, token, data, len, mime);
	log_info("avatar", "contact %lld: %s avatar of %zu bytes, sha1 %s",
	    (long long)o->id, mime, len, o->sha1);
	goto done;
settle:
	/* keep the image we had; remember the token so it is not asked again */
	if (store_avatar_set_token(gw->store, STORE_AVATAR_CONTACT, o->id, token,
	    cm_wall_s()) != STORE_OK)
		log_error("avatar", "cannot store contact %lld's token", (long long)o->id);
done:
	free(b64);
	free(data);
	if (changed)
		o->av->ev.contact_changed(o->av->ev_arg, o->id);
	fetch_done(o, token);
}

/* A peer asks for our identity's vCard: BAREV.md §5, exactly. */
static void
peer_vcard_get(struct gw *gw, int64_t ident, int64_t contact, xmpp_stanza_t *iq)
{
	xmpp_stanza_t *reply, *vc;
	const char *id = xmpp_stanza_get_id(iq);

	if ((reply = xmpp_stanza_new(xs_ctx())) == NULL ||
	    xmpp_stanza_set_name(reply, "iq") != XMPP_EOK ||
	    xmpp_stanza_set_type(reply, "result") != XMPP_EOK ||
	    (id && xmpp_stanza_set_id(reply, id) != XMPP_EOK) ||
	    (vc = gw_add_child(reply, "vCard", NS_VCARD)) == NULL) {
		log_error("avatar", "out of memory");
		goto out;
	}
	if (owner_find(gw, AV_IDENTITY, ident) != NULL)
		vcard_add_photo(gw, AV_IDENTITY, ident, vc);
	if (bl_send_stanza(gw->bl, contact, reply, 0) == -1)
		log_debug("avatar", "vCard answer to contact %lld not sent: no pipe",
		    (long long)contact);
out:
	if (reply)
		xmpp_stanza_release(reply);
}

int
avatar_peer_iq(struct gw *gw, int64_t ident, int64_t contact, xmpp_stanza_t *iq)
{
	const char *type = xmpp_stanza_get_type(iq), *id = xmpp_stanza_get_id(iq);
	struct av_owner *o;

	if (type == NULL)
		return 0;
	if (strcmp(type, "get") == 0) {
		if (xmpp_stanza_get_child_by_name_and_ns(iq, "vCard", NS_VCARD) == NULL)
			return 0;
		peer_vcard_get(gw, ident, contact, iq);
		return 1;
	}
	if (strcmp(type, "result") != 0 && strcmp(type, "error") != 0)
		return 0;
	/* purple and pascal reuse id shapes like ours for their own gets, so
	 * only the type plus the id we are waiting on says it is our answer */
	if (id == NULL || (o = owner_find(gw, AV_CONTACT, contact)) == NULL ||
	    o->fetch == NULL || strcmp(o->fetch->id, id) != 0)
		return 0;
	peer_fetch_result(o, iq);
	return 1;
}

const char *
avatar_contact_hash(struct gw *gw, int64_t contact)
{
	struct av_owner *o = owner_find(gw, AV_CONTACT, contact);

	return o && o->sha1[0] ? o->sha1 : NULL;
}

int
avatar_contact_vcard(struct gw *gw, int64_t contact, xmpp_stanza_t *vcard)
{
	struct av_owner *o = owner_find(gw, AV_CONTACT, contact);

	if (o == NULL || o->sha1[0] == '\0')
		return 0;
	return vcard_add_photo(gw, AV_CONTACT, contact, vcard);
}

/* ---- user -> Barev ---- */

/* The user's vCard from the server: scale its photo for the peers. */
static void
user_fetch_cb(struct gw *gw, xmpp_stanza_t *reply, void *arg)
{
	struct av_fetch *f = arg;
	struct av_owner *o = f->o;
	unsigned char *data = NULL, *img = NULL;
	size_t len = 0, imglen = 0;
	const char *type, *mime = NULL;
	char *b64 = NULL;
	int has_vcard, changed = 0;

	(void)gw;			/* o->av->gw: the same */
	if (o == NULL) {		/* forgotten or stopping meanwhile */
		free(f);
		return;
	}
	o->fetch = NULL;
	if (reply == NULL) {
		/* not settled: the user's next presence asks again (iqtrack
		 * logged the timeout at WARN) */
		log_info("avatar", "no vCard from the server for %s", owner_jid(o));
		o->next[0] = '\0';
		free(f);
		return;
	}
	type = xmpp_stanza_get_type(reply);
	if (type == NULL || strcmp(type, "result") != 0) {
		/* iqtrack logged the cause at WARN and `status` shows it */
		log_info("avatar", "the server refused %s's vCard; peers keep"
		    " the previous avatar", owner_jid(o));
		goto done;
	}
	b64 = vcard_binval(reply, &has_vcard);
	if (b64 == NULL || b64[strspn(b64, " \t\r\n")] == '\0') {
		log_info("avatar", "%s's vCard has no photo", owner_jid(o));
		changed = owner_set_image(o, f->token, NULL, 0, NULL);
		goto done;
	}
	if (avatar_b64_decode(b64, &data, &len) == -1 ||
	    avatar_image_fit(data, len, AVATAR_MAX_SIDE, AVATAR_OUT_MAX_BYTES,
	    &img, &imglen, &mime) == -1) {
		log_warn("avatar", "%s's vCard photo is not a png/jpeg/gif we can "
		    "use (%zu bytes); peers keep the previous one", owner_jid(o), len);
		goto done;
	}
	changed = owner_set_image(o, f->token, img, imglen, mime);
	log_info("avatar", "%s: avatar for Barev peers is %s, %zu bytes, sha1 %s",
	    owner_jid(o), mime, imglen, o->sha1);
done:
	free(b64);
	free(data);
	free(img);
	if (changed)
		o->av->ev.identity_changed(o->av->ev_arg, o->id);
	fetch_done(o, f->token);
	free(f);
}

static void
user_fetch_start(struct av_owner *o, const char *token)
{
	struct gw *gw = o->av->gw;
	struct av_fetch *f;
	xmpp_stanza_t *iq = NULL;

	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (iq = xmpp_stanza_new(xs_ctx())) == NULL ||
	    xmpp_stanza_set_name(iq, "iq") != XMPP_EOK ||
	    xmpp_stanza_set_type(iq, "get") != XMPP_EOK ||
	    xmpp_stanza_set_from(iq, gw->cfg.component_jid) != XMPP_EOK ||
	    xmpp_stanza_set_to(iq, owner_jid(o)) != XMPP_EOK ||
	    gw_add_child(iq, "vCard", NS_VCARD) == NULL) {
		log_error("avatar", "out of memory");
		goto fail;
	}
	f->o = o;
	snprintf(f->token, sizeof(f->token), "%s", token);
	o->fetch = f;
	if (gw_iq_request(gw, iq, GW_IQ_VCARD, SERVER_FETCH_MS,
	    user_fetch_cb, f) == -1) {
		log_warn("avatar", "cannot ask the server for %s's vCard", owner_jid(o));
		o->fetch = NULL;
		goto fail;
	}
	xmpp_stanza_release(iq);
	log_debug("avatar", "asked the server for %s's vCard (photo %s)", owner_jid(o),
	    f->token);
	return;
fail:
	if (iq)
		xmpp_stanza_release(iq);
	free(f);
}

void
avatar_user_presence(struct gw *gw, int64_t ident, xmpp_stanza_t *st)
{
	xmpp_stanza_t *x, *photo;
	const char *from = xmpp_stanza_get_from(st);
	struct av_owner *o;
	char *hash;
	size_t n;

	/* XEP-0153 §4.2: no <x/> or no <photo/> = no news about the avatar */
	if ((x = xmpp_stanza_get_child_by_name_and_ns(st, "x", NS_VCARD_UPDATE)) == NULL ||
	    (photo = xmpp_stanza_get_child_by_name(x, "photo")) == NULL || from == NULL)
		return;
	hash = xmpp_stanza_get_text(photo);
	if (hash && !token_ok(hash) && *hash) {
		log_debug("avatar", "photo hash from %s too long, ignored", from);
		goto out;
	}
	if ((o = owner_get(gw, AV_IDENTITY, ident)) == NULL)
		goto out;
	/* her bare JID, as a buffer of STORE_JID_MAX bytes held it (""
	 * when longer); copied only when it changes */
	if ((n = strcspn(from, "/")) >= STORE_JID_MAX)
		n = 0;
	if (o->jid == NULL || strlen(o->jid) != n || strncmp(o->jid, from, n) != 0) {
		char *j = strndup(from, n);

		if (j == NULL) {
			log_error("avatar", "out of memory");
			goto out;
		}
		free(o->jid);
		o->jid = j;
	}
	if (hash == NULL || *hash == '\0') {
		/* an empty <photo/>: the user has no avatar */
		fetch_detach(o);
		o->next[0] = '\0';
		if (o->token[0] == '\0' && o->sha1[0] == '\0')
			goto out;
		o->token[0] = '\0';
		log_info("avatar", "%s has no avatar now", owner_jid(o));
		if (owner_set_image(o, NULL, NULL, 0, NULL))
			o->av->ev.identity_changed(o->av->ev_arg, ident);
		goto out;
	}
	if (strcmp(o->token, hash) == 0)
		goto out;
	if (o->fetch) {
		if (strcmp(o->fetch->token, hash) != 0)
			snprintf(o->next, sizeof(o->next), "%s", hash);
		goto out;
	}
	user_fetch_start(o, hash);
out:
	free(hash);
}

const char *
avatar_identity_hash(struct gw *gw, int64_t ident)
{
	struct av_owner *o = owner_find(gw, AV_IDENTITY, ident);

	return o && o->sha1[0] ? o->sha1 : NULL;
}

/* ---- life cycle ---- */

static void
load_row(void *arg, const struct store_avatar *a)
{
	struct gw *gw = arg;
	enum av_kind kind = strcmp(a->owner_kind, STORE_AVATAR_CONTACT) == 0 ?
	    AV_CONTACT : AV_IDENTITY;
	struct av_owner *o = owner_get(gw, kind, a->owner_id);

	if (o == NULL)
		return;
	snprintf(o->token, sizeof(o->token), "%s", a->token);
	snprintf(o->sha1, sizeof(o->sha1), "%s", a->sha1);
}

int
avatar_start(struct gw *gw, const struct avatar_events *ev, void *arg)
{
	struct av_state *av;
	int purged = 0;

	if (gw->avatar != NULL) {
		log_error("avatar", "started twice");
		return -1;
	}
	if ((av = calloc(1, sizeof(*av))) == NULL)
		return -1;
	av->gw = gw;
	av->ev = *ev;
	av->ev_arg = arg;
	LIST_INIT(&av->owners);
	gw->avatar = av;
	/* rows of contacts/identities deleted while we were not running */
	if (store_avatar_purge_orphans(gw->store, &purged) == STORE_OK && purged > 0)
		log_info("avatar", "dropped %d avatars of deleted contacts", purged);
	if (store_avatar_foreach(gw->store, load_row, gw) != STORE_OK) {
		avatar_stop(gw);
		return -1;
	}
	return 0;
}

void
avatar_stop(struct gw *gw)
{
	struct av_state *av = gw->avatar;

	if (av == NULL)
		return;
	while (!LIST_EMPTY(&av->owners))
		owner_free(LIST_FIRST(&av->owners));
	free(av);
	gw->avatar = NULL;
}

/*
 * The contact/identity is being deleted: so is its image, at once, since a
 * new contact may get the same rowid.  After avatar_stop() this is a no-op,
 * which is what bridge_free() at exit needs.
 */
static void
forget(struct gw *gw, enum av_kind kind, int64_t id)
{
	struct av_owner *o = owner_find(gw, kind, id);

	if (gw->avatar == NULL)
		return;
	if (o)
		owner_free(o);
	if (store_avatar_delete(gw->store, kind_name(kind), id) != STORE_OK)
		log_error("avatar", "cannot delete the avatar of %s %lld",
		    kind_name(kind), (long long)id);
}

void
avatar_forget_contact(struct gw *gw, int64_t contact)
{
	forget(gw, AV_CONTACT, contact);
}

void
avatar_forget_identity(struct gw *gw, int64_t ident)
{
	forget(gw, AV_IDENTITY, ident);
}
