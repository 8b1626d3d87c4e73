/*
 * Private to xmlstream/: what its files share and nobody else may use.
 * The module's interface is xmlstream.h alone.
 */
#ifndef XMLSTREAM_INTERNAL_H
#define XMLSTREAM_INTERNAL_H

#include <libxml/dict.h>

/*
 * The libxml2 name dictionary parsers currently share (xs_init).  The caller
 * gets its own reference and drops it with xmlDictFree().  When a dictionary
 * has interned too many distinct names (a peer can invent names at will) a
 * fresh one is started; parsers move over when they are next rebuilt.
 */
xmlDictPtr xs_dict_acquire(void);
/* Whether `d` is no longer the current shared dictionary. */
int xs_dict_is_stale(xmlDictPtr d);

#endif
