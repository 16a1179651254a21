/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Shared by the fuzz targets: a requirement that aborts with what it checked
 * and the output it looked at (libFuzzer turns the abort into a crash report
 * and a reproducer file), and
 * checkers for what rstwatch promises about its output: valid UTF-8, no raw
 * control byte, and JSON strict enough that any parser accepts it.
 */
#ifndef RSTWATCH_FUZZ_H
#define RSTWATCH_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The output being checked, shown (escaped) when a requirement fails. */
static const char *fz_out_what;
static const void *fz_out;
static size_t fz_out_len;

static inline void fz_dump(const char *what, const void *s, size_t n);

static inline void fz_checking(const char *what, const void *out, size_t len)
{
	fz_out_what = what;
	fz_out = out;
	fz_out_len = len;
}

/* Not assert(): NDEBUG must never turn a fuzz target into a no-op. */
#define REQUIRE(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "REQUIRE failed: %s (%s:%d): ", #cond, __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		if (fz_out)						\
			fz_dump(fz_out_what, fz_out, fz_out_len);	\
		abort();						\
	}								\
} while (0)

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if none:
 * RFC 3629, so no overlong form, no UTF-16 surrogate, nothing past U+10FFFF.
 * Written from the table in RFC 3629 section 4, not from user/escape.c, so
 * the two can disagree. */
static inline size_t fz_utf8_len(const uint8_t *s, size_t n)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	/* the second byte's range is what rules out the bad code points */
	if (s[0] == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (s[0] == 0xed)
		hi = 0x9f;		/* surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f;		/* > U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Where s[0..n) stops being safe to put on a terminal: the offset of the
 * first C0 or C1 control, DEL or invalid UTF-8, n if none.  *chars gets the
 * number of characters before it. */
static inline size_t fz_unclean_at(const uint8_t *s, size_t n, size_t *chars)
{
	size_t at = 0, count = 0;

	while (at < n) {
		size_t len = fz_utf8_len(s + at, n - at);

		/* C0 controls, DEL, and the C1 controls U+0080-U+009F (C2 80..9F),
		 * which terminals also obey */
		if (len == 0 || s[at] < 0x20 || s[at] == 0x7f ||
		    (len == 2 && s[at] == 0xc2 && s[at + 1] < 0xa0))
			break;
		at += len;
		count++;
	}
	if (chars)
		*chars = count;
	return at;
}

/* For a failure report: s with every byte outside printable ASCII, and the
 * backslash, as \xNN, so hostile output cannot act on the terminal showing it. */
static inline void fz_dump(const char *what, const void *s, size_t n)
{
	const uint8_t *p = s;

	fprintf(stderr, "%s (%zu bytes): ", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\' ? "\\x%02x" : "%c", p[i]);
	fputc('\n', stderr);
}

static inline int fz_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * One JSON string at p (RFC 8259 section 7, narrowed to what rw_json_str may
 * write): returns the byte after its closing quote, or NULL with *why set.
 * Escapes allowed: \" \\ \uXXXX, the last never a UTF-16 surrogate (a lone
 * one is not a character; rstwatch never needs a pair, it writes UTF-8).
 */
static inline const uint8_t *fz_json_string(const uint8_t *p, const uint8_t *end,
					    const char **why)
{
	if (p == end || *p != '"')
		return *why = "string does not start with a quote", NULL;
	p++;
	while (p < end) {
		size_t len;

		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			int cp = 0;

			if (end - p < 2)
				return *why = "backslash at the end", NULL;
			if (p[1] == '"' || p[1] == '\\') {
				p += 2;
				continue;
			}
			if (p[1] != 'u')
				return *why = "escape other than \\\" \\\\ \\uXXXX", NULL;
			if (end - p < 6)
				return *why = "truncated \\u escape", NULL;
			for (int i = 2; i < 6; i++) {
				int h = fz_hex(p[i]);

				if (h < 0)
					return *why = "\\u escape with a non-hex digit", NULL;
				cp = cp << 4 | h;
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				return *why = "\\u escape of a UTF-16 surrogate", NULL;
			p += 6;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			return *why = "raw control byte in a string", NULL;
		len = fz_utf8_len(p, (size_t)(end - p));
		if (len == 0)
			return *why = "invalid UTF-8 in a string", NULL;
		p += len;
	}
	return *why = "unterminated string", NULL;
}

static inline const uint8_t *fz_json_ws(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static inline const uint8_t *fz_json_digits(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *start = p;

	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p == start ? NULL : p;
}

/* RFC 8259 section 6 */
static inline const uint8_t *fz_json_number(const uint8_t *p, const uint8_t *end,
					    const char **why)
{
	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!(p = fz_json_digits(p, end)))
		return *why = "bad number", NULL;
	if (p < end && *p == '.' && !(p = fz_json_digits(p + 1, end)))
		return *why = "bad fraction", NULL;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!(p = fz_json_digits(p, end)))
			return *why = "bad exponent", NULL;
	}
	return p;
}

static inline bool fz_json_word(const uint8_t *p, const uint8_t *end, const char *w)
{
	for (; *w; w++, p++)
		if (p == end || *p != (uint8_t)*w)
			return false;
	return true;
}

/* One JSON value at p (leading whitespace allowed); returns the byte after it
 * or NULL with *why set. */
static inline const uint8_t *fz_json_value(const uint8_t *p, const uint8_t *end, int depth,
					   const char **why)
{
	p = fz_json_ws(p, end);
	if (p == end)
		return *why = "value expected", NULL;
	if (depth > 32)
		return *why = "nested too deep", NULL;
	switch (*p) {
	case '"':
		return fz_json_string(p, end, why);
	case '{':
	case '[': {
		uint8_t close = *p == '{' ? '}' : ']';

		p = fz_json_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if (!(p = fz_json_string(fz_json_ws(p, end), end, why)))
					return NULL;
				p = fz_json_ws(p, end);
				if (p == end || *p != ':')
					return *why = "':' expected after a key", NULL;
				p++;
			}
			if (!(p = fz_json_value(p, end, depth + 1, why)))
				return NULL;
			p = fz_json_ws(p, end);
			if (p < end && *p == close)
				return p + 1;
			if (p == end || *p != ',')
				return *why = "',' or end of object/array expected", NULL;
			p++;
		}
	}
	case 't':
		return fz_json_word(p, end, "true") ? p + 4 : (*why = "bad literal", NULL);
	case 'f':
		return fz_json_word(p, end, "false") ? p + 5 : (*why = "bad literal", NULL);
	case 'n':
		return fz_json_word(p, end, "null") ? p + 4 : (*why = "bad literal", NULL);
	default:
		return fz_json_number(p, end, why);
	}
}

#endif /* RSTWATCH_FUZZ_H */
