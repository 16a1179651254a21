// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * floor: load and attach tests/bench/floor.bpf.c's empty programs, wait for
 * SIGINT or SIGTERM, detach.  Prints "floor: attached" on stderr once the
 * programs are in place.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct floor_bpf *skel;
	int rc;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "floor: loading the empty programs: %s\n", strerror(errno));
		return 1;
	}
	rc = floor_bpf__attach(skel);
	if (rc) {
		fprintf(stderr, "floor: attaching: %s\n", strerror(-rc));
		floor_bpf__destroy(skel);
		return 1;
	}
	fprintf(stderr, "floor: attached\n");
	while (!stop)
		pause();
	floor_bpf__destroy(skel);
	return 0;
}
