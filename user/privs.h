/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Least privilege: once attached, become --user and keep only what is still used. */
#ifndef RSTWATCH_PRIVS_H
#define RSTWATCH_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct rw_privs {
	bool user_set;		/* --user given */
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* --user NAME (or a numeric uid): 0, or -1 with a one-line reason in err. */
int rw_privs_user(struct rw_privs *p, const char *name, char *err, size_t errlen);

/* Returns true if the process can still do what it needs without CAP_BPF. */
typedef bool (*rw_bpf_probe_fn)(void *arg);

/*
 * Switch to p's user (if set) and drop every capability but CAP_KILL when
 * keep_kill (to signal a CMD that runs as another user) and CAP_BPF when the
 * probe says bpf() on our own map fds still needs it (kernels before 6.5 with
 * kernel.unprivileged_bpf_disabled set).  Returns 0, or -1 with err set.
 */
int rw_privs_drop(const struct rw_privs *p, bool keep_kill, rw_bpf_probe_fn probe, void *arg,
		  char *err, size_t errlen);

#endif /* RSTWATCH_PRIVS_H */
