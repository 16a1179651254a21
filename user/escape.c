// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Untrusted strings (a comm may hold any byte but NUL) made safe for JSON and
 * for a terminal.  Both walk the input as UTF-8: a valid sequence passes, an
 * invalid byte becomes U+FFFD (JSON) or \xNN (text); control characters,
 * C0, DEL and C1 (U+0080-U+009F: a terminal may take U+009B as CSI, a log
 * viewer U+0085 as a line break), become \u00XX (JSON) or \xNN per byte (text)
 * so no input can start a new line or an escape sequence.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

/* A C1 control character, U+0080-U+009F, encoded as 0xc2 0x80-0x9f. */
static bool is_c1(const unsigned char *s, size_t len)
{
	return len == 2 && s[0] == 0xc2 && s[1] < 0xa0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* Bytes that pass through every escaper unchanged: printable ASCII but the
 * backslash (and, inside quotes: JSON, a label value, the quote). */
static bool plain(unsigned char c, bool quoted)
{
	return c >= 0x20 && c < 0x7f && c != '\\' && !(quoted && c == '"');
}

/* Length of the run of plain bytes at s: copied in one go, because a stdio
 * call per byte was most of the cost of a JSON line (the hints are long). */
static size_t plain_run(const unsigned char *s, size_t n, bool quoted)
{
	size_t i = 0;

	while (i < n && plain(s[i], quoted))
		i++;
	return i;
}

static char *u00xx(char *p, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	memcpy(p, "\\u00", 4);
	p[4] = hex[c >> 4];
	p[5] = hex[c & 15];
	return p + 6;
}

size_t rw_json_esc(char *dst, size_t cap, const char **str, size_t *left)
{
	const unsigned char *s = (const unsigned char *)*str;
	size_t n = *left, w = 0;

	/* one step writes at most 6 bytes (\\u00XX, \\ufffd) */
	while (n > 0 && cap - w >= 6) {
		size_t len = plain_run(s, n, true);

		if (len > 0) {
			if (len > cap - w)
				len = cap - w;
			memcpy(dst + w, s, len);
			w += len;
		} else if ((len = utf8_len(s, n)) == 0) {
			memcpy(dst + w, "\\ufffd", 6);
			w += 6;
			len = 1;
		} else if (*s == '"' || *s == '\\') {
			dst[w++] = '\\';
			dst[w++] = (char)*s;
		} else if (*s < 0x20 || *s == 0x7f) {
			w = (size_t)(u00xx(dst + w, *s) - dst);
		} else if (is_c1(s, len)) {
			w = (size_t)(u00xx(dst + w, s[1]) - dst);
		} else {
			memcpy(dst + w, s, len);	/* a valid multi-byte sequence, <= 4 */
			w += len;
		}
		s += len;
		n -= len;
	}
	*str = (const char *)s;
	*left = n;
	return w;
}

void rw_json_str(FILE *f, const char *str, size_t maxlen)
{
	size_t n = strnlen(str, maxlen);
	char buf[512];

	fputc('"', f);
	while (n > 0)
		fwrite(buf, 1, rw_json_esc(buf, sizeof(buf), &str, &n), f);
	fputc('"', f);
}

/* Text and Prometheus label values: an unsafe byte becomes \xNN; in a label
 * value the backslash that introduces it is itself escaped, as is '"', so
 * the value Prometheus stores reads exactly as the text output prints it. */
static size_t text_esc(FILE *f, const char *str, size_t maxlen, bool label)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, maxlen), cols = 0;

	while (n > 0) {
		size_t len = plain_run(s, n, label);

		if (len > 0) {
			fwrite(s, 1, len, f);
			cols += len;
		} else if ((len = utf8_len(s, n)) == 0 || *s < 0x20 || *s == 0x7f || *s == '\\' ||
			   is_c1(s, len)) {
			fprintf(f, label ? "\\\\x%02x" : "\\x%02x", *s);	/* a C1's second byte: the next turn */
			len = 1;
			cols += 4;
		} else if (*s == '"') {
			fputs("\\\"", f);	/* only a label gets here: plain() passes it in text */
			cols++;
		} else {
			fwrite(s, 1, len, f);
			cols++;		/* one character, whatever its byte length */
		}
		s += len;
		n -= len;
	}
	return cols;
}

size_t rw_text_str(FILE *f, const char *str, size_t maxlen)
{
	return text_esc(f, str, maxlen, false);
}

void rw_prom_label(FILE *f, const char *str, size_t maxlen)
{
	text_esc(f, str, maxlen, true);
}
