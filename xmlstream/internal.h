/*
 * Private to xmlstream/: what its files share and nobody else may use.
 * The module's interface is xmlstream.h alone.
 */
#ifndef XMLSTREAM_INTERNAL_H
#define XMLSTREAM_INTERNAL_H

#include <libxml/dict.h>
#include <libxml/parser.h>

#include "xmlstream.h"

/*
 * The libxml2 name dictionary parsers currently share (xs_init).  The caller
 * gets its own reference and drops it with xmlDictFree().  When a dictionary
 * has interned too many distinct names (a peer can invent names at will) a
 * fresh one is started; parsers move over when they are next rebuilt.
 */
xmlDictPtr xs_dict_acquire(void);
/* Whether `d` is no longer the current shared dictionary. */
int xs_dict_is_stale(xmlDictPtr d);

/*
 * The parser's state, shared by parser.c (feeding, limits on held input,
 * lifecycle) and sax.c (libxml2 callbacks building the stanza trees).
 */
struct xs_parser {
	xmlParserCtxtPtr	 ctxt;
	struct xs_callbacks	 cb;
	void			*arg;
	size_t			 max_stanza;
	unsigned		 max_depth;

	unsigned		 depth;		/* open elements, root included */
	long			 fed;		/* bytes pushed into this ctxt */
	long			 mark;		/* where the next stanza may start */
	long			 stanza_start;
	size_t			 hiwater;	/* largest input buffer seen */

	xmpp_stanza_t		**stack;	/* open elements below the root */
	unsigned		 stack_cap;
	char			*text;		/* pending character data */
	size_t			 text_len, text_cap;
	char			*scratch;	/* NUL-terminated names/values */
	size_t			 scratch_cap;
	char			*root_name;	/* "stream:stream", for rebuilds */

	char			*leftover;	/* unparsed input kept by a reset */
	size_t			 leftover_len;

	unsigned		 busy;		/* inside feed/eof */
	unsigned		 stop:1;	/* an end is recorded, on_close due */
	unsigned		 closed:1;	/* on_close was called */
	unsigned		 doomed:1;	/* freed from a callback */
	unsigned		 replaying:1;	/* rebuilding: no callbacks */
	unsigned		 reset_req:1;	/* reset from a callback */
	enum xs_close		 why;
	char			 detail[160];
};

/* sax.c: the callbacks every parser context is created with. */
extern xmlSAXHandler xs_sax;
/* Record why the stream ends and stop libxml2; the first reason wins. */
void	xs_fail(struct xs_parser *, enum xs_close, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
/* Stream position libxml2 has consumed up to, in this context's bytes. */
long	xs_pos(struct xs_parser *);

#endif
