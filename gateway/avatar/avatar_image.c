/*
 * avatar_image — the bytes of an avatar: what kind of image they are, how
 * big it claims to be, its XEP-0153 hash, and a copy a Barev peer accepts
 * (BAREV.md §5: at most 96x96 and 64 KiB, png/gif/jpeg).
 *
 * The one idea: nothing is decoded before its header says it is a
 * png/jpeg/gif of sane dimensions, because a few hundred bytes of PNG can
 * claim gigapixels; decoding and resampling are libgd's.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gd.h>
#include <strophe.h>

#include "avatar.h"
#include "log.h"
#include "xmlstream.h"

#define MIME_PNG "image/png"
#define MIME_JPEG "image/jpeg"
#define MIME_GIF "image/gif"

const char *
avatar_image_sniff(const unsigned char *d, size_t len)
{
	static const unsigned char png[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

	if (d == NULL)
		return NULL;
	if (len >= sizeof(png) && memcmp(d, png, sizeof(png)) == 0)
		return MIME_PNG;
	if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return MIME_JPEG;
	if (len >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
		return MIME_GIF;
	return NULL;
}

static unsigned
be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned long
be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	    (unsigned long)p[2] << 8 | p[3];
}

/* JPEG: walk the marker segments up to the first SOFn (ITU T.81 B.2) */
static int
jpeg_dims(const unsigned char *d, size_t len, int *w, int *h)
{
	size_t i = 2;

	while (i + 4 <= len) {
		unsigned char m;
		size_t seg;

		if (d[i] != 0xff)
			return -1;
		m = d[i + 1];
		if (m == 0xff) {		/* fill byte */
			i++;
			continue;
		}
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {	/* no length */
			i += 2;
			continue;
		}
		if (m == 0xd9 || m == 0xda)	/* EOI, SOS before any frame */
			return -1;
		seg = be16(d + i + 2);
		if (seg < 2 || i + 2 + seg > len)
			return -1;
		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
			if (seg < 7)
				return -1;
			*h = (int)be16(d + i + 5);
			*w = (int)be16(d + i + 7);
			return 0;
		}
		i += 2 + seg;
	}
	return -1;
}

int
avatar_image_dims(const unsigned char *d, size_t len, int *w, int *h)
{
	const char *mime = avatar_image_sniff(d, len);
	unsigned long pw, ph;

	*w = *h = 0;
	if (mime == NULL)
		return -1;
	if (strcmp(mime, MIME_PNG) == 0) {
		/* signature, then IHDR first: length, "IHDR", width, height */
		if (len < 24 || memcmp(d + 12, "IHDR", 4) != 0)
			return -1;
		pw = be32(d + 16);
		ph = be32(d + 20);
		if (pw > INT_MAX || ph > INT_MAX)
			return -1;
		*w = (int)pw;
		*h = (int)ph;
	} else if (strcmp(mime, MIME_GIF) == 0) {
		if (len < 10)
			return -1;
		*w = d[6] | d[7] << 8;
		*h = d[8] | d[9] << 8;
	} else if (jpeg_dims(d, len, w, h) == -1) {
		return -1;
	}
	return *w > 0 && *h > 0 ? 0 : -1;
}

int
avatar_image_sha1(const unsigned char *data, size_t len, char hex[41])
{
	/* libstrophe hashes and hex-encodes (lower case, as XEP-0153 wants) */
	char *h = xmpp_sha1(xs_ctx(), data, len);

	hex[0] = '\0';
	if (h == NULL)
		return -1;
	snprintf(hex, 41, "%s", h);
	xmpp_free(xs_ctx(), h);
	return 0;
}

/* libgd reports through this instead of writing to stderr */
static void
gd_log(int priority, const char *fmt, va_list ap)
{
	char buf[256];

	(void)priority;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("avatar", "libgd: %s", buf);
}

static gdImagePtr
decode(const unsigned char *data, size_t len, const char *mime)
{
	void *p = (void *)(uintptr_t)data;	/* libgd only reads it */

	if (len > INT_MAX)
		return NULL;
	if (strcmp(mime, MIME_PNG) == 0)
		return gdImageCreateFromPngPtr((int)len, p);
	if (strcmp(mime, MIME_JPEG) == 0)
		return gdImageCreateFromJpegPtr((int)len, p);
	return gdImageCreateFromGifPtr((int)len, p);
}

static int
copy_out(const void *src, size_t len, unsigned char **out, size_t *outlen)
{
	if ((*out = malloc(len ? len : 1)) == NULL)
		return -1;
	memcpy(*out, src, len);
	*outlen = len;
	return 0;
}

