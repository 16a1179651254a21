// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Fuzz the string escapers (user/escape.c) with arbitrary bytes, as a comm or
 * a cgroup path from a crafted trace may hold.  The input is copied into a
 * buffer of exactly its size with no NUL after it, so reading past maxlen is
 * an ASan report.  Checked:
 *   rw_json_str: exactly one JSON string, only \" \\ \uXXXX escapes (no
 *     surrogate), no raw control byte or DEL, valid UTF-8;
 *   rw_text_str: no control byte or DEL, valid UTF-8, and the returned width
 *     is the number of characters written (so at most 4 per input byte);
 *   both: input that needs no escaping (valid UTF-8 without a control byte,
 *     DEL, quote or backslash) comes out unchanged;
 *   rw_prom_label: only \\ and \" escapes, no raw quote, and decoded as
 *     the exposition format decodes it, exactly what rw_text_str writes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fuzz.h"

/* What escaper fn (rw_json_str, rw_prom_label) writes for in. */
static char *escaped(void (*fn)(FILE *, const char *, size_t), const char *in, size_t maxlen,
		     size_t *len)
{
	char *out;
	FILE *f = open_memstream(&out, len);

	REQUIRE(f, "open_memstream failed");
	fn(f, in, maxlen);
	REQUIRE(fclose(f) == 0, "writing to memory failed");
	return out;
}

static char *text_of(const char *in, size_t maxlen, size_t *len, size_t *cols)
{
	char *out;
	FILE *f = open_memstream(&out, len);

	REQUIRE(f, "open_memstream failed");
	*cols = rw_text_str(f, in, maxlen);
	REQUIRE(fclose(f) == 0, "writing to memory failed");
	return out;
}

/* A label value as Prometheus reads it: \\ -> \, \" -> ", in place. */
static size_t label_decode(char *s, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		REQUIRE(s[i] != '"', "rw_prom_label wrote a raw quote at byte %zu", i);
		if (s[i] == '\\') {
			REQUIRE(i + 1 < n && (s[i + 1] == '\\' || s[i + 1] == '"'),
				"rw_prom_label wrote an escape other than \\\\ or \\\" at byte %zu", i);
			i++;
		}
		s[w++] = s[i];
	}
	return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1), *json, *text;
	size_t n, json_len, text_len, cols, chars, at;
	const char *why = "";
	const uint8_t *end;
	bool plain;

	REQUIRE(in, "out of memory");
	memcpy(in, data, size);
	n = strnlen(in, size);	/* what the escapers see: up to maxlen or a NUL */
	/* needs no escaping by either encoder */
	plain = fz_unclean_at((const uint8_t *)in, n, NULL) == n && !memchr(in, '"', n) &&
		!memchr(in, '\\', n);

	json = escaped(rw_json_str, in, size, &json_len);
	fz_checking("rw_json_str wrote", json, json_len);
	end = fz_json_string((const uint8_t *)json, (const uint8_t *)json + json_len, &why);
	REQUIRE(end, "rw_json_str wrote an invalid JSON string: %s", why);
	REQUIRE(end == (const uint8_t *)json + json_len,
		"rw_json_str wrote %zu bytes after the closing quote",
		(size_t)((const uint8_t *)json + json_len - end));
	if (plain)
		REQUIRE(json_len == n + 2 && memcmp(json + 1, in, n) == 0,
			"rw_json_str changed a string that needed no escaping");

	text = text_of(in, size, &text_len, &cols);
	fz_checking("rw_text_str wrote", text, text_len);
	at = fz_unclean_at((const uint8_t *)text, text_len, &chars);
	REQUIRE(at == text_len, "rw_text_str wrote a control byte, DEL or invalid UTF-8 at byte %zu",
		at);
	REQUIRE(cols == chars, "rw_text_str returned width %zu for %zu characters written",
		cols, chars);
	REQUIRE(cols <= 4 * n, "rw_text_str returned width %zu for %zu input bytes", cols, n);
	if (plain)
		REQUIRE(text_len == n && memcmp(text, in, n) == 0,
			"rw_text_str changed a string that needed no escaping");

	{
		size_t label_len, decoded;
		char *label = escaped(rw_prom_label, in, size, &label_len);

		fz_checking("rw_prom_label wrote", label, label_len);
		REQUIRE(fz_unclean_at((const uint8_t *)label, label_len, NULL) == label_len,
			"rw_prom_label wrote a control byte, DEL or invalid UTF-8");
		decoded = label_decode(label, label_len);
		REQUIRE(decoded == text_len && memcmp(label, text, text_len) == 0,
			"rw_prom_label does not decode to what rw_text_str writes");
		free(label);
	}
	free(json);
	free(text);
	free(in);
	fz_checking(NULL, NULL, 0);
	return 0;
}
