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

/*
 * Open files as p's user (tcpdump -Z's rule: the files a user names are
 * opened with the rights rstwatch will run with): the filesystem uid and gid
 * and the supplementary groups become the user's until rw_privs_files_end().
 * Without --user, nothing changes.  0, or -1 with err set (and nothing changed).
 */
struct rw_privs_saved {
	bool active;
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t *groups;		/* rstwatch's own supplementary groups, restored at the end */
};
int rw_privs_files_begin(const struct rw_privs *p, struct rw_privs_saved *s, char *err,
			 size_t errlen);
/* Back to rstwatch's own identity: 0, or -1 with err set. */
int rw_privs_files_end(struct rw_privs_saved *s, char *err, size_t errlen);
/* The uid files are opened as: --user's, else the effective uid. */
uid_t rw_privs_file_uid(const struct rw_privs *p);

/*
 * In -- CMD's child, before exec: CMD gets none of the capabilities rstwatch
 * was given to trace (a unit's AmbientCapabilities=, setpriv --ambient-caps).
 * A CMD running as root still has root's, from its uid.
 */
void rw_privs_for_cmd(void);

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
