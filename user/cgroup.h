/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* cgroup v2 id -> path ("/system.slice/nginx.service") and the container and
 * pod it names, for owner reporting. */
#ifndef RSTWATCH_CGROUP_H
#define RSTWATCH_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

int rw_cgroup_init(void);
/* --cgroup PATH (as the cgroup field prints it, or below the cgroup2 mount
 * point): the id of that cgroup and its depth (0 the root).  0, or -1 with
 * a one-line reason in err. */
int rw_cgroup_resolve(const char *arg, uint64_t *id, uint32_t *level, char *err, size_t errlen);
/* Fills buf with the path of cgroup `id` and *ctr with its container's
 * runtime and id and its pod's UID (pod_ns and pod stay ""); "", all ""
 * and -1 if unknown. */
int rw_cgroup_lookup(uint64_t id, char *buf, size_t len, struct rw_container *ctr);
void rw_cgroup_free(void);

#endif /* RSTWATCH_CGROUP_H */
