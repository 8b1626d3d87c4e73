/*
 * fuzz_avatar — an avatar as it arrives: bytes that claim to be an image
 * (a user's vCard photo, a peer's BINVAL), sniffed, measured from the
 * header, hashed and fitted to what Barev peers take (decode, resample,
 * re-encode: libgd), including pixel bombs (a small file claiming a huge
 * image must be refused before decoding; libFuzzer's malloc limit is the
 * oracle that it was).
 *
 * Input: [mode] then the bytes.  mode bit 0: the bytes are BINVAL text,
 * base64-decoded first as the vCard path does.  Also: base64 encoding
 * what was decoded gives it back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "log.h"
#include "xmlstream.h"

static void
fit(const unsigned char *d, size_t len)
{
	unsigned char *out = NULL, *back = NULL;
	size_t outlen = 0, backlen = 0;
	const char *mime = NULL;
	char hex[41], *b64;
	int w, h;

	(void)avatar_image_sniff(d, len);
	(void)avatar_image_dims(d, len, &w, &h);
	avatar_image_sha1(d, len, hex);
	if (avatar_image_fit(d, len, AVATAR_MAX_SIDE, AVATAR_OUT_MAX_BYTES,
	    &out, &outlen, &mime) == 0) {
		/* what is sent on must itself be an image peers take */
		if (out == NULL || outlen > AVATAR_OUT_MAX_BYTES ||
		    avatar_image_sniff(out, outlen) == NULL ||
		    avatar_image_dims(out, outlen, &w, &h) == -1 ||
		    w > AVATAR_MAX_SIDE || h > AVATAR_MAX_SIDE) {
			fprintf(stderr, "fitted image is not fit\n");
			abort();
		}
		if ((b64 = avatar_b64_encode(out, outlen)) == NULL ||
		    avatar_b64_decode(b64, &back, &backlen) == -1 ||
		    backlen != outlen || memcmp(back, out, outlen) != 0) {
			fprintf(stderr, "base64 round trip differs\n");
			abort();
		}
		free(b64);
		free(back);
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	unsigned char *dec = NULL;
	size_t declen = 0;
	char *text;

	if (!inited) {
		log_set_level(getenv("FUZZ_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
		if (xs_init() == -1)	/* base64 lives in libstrophe's context */
			abort();
		inited = 1;
	}
	if (size < 1 || size > 1024 * 1024)
		return 0;
	if (!(data[0] & 1)) {
		fit(data + 1, size - 1);
		return 0;
	}
	/* BINVAL text arrives as a NUL-terminated string from the parser */
	if ((text = malloc(size)) == NULL)
		abort();
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (avatar_b64_decode(text, &dec, &declen) == 0)
		fit(dec, declen);
	free(dec);
	free(text);
	return 0;
}
