/*
 * Avatars without sockets: what the bytes are, what a Barev peer gets
 * (≤ 96x96, ≤ 64 KiB), the XEP-0153 hash, and the avatars table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gd.h>

#include "avatar.h"
#include "store.h"
#include "xmlstream.h"

static int failed;

#define CHECK(cond) do { if (!(cond)) { failed++; \
	fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } } while (0)

enum fmt { PNG, JPEG, GIF };

/* a w x h picture with a gradient and, when noisy, random pixels */
static unsigned char *
make_image(int w, int h, enum fmt fmt, int noisy, size_t *len)
{
	gdImagePtr im = gdImageCreateTrueColor(w, h);
	unsigned char *out = NULL;
	void *enc = NULL;
	int size = 0;

	if (im == NULL)
		return NULL;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int r = noisy ? rand() & 255 : x * 255 / w;
			int g = noisy ? rand() & 255 : y * 255 / h;

			gdImageSetPixel(im, x, y, gdTrueColor(r, g, 128));
		}
	if (fmt == PNG)
		enc = gdImagePngPtr(im, &size);
	else if (fmt == JPEG)
		enc = gdImageJpegPtr(im, &size, 90);
	else {
		gdImageTrueColorToPalette(im, 0, 256);
		enc = gdImageGifPtr(im, &size);
	}
	if (enc != NULL && size > 0 && (out = malloc((size_t)size)) != NULL) {
		memcpy(out, enc, (size_t)size);
		*len = (size_t)size;
	}
	gdFree(enc);
	gdImageDestroy(im);
	return out;
}

static void
sniffs_the_magic_bytes(void)
{
	size_t len;
	unsigned char *png = make_image(4, 4, PNG, 0, &len);
	unsigned char *jpg = make_image(4, 4, JPEG, 0, &len);
	unsigned char *gif = make_image(4, 4, GIF, 0, &len);

	CHECK(png && strcmp(avatar_image_sniff(png, 8), "image/png") == 0);
	CHECK(jpg && strcmp(avatar_image_sniff(jpg, 3), "image/jpeg") == 0);
	CHECK(gif && strcmp(avatar_image_sniff(gif, 6), "image/gif") == 0);
	CHECK(avatar_image_sniff((const unsigned char *)"GIF88a", 6) == NULL);
	CHECK(avatar_image_sniff((const unsigned char *)"<svg xmlns=", 11) == NULL);
	CHECK(avatar_image_sniff(png, 7) == NULL);	/* too short to tell */
	CHECK(avatar_image_sniff(NULL, 0) == NULL);
	free(png);
	free(jpg);
	free(gif);
}

static void
reads_dimensions_from_headers(void)
{
	static const enum fmt fmts[] = { PNG, JPEG, GIF };
	unsigned char *im;
	size_t len;
	int w, h;

	for (size_t i = 0; i < 3; i++) {
		im = make_image(300, 200, fmts[i], 0, &len);
		CHECK(im && avatar_image_dims(im, len, &w, &h) == 0);
		CHECK(w == 300 && h == 200);
		free(im);
	}
	CHECK(avatar_image_dims((const unsigned char *)"hello", 5, &w, &h) == -1);
}

