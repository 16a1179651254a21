/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Container and pod from a cgroup v2 path: what each runtime names the
 * cgroups it makes, read one directory name at a time (the walk in cgroup.c
 * sees every name whole, where the path it keeps is cut).
 */
#ifndef RSTWATCH_CONTAINER_H
#define RSTWATCH_CONTAINER_H

#include <stdbool.h>

#include "event.h"

/* What the names from the root down to a cgroup said. */
struct rw_cg_ctx {
	struct rw_container c;	/* runtime, id, pod_uid (pod_ns and pod stay "") */
	bool kubepods;		/* a name on the way held "kubepods" */
	bool docker_parent;	/* the last name was "docker" (cgroupfs Docker) */
};

/* ctx, the parent's, becomes that of its child directory `name`. */
void rw_container_step(struct rw_cg_ctx *ctx, const char *name);
/* The same for a whole path ("/kubepods/burstable/pod.../..."), from the root. */
void rw_container_from_path(const char *path, struct rw_container *out);

#endif /* RSTWATCH_CONTAINER_H */
