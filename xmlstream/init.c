/*
 * Process-wide state of the XML stream engine: the libstrophe context every
 * stanza belongs to, and the libxml2 name dictionary all parsers share so an
 * idle parser does not carry a dictionary of its own (DESIGN.md "Modules").
 */
#include <stdlib.h>

#include <libxml/parser.h>

#include "xmlstream.h"
#include "internal.h"

/*
 * Names a peer can make up are interned for the life of a dictionary; past
 * this many entries new parsers get a new one and the old one goes away with
 * the last parser still holding it.
 */
#define XS_DICT_MAX_NAMES	20000

static xmpp_ctx_t *xs_strophe;
static xmlDictPtr xs_dict;

/* No handler: libstrophe stays silent whatever its defaults become. */
static const xmpp_log_t xs_silent_log = { NULL, NULL };

/* Names every XMPP stream uses, interned once so parsers never add them. */
static const char *const xs_common_names[] = {
	"stream", "jabber:client", "jabber:component:accept",
	"http://etherx.jabber.org/streams", "xmlns", "xml", "message",
	"presence", "iq", "body", "show", "status", "photo", "x", "ping",
	"urn:xmpp:ping", "vcard-temp", "vcard-temp:x:update", "vCard", "html",
	"http://www.w3.org/1999/xhtml", "font", "jabber:x:event", "composing",
	"active", "paused", "http://jabber.org/protocol/chatstates", "error",
	"handshake", "query", "si", "file", "feature", "field", "value",
	"option", "type", "id", "to", "from", "lang", NULL,
};

int
xs_init(void)
{
	const char *const *n;

	if (xs_strophe != NULL)
		return 0;
	xmlInitParser();
	xmpp_initialize();
	xs_strophe = xmpp_ctx_new(NULL, &xs_silent_log);
	if (xs_strophe == NULL)
		goto fail;
	xs_dict = xmlDictCreate();
	if (xs_dict == NULL)
		goto fail;
	for (n = xs_common_names; *n != NULL; n++) {
		if (xmlDictLookup(xs_dict, (const xmlChar *)*n, -1) == NULL)
			goto fail;
	}
	return 0;
fail:
	xs_shutdown();
	return -1;
}

void
xs_shutdown(void)
{
	if (xs_dict != NULL)
		xmlDictFree(xs_dict);
	xs_dict = NULL;
	if (xs_strophe != NULL) {
		xmpp_ctx_free(xs_strophe);
		xmpp_shutdown();
	}
	xs_strophe = NULL;
}

xmpp_ctx_t *
xs_ctx(void)
{
	return xs_strophe;
}

xmlDictPtr
xs_dict_acquire(void)
{
	xmlDictPtr fresh;

	if (xs_dict == NULL)
		return NULL;
	if (xmlDictSize(xs_dict) > XS_DICT_MAX_NAMES) {
		fresh = xmlDictCreate();
		if (fresh != NULL) {
			xmlDictFree(xs_dict);
			xs_dict = fresh;
		}
	}
	if (xmlDictReference(xs_dict) != 0)
		return NULL;
	return xs_dict;
}

int
xs_dict_is_stale(xmlDictPtr d)
{
	return d != xs_dict || xmlDictSize(d) > XS_DICT_MAX_NAMES;
}

const char *
xs_close_str(enum xs_close why)
{
	switch (why) {
	case XS_END_STREAM:
		return "stream closed";
	case XS_END_EOF:
		return "end of file";
	case XS_ERR_IO:
		return "i/o error";
	case XS_ERR_XML:
		return "xml not well-formed";
	case XS_ERR_TOO_BIG:
		return "stanza too big";
	case XS_ERR_TOO_DEEP:
		return "stanza too deep";
	case XS_ERR_DTD:
		return "dtd or entity refused";
	case XS_ERR_HEADER_TIMEOUT:
		return "header timeout";
	case XS_ERR_NOT_STREAM:
		return "not a stream";
	case XS_CLOSED_LOCAL:
		return "closed locally";
	}
	return "unknown";
}
