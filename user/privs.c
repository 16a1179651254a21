// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Least privilege.  Loading and attaching need CAP_BPF and CAP_PERFMON (or
 * root); once the programs are attached, the ring buffer is read through an
 * mmap()ed fd and the maps through their fds, which the kernel checks at
 * open, not at use (Linux 6.5 moved the unprivileged_bpf_disabled check from
 * every bpf() command into map and program creation; measured: 6.18 reads
 * the maps with no capability).  So after attaching rstwatch drops every
 * capability, keeping CAP_BPF only where a probe shows the kernel wants it,
 * and CAP_KILL only to pass a signal on to a CMD running as another user.
 * Raw capget/capset: no libcap dependency for three bit masks.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privs.h"

#define CAP(n) (1ull << (n))

int rw_privs_user(struct rw_privs *p, const char *name, char *err, size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		snprintf(err, errlen, "--user: no user '%s'%s%s", name, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return -1;
	}
	p->user_set = true;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->name, sizeof(p->name), "%s", pw->pw_name);
	return 0;
}

uid_t rw_privs_file_uid(const struct rw_privs *p)
{
	return p->user_set ? p->uid : geteuid();
}

/*
 * setfsuid()/setfsgid() rather than seteuid(): only file access changes, and
 * a fsuid that leaves 0 takes CAP_DAC_OVERRIDE and the other file
 * capabilities out of the effective set until it comes back (the kernel's
 * cap_emulate_setxuid() for fsuid), so the open is checked exactly as the
 * user's.  setfsuid() reports no error: the new value is read back.
 */
int rw_privs_files_begin(const struct rw_privs *p, struct rw_privs_saved *s, char *err,
			 size_t errlen)
{
	int n = 0;
	gid_t *g = NULL;

	memset(s, 0, sizeof(*s));
	if (!p->user_set || geteuid() == p->uid)
		return 0;	/* no --user, or rstwatch has become it */
	errno = 0;
	s->ngroups = getgroups(0, NULL);
	if (s->ngroups >= 0) {
		s->groups = calloc((size_t)s->ngroups + 1, sizeof(gid_t));
		if (s->groups)
			s->ngroups = getgroups(s->ngroups, s->groups);
	}
	getgrouplist(p->name, p->gid, NULL, &n);
	if (n > 0)
		g = calloc((size_t)n, sizeof(gid_t));
	if (!s->groups || s->ngroups < 0 || !g || getgrouplist(p->name, p->gid, g, &n) < 0 ||
	    setgroups((size_t)n, g)) {
		snprintf(err, errlen, "--user %s: taking its groups to open files: %s (needs root or "
			 "CAP_SETGID)", p->name, errno ? strerror(errno) : "out of memory");
		free(g);
		free(s->groups);
		s->groups = NULL;
		return -1;
	}
	free(g);
	s->active = true;
	s->fsgid = (gid_t)setfsgid(p->gid);
	s->fsuid = (uid_t)setfsuid(p->uid);
	if ((gid_t)setfsgid((gid_t)-1) != p->gid || (uid_t)setfsuid((uid_t)-1) != p->uid) {
		snprintf(err, errlen, "--user %s: opening files as uid %u: not permitted (needs root "
			 "or CAP_SETUID and CAP_SETGID)", p->name, p->uid);
		rw_privs_files_end(s, err, errlen);
		return -1;
	}
	return 0;
}

int rw_privs_files_end(struct rw_privs_saved *s, char *err, size_t errlen)
{
	int rc = 0;

	if (!s->active)
		return 0;
	setfsuid(s->fsuid);
	setfsgid(s->fsgid);
	if (setgroups((size_t)s->ngroups, s->groups)) {
		snprintf(err, errlen, "restoring rstwatch's groups after opening files: %s",
			 strerror(errno));
		rc = -1;
	}
	free(s->groups);
	s->groups = NULL;
	s->active = false;
	return rc;
}

static int caps_set(uint64_t eff, uint64_t prm)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	d[0].effective = (uint32_t)eff;
	d[1].effective = (uint32_t)(eff >> 32);
	d[0].permitted = (uint32_t)prm;
	d[1].permitted = (uint32_t)(prm >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

static uint64_t caps_permitted(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d))
		return 0;
	return d[0].permitted | (uint64_t)d[1].permitted << 32;
}

void rw_privs_for_cmd(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	/* ambient capabilities survive execve() (EINVAL before 4.3: none then);
	 * inheritable ones would pass to a program with file capabilities */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capget, &h, d) == 0) {
		d[0].inheritable = d[1].inheritable = 0;
		syscall(SYS_capset, &h, d);
	}
}

int rw_privs_drop(const struct rw_privs *p, bool keep_kill, rw_bpf_probe_fn probe, void *arg,
		  char *err, size_t errlen)
{
	uint64_t have = caps_permitted(), keep = 0;

	if (keep_kill)
		keep |= CAP(CAP_KILL);
	if (p->user_set) {
		/* keep the permitted set across setuid(); the effective one is
		 * cleared by it and restored below */
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) ||
		    initgroups(p->name, p->gid) || setgid(p->gid) || setuid(p->uid)) {
			snprintf(err, errlen, "--user %s: switching user: %s (needs root or CAP_SETUID "
				 "and CAP_SETGID)", p->name, strerror(errno));
			return -1;
		}
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	}
	/* Is CAP_BPF still needed?  Try our own maps without it in effect. */
	if ((have & CAP(CAP_BPF)) && caps_set(keep & have, CAP(CAP_BPF) | (keep & have)) == 0 &&
	    !probe(arg))
		keep |= CAP(CAP_BPF);
	keep &= have;
	if (caps_set(keep, keep)) {
		snprintf(err, errlen, "dropping capabilities: %s", strerror(errno));
		return -1;
	}
	/* nothing exec'd from here may gain privileges back (setuid files) */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}
