/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* cgroup v2 id -> path ("/system.slice/nginx.service"), for owner reporting. */
#ifndef RSTWATCH_CGROUP_H
#define RSTWATCH_CGROUP_H

#include <stddef.h>
#include <stdint.h>

int rw_cgroup_init(void);
/* Fills buf with the path of cgroup `id`; "" and -1 if unknown. */
int rw_cgroup_path(uint64_t id, char *buf, size_t len);
void rw_cgroup_free(void);

#endif /* RSTWATCH_CGROUP_H */
