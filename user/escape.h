/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef RSTWATCH_ESCAPE_H
#define RSTWATCH_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/*
 * Escape JSON string content (no quotes) from *str, *left bytes of it, into
 * dst until the input ends or fewer than 6 bytes of dst are free: returns the
 * bytes written and advances *str and *left past what was consumed.
 */
size_t rw_json_esc(char *dst, size_t cap, const char **str, size_t *left);
/* Write str (at most maxlen bytes, stops at NUL) as a quoted JSON string. */
void rw_json_str(FILE *f, const char *str, size_t maxlen);
/* Write str for a terminal: control bytes, backslash and invalid UTF-8 as \xNN.
 * Returns the characters written, for alignment. */
size_t rw_text_str(FILE *f, const char *str, size_t maxlen);
/* Write str as the content of a Prometheus/OpenMetrics label value: as
 * rw_text_str() prints it, with that backslash and '"' escaped for the
 * exposition format (which decodes \\, \" and \n only). */
void rw_prom_label(FILE *f, const char *str, size_t maxlen);

#endif /* RSTWATCH_ESCAPE_H */
