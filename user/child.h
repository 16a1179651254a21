// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* -- CMD: run it under rstwatch (user/child.c). */
#ifndef RW_CHILD_H
#define RW_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loader.h"
#include "options.h"

/* Fork and exec o->cmd as the sudo user if any, its process tree traced
 * (t); -1 with a message on stderr if it could not start. */
pid_t rw_child_spawn(const struct options *o, struct rw_tracer *t);
/* rstwatch's exit status for the command's wait status. */
int rw_child_exit_code(int status);
/* rstwatch got signal `stop`: pass it on, then SIGKILL if CMD lingers;
 * call it at each wake-up until CMD is gone (since, forwarded start 0). */
void rw_child_stop(pid_t child, int stop, uint64_t *since, bool *forwarded);
/* rstwatch ends first: SIGTERM, then SIGKILL, and wait. */
void rw_child_reap(pid_t child);

#endif