/* PNG, or JPEG of falling quality, whichever first fits max_bytes */
static int
encode_fitting(gdImagePtr im, size_t max_bytes, unsigned char **out,
    size_t *outlen, const char **mime)
{
	static const int qualities[] = { 85, 70, 50, 30 };
	void *enc;
	int size, rc;

	if ((enc = gdImagePngPtrEx(im, &size, 9)) != NULL) {
		if (size > 0 && (size_t)size <= max_bytes) {
			rc = copy_out(enc, (size_t)size, out, outlen);
			gdFree(enc);
			*mime = MIME_PNG;
			return rc;
		}
		gdFree(enc);
	}
	for (size_t i = 0; i < sizeof(qualities) / sizeof(qualities[0]); i++) {
		if ((enc = gdImageJpegPtr(im, &size, qualities[i])) == NULL)
			continue;
		if (size > 0 && (size_t)size <= max_bytes) {
			rc = copy_out(enc, (size_t)size, out, outlen);
			gdFree(enc);
			*mime = MIME_JPEG;
			return rc;
		}
		gdFree(enc);
	}
	return -1;
}

int
avatar_image_fit(const unsigned char *data, size_t len, int max_side,
    size_t max_bytes, unsigned char **out, size_t *outlen, const char **mime)
{
	const char *src_mime = avatar_image_sniff(data, len);
	gdImagePtr src = NULL, dst = NULL;
	int w, h, hw, hh, nw, nh, rc = -1;

	*out = NULL;
	*outlen = 0;
	if (src_mime == NULL || max_side < 1) {
		log_debug("avatar", "not a png/jpeg/gif (%zu bytes)", len);
		return -1;
	}
	if (avatar_image_dims(data, len, &w, &h) == -1 ||
	    (long)w * h > AVATAR_SRC_MAX_PIXELS) {
		log_debug("avatar", "%s of %dx%d: bad or too many pixels", src_mime, w, h);
		return -1;
	}
	gdSetErrorMethod(gd_log);
	if ((src = decode(data, len, src_mime)) == NULL) {
		log_debug("avatar", "%s (%zu bytes) does not decode", src_mime, len);
		return -1;
	}
	/* the header may lie: believe the decoder from here on */
	hw = w;
	hh = h;
	w = gdImageSX(src);
	h = gdImageSY(src);
	/*
	 * Sent on byte for byte only if the header is within the limits too:
	 * a GIF whose screen claims 1x18505 around a 1x1 frame decodes small,
	 * but peers size it by its header.  Anything else is re-encoded.
	 */
	if (w <= max_side && h <= max_side && len <= max_bytes &&
	    hw <= max_side && hh <= max_side) {
		*mime = src_mime;
		rc = copy_out(data, len, out, outlen);
		goto out;
	}
	if (w >= h) {
		nw = w < max_side ? w : max_side;
		nh = (int)(((long)h * nw + w / 2) / w);
	} else {
		nh = h < max_side ? h : max_side;
		nw = (int)(((long)w * nh + h / 2) / h);
	}
	nw = nw < 1 ? 1 : nw;
	nh = nh < 1 ? 1 : nh;
	if (!gdImageTrueColor(src) && !gdImagePaletteToTrueColor(src))
		goto out;
	if ((dst = gdImageCreateTrueColor(nw, nh)) == NULL)
		goto out;
	/* keep transparency: copy alpha as it is, save it in the PNG */
	gdImageAlphaBlending(dst, 0);
	gdImageSaveAlpha(dst, 1);
	gdImageCopyResampled(dst, src, 0, 0, 0, 0, nw, nh, w, h);
	rc = encode_fitting(dst, max_bytes, out, outlen, mime);
out:
	if (dst)
		gdImageDestroy(dst);
	gdImageDestroy(src);
	if (rc == -1) {
		free(*out);
		*out = NULL;
		*outlen = 0;
	}
	return rc;
}

char *
avatar_b64_encode(const unsigned char *data, size_t len)
{
	char *enc = xmpp_base64_encode(xs_ctx(), data, len), *out;

	if (enc == NULL)
		return NULL;
	out = strdup(enc);
	xmpp_free(xs_ctx(), enc);
	return out;
}

int
avatar_b64_decode(const char *text, unsigned char **out, size_t *outlen)
{
	size_t n = 0, len = text ? strlen(text) : 0;
	unsigned char *bin = NULL;
	char *clean;

	*out = NULL;
	*outlen = 0;
	if ((clean = malloc(len + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
			clean[n++] = text[i];
	clean[n] = '\0';
	if (n > 0)
		xmpp_base64_decode_bin(xs_ctx(), clean, n, &bin, outlen);
	free(clean);
	if (bin == NULL) {
		*outlen = 0;
		return -1;
	}
	if ((*out = malloc(*outlen ? *outlen : 1)) != NULL)
		memcpy(*out, bin, *outlen);
	xmpp_free(xs_ctx(), bin);
	return *out ? 0 : -1;
}
