// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Fuzz the --metrics endpoint's request parser (user/httpd.c) with arbitrary
 * bytes as a request head, and its Accept negotiation with them as a header
 * value.  The input is copied into a buffer of exactly its size, so reading
 * past it is an ASan report.  Checked: the answer is one the server knows;
 * a 200 only for a GET or HEAD of / or /metrics in HTTP/1.0 or 1.1 (no NUL,
 * no body announced), and HTTP/1.0 always closes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	struct rw_http_request rq;
	const char *eol;
	size_t vl;

	REQUIRE(in, "out of memory");
	memcpy(in, data, size);
	rw_http_parse(in, size, &rq);
	REQUIRE(rq.status == RW_HTTP_200 || rq.status == RW_HTTP_400 || rq.status == RW_HTTP_404 ||
		rq.status == RW_HTTP_405 || rq.status == RW_HTTP_505, "status index %d", rq.status);
	if (rq.status == RW_HTTP_200) {
		eol = memchr(in, '\n', size);
		REQUIRE(eol, "200 without a request line");
		REQUIRE(!memchr(in, 0, size), "200 for a request with a NUL");
		REQUIRE((size >= 4 && memcmp(in, "GET ", 4) == 0) ||
			(size >= 5 && memcmp(in, "HEAD ", 5) == 0), "200 for another method");
		REQUIRE(rq.head == (in[0] == 'H'), "HEAD not noticed");
		vl = eol > in && eol[-1] == '\r' ? 9 : 8;	/* "HTTP/1.x" and the CR */
		REQUIRE((size_t)(eol - in) >= vl + 6, "200 for a request line too short");
		REQUIRE(memcmp(eol - vl - 1, " HTTP/1.", 8) == 0, "200 for another protocol");
		if ((eol - vl)[7] == '0')
			REQUIRE(rq.close, "HTTP/1.0 kept alive");
		REQUIRE(rq.target == RW_HTTP_INDEX || rq.target == RW_HTTP_METRICS, "target %d",
			(int)rq.target);
	} else {
		REQUIRE(rq.close, "an error response keeps the connection");
	}
	(void)rw_http_wants_openmetrics(in, size);
	free(in);
	return 0;
}