static void
hashes_the_bytes(void)
{
	char hex[41];

	/* FIPS 180 test vector: SHA1("abc") */
	avatar_image_sha1((const unsigned char *)"abc", 3, hex);
	CHECK(strcmp(hex, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
	avatar_image_sha1((const unsigned char *)"", 0, hex);
	CHECK(strcmp(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709") == 0);
}

/* the result decodes, has the expected size, and is within the limits */
static void
check_fits(const unsigned char *out, size_t outlen, const char *mime,
    int want_w, int want_h, size_t max_bytes)
{
	gdImagePtr im;

	CHECK(outlen <= max_bytes);
	CHECK(strcmp(avatar_image_sniff(out, outlen), mime) == 0);
	im = strcmp(mime, "image/png") == 0 ?
	    gdImageCreateFromPngPtr((int)outlen, (void *)out) :
	    gdImageCreateFromJpegPtr((int)outlen, (void *)out);
	CHECK(im != NULL);
	if (im == NULL)
		return;
	if (gdImageSX(im) != want_w || gdImageSY(im) != want_h) {
		fprintf(stderr, "got %dx%d, want %dx%d\n", gdImageSX(im),
		    gdImageSY(im), want_w, want_h);
		failed++;
	}
	gdImageDestroy(im);
}

static void
scales_large_pictures_down_keeping_the_aspect(void)
{
	static const enum fmt fmts[] = { PNG, JPEG, GIF };
	unsigned char *src, *out;
	const char *mime;
	size_t len, outlen;

	/* a 300x200 picture in each format becomes a 96x64 PNG */
	for (size_t i = 0; i < 3; i++) {
		src = make_image(300, 200, fmts[i], 0, &len);
		CHECK(src && avatar_image_fit(src, len, AVATAR_MAX_SIDE,
		    AVATAR_OUT_MAX_BYTES, &out, &outlen, &mime) == 0);
		CHECK(strcmp(mime, "image/png") == 0);
		check_fits(out, outlen, mime, 96, 64, AVATAR_OUT_MAX_BYTES);
		free(out);
		free(src);
	}
	/* portrait */
	src = make_image(100, 300, PNG, 0, &len);
	CHECK(avatar_image_fit(src, len, 96, 65536, &out, &outlen, &mime) == 0);
	check_fits(out, outlen, mime, 32, 96, 65536);
	free(out);
	free(src);
	/* a thin strip keeps at least one pixel */
	src = make_image(1000, 2, PNG, 0, &len);
	CHECK(avatar_image_fit(src, len, 96, 65536, &out, &outlen, &mime) == 0);
	check_fits(out, outlen, mime, 96, 1, 65536);
	free(out);
	free(src);
}

static void
keeps_small_pictures_byte_for_byte(void)
{
	unsigned char *src, *out;
	const char *mime;
	size_t len, outlen;

	src = make_image(48, 48, JPEG, 0, &len);
	CHECK(avatar_image_fit(src, len, 96, 65536, &out, &outlen, &mime) == 0);
	CHECK(outlen == len && memcmp(out, src, len) == 0);
	CHECK(strcmp(mime, "image/jpeg") == 0);
	free(out);
	free(src);
}

static void
caps_the_size_in_bytes(void)
{
	unsigned char *src, *out;
	const char *mime;
	size_t len, outlen;

	/* 96x96 of noise is ~28 KB as PNG: with a 12000-byte cap it must
	 * become a JPEG that fits */
	src = make_image(96, 96, PNG, 1, &len);
	CHECK(len > 12000);
	CHECK(avatar_image_fit(src, len, 96, 12000, &out, &outlen, &mime) == 0);
	CHECK(strcmp(mime, "image/jpeg") == 0);
	check_fits(out, outlen, mime, 96, 96, 12000);
	free(out);
	/* nothing fits in 100 bytes */
	CHECK(avatar_image_fit(src, len, 96, 100, &out, &outlen, &mime) == -1);
	CHECK(out == NULL && outlen == 0);
	free(src);
}

static void
refuses_what_is_not_a_picture(void)
{
	/* a PNG header claiming 100000 x 100000 pixels: never decoded */
	static const unsigned char bomb[] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
		0, 0, 0, 13, 'I', 'H', 'D', 'R',
		0, 0x01, 0x86, 0xa0, 0, 0x01, 0x86, 0xa0, 8, 6, 0, 0, 0,
	};
	unsigned char *src, *out;
	const char *mime;
	size_t len, outlen;
	int w, h;

	CHECK(avatar_image_dims(bomb, sizeof(bomb), &w, &h) == 0 && w == 100000);
	CHECK(avatar_image_fit(bomb, sizeof(bomb), 96, 65536, &out, &outlen, &mime) == -1);
	CHECK(avatar_image_fit((const unsigned char *)"not an image", 12, 96,
	    65536, &out, &outlen, &mime) == -1);
	/* a truncated PNG */
	src = make_image(300, 200, PNG, 0, &len);
	CHECK(avatar_image_fit(src, len / 3, 96, 65536, &out, &outlen, &mime) == -1);
	free(src);
}

static void
base64_on_one_line_and_tolerant_of_wrapping(void)
{
	unsigned char *bin;
	size_t len;
	char *b64;

	b64 = avatar_b64_encode((const unsigned char *)"any carnal pleasure.", 20);
	CHECK(b64 && strcmp(b64, "YW55IGNhcm5hbCBwbGVhc3VyZS4=") == 0);
	free(b64);
	CHECK(avatar_b64_decode("YW55IGNh\r\ncm5hbCBw\n bGVhc3VyZS4=", &bin, &len) == 0);
	CHECK(len == 20 && memcmp(bin, "any carnal pleasure.", 20) == 0);
	free(bin);
	CHECK(avatar_b64_decode("not*base64!", &bin, &len) == -1);
	CHECK(avatar_b64_decode("", &bin, &len) == -1);
}

static int rows_seen;

static void
count_row(void *arg, const struct store_avatar *a)
{
	(void)arg;
	CHECK(a->data == NULL);
	rows_seen++;
}

static void
stores_token_and_hash_apart(void)
{
	const char *dir = getenv("TEST_TMPDIR");
	char path[1024], err[256];
	struct store_avatar a;
	struct store *s;
	int64_t ident, contact;
	int purged = -1;

	snprintf(path, sizeof(path), "%s/avatar.sqlite", dir ? dir : ".");
	remove(path);
	if ((s = store_open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		failed++;
		return;
	}
	CHECK(store_identity_add(s, "alice@example.org", "alice", "201:1::1", 1337, &ident) == STORE_OK);
	CHECK(store_contact_add(s, ident, "bob", "201:2::2", 1337, NULL, &contact) == STORE_OK);
	/* pascal's token is not the hash of the image (BAREV.md §5) */
	CHECK(store_avatar_set(s, STORE_AVATAR_CONTACT, contact, "tok-of-base64",
	    "0123456789abcdef0123456789abcdef01234567", "image/png", "\x89PNG", 4, 10) == STORE_OK);
	CHECK(store_avatar_get(s, STORE_AVATAR_CONTACT, contact, &a) == STORE_OK);
	CHECK(strcmp(a.token, "tok-of-base64") == 0);
	CHECK(strcmp(a.sha1, "0123456789abcdef0123456789abcdef01234567") == 0);
	CHECK(strcmp(a.mime, "image/png") == 0 && a.len == 4 && memcmp(a.data, "\x89PNG", 4) == 0);
	free(a.data);
	/* a new token whose image we refused keeps the old image */
	CHECK(store_avatar_set_token(s, STORE_AVATAR_CONTACT, contact, "tok2", 11) == STORE_OK);
	CHECK(store_avatar_get(s, STORE_AVATAR_CONTACT, contact, &a) == STORE_OK);
	CHECK(strcmp(a.token, "tok2") == 0 && a.len == 4);
	free(a.data);
	/* no image */
	CHECK(store_avatar_set(s, STORE_AVATAR_IDENTITY, ident, NULL, "x", "image/png", NULL, 0, 12) == STORE_OK);
	CHECK(store_avatar_get(s, STORE_AVATAR_IDENTITY, ident, &a) == STORE_OK);
	CHECK(a.data == NULL && a.len == 0 && a.sha1[0] == '\0' && a.token[0] == '\0');
	CHECK(store_avatar_foreach(s, count_row, NULL) == STORE_OK && rows_seen == 2);
	/* the contact goes while the gateway is not looking: purged at start */
	CHECK(store_contact_delete(s, contact) == STORE_OK);
	CHECK(store_avatar_purge_orphans(s, &purged) == STORE_OK && purged == 1);
	CHECK(store_avatar_get(s, STORE_AVATAR_CONTACT, contact, &a) == STORE_NOTFOUND);
	CHECK(store_avatar_delete(s, STORE_AVATAR_IDENTITY, ident) == STORE_OK);
	CHECK(store_avatar_get(s, STORE_AVATAR_IDENTITY, ident, &a) == STORE_NOTFOUND);
	store_close(s);
}

int
main(void)
{
	if (xs_init() == -1) {
		fprintf(stderr, "xs_init failed\n");
		return 1;
	}
	srand(4);
	sniffs_the_magic_bytes();
	reads_dimensions_from_headers();
	hashes_the_bytes();
	scales_large_pictures_down_keeping_the_aspect();
	keeps_small_pictures_byte_for_byte();
	caps_the_size_in_bytes();
	refuses_what_is_not_a_picture();
	base64_on_one_line_and_tolerant_of_wrapping();
	stores_token_and_hash_apart();
	if (failed)
		fprintf(stderr, "%d checks failed\n", failed);
	return failed ? 1 : 0;
}
