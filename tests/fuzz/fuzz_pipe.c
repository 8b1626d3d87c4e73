/*
 * fuzz_pipe / fuzz_pipehdr — a Barev peer's bytes into the whole gateway.
 *
 * bob@200:2::2 (an allowlisted contact) connects to alice's identity and
 * sends the input; barevlink parses it, answers pings, and the bridge does
 * with each stanza what it does in production: presence to the user,
 * messages into the store and on to XMPP, vCard gets and results (avatar
 * decode), SI offers and bytestreams (transfer), unknown iqs.  Then bob
 * hangs up and the harness waits for the gateway to close the pipe.
 *
 * fuzz_pipe: the input follows a valid stream header (the phase after the
 * header, where nearly everything happens).  fuzz_pipehdr (built from this
 * file with FUZZ_HEADER_PHASE): the input is everything bob sends, header
 * included — arbitrary to/from, junk before or instead of a header.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define BOB_HEADER "<?xml version='1.0' encoding='UTF-8'?><stream:stream " \
	"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " \
	"from='bob@" FZ_PEER_ADDR "' to='alice@" FZ_IDENT_ADDR "' version='1.0'>"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz *f;
	int fd;

	if (size > 256 * 1024)
		return 0;
	f = fz_open();
	fd = fz_pipe_open(f);
#ifndef FUZZ_HEADER_PHASE
	/*
	 * Header first, then alice comes online: with her online first the
	 * gateway would dial bob itself and this inbound pipe would lose
	 * the crossing (BAREV.md §2).
	 */
	if (write(fd, BOB_HEADER, strlen(BOB_HEADER)) != (ssize_t)strlen(BOB_HEADER) ||
	    fz_pipe_wait_up(f) == -1) {
		fprintf(stderr, "bob's pipe did not come up\n");
		abort();
	}
	fz_user_online(f);
#endif
	fz_feed_and_wait(f, fd, data, size);
	fz_close(f);
	return 0;
}
