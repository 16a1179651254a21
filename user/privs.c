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
