/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef RSTWATCH_ESCAPE_H
#define RSTWATCH_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/* Write str (at most maxlen bytes, stops at NUL) as a quoted JSON string. */
void rw_json_str(FILE *f, const char *str, size_t maxlen);
/* Write str for a terminal: control bytes, backslash and invalid UTF-8 as \xNN.
 * Returns the characters written, for alignment. */
size_t rw_text_str(FILE *f, const char *str, size_t maxlen);

#endif /* RSTWATCH_ESCAPE_H */
