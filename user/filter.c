// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Filters in userspace (filter.h).  On replay the kernel's filters are
 * applied to the decoded events as wanted() in bpf/rstwatch.bpf.c applies
 * them to records: a socket that passed once stays selected, whatever its
 * tuple becomes (tcp_disconnect() zeroes inet_dport), unless it passed in
 * CLOSE or as a time-wait socket; an owner filter lets no ownerless event
 * through.  The kernel forgets a selected socket at its destroy, by its
 * address; a trace has no destroy, so replay keys sockets by their
 * identity (the cookie, never reused) and keeps the last SELECTED_SLOTS.
 * --cgroup compares the recorded path (its first 127 bytes) where the
 * kernel compared the owner's cgroup ancestry: the same answer for every
 * path that fits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

#define SELECTED_SLOTS 65536	/* as many as the kernel's selected map */
#define SELECTED_PROBES 8

int rw_parse_classes(const char *opt, const char *list, bool exclude, uint32_t *mask, char *err,
		     size_t errlen)
{
	char buf[256], *save = NULL, *tok;
	uint32_t in = 0, out = 0;

	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, errlen, "%s: list too long: '%.40s...'", opt, list);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool minus = false;
		enum rw_class c;

		if (exclude && (tok[0] == '^' || strncmp(tok, "no-", 3) == 0)) {
			tok += tok[0] == '^' ? 1 : 3;
			minus = true;
		}
		c = rw_class_from_name(tok);
		if (c == RW_CL_COUNT) {
			snprintf(err, errlen, "%s: unknown class '%.40s' (classes are listed in "
				 "rstwatch(8))", opt, tok);
			return -1;
		}
		*(minus ? &out : &in) |= 1u << c;
	}
	*mask = (in ? in : out ? RW_ALL_CLASSES : 0) & ~out;
	if (!*mask) {
		snprintf(err, errlen, "%s: '%.40s' selects no class", opt, list);
		return -1;
	}
	return 0;
}

int rw_cgroup_normalize(const char *in, char *out, size_t len)
{
	size_t n = 0;

	if (in[0] != '/' || len < 2)
		return -1;
	while (*in) {
		size_t k;

		while (*in == '/')
			in++;
		k = strcspn(in, "/");
		if (!k)
			break;
		if ((k == 1 && in[0] == '.') || (k == 2 && in[0] == '.' && in[1] == '.'))
			return -1;
		if (n + 1 + k >= len)
			return -1;
		out[n++] = '/';
		memcpy(out + n, in, k);
		n += k;
		in += k;
	}
	if (!n)
		out[n++] = '/';
	out[n] = 0;
	return 0;
}

bool rw_cgroup_below(const char *path, const char *cgroup)
{
	size_t n = strlen(cgroup);

	if (!path[0])
		return false;
	if (strcmp(cgroup, "/") == 0)
		return true;
	return strncmp(path, cgroup, n) == 0 && (path[n] == 0 || path[n] == '/');
}

bool rw_filter_events_on(const struct rw_filter *f)
{
	return f->pid || f->port || f->family || f->netns || f->cgroup[0];
}

int rw_filter_init(struct rw_filter *f)
{
	if (!rw_filter_events_on(f))
		return 0;
	f->selected = calloc(SELECTED_SLOTS, sizeof(*f->selected));
	return f->selected ? 0 : -1;
}

void rw_filter_free(struct rw_filter *f)
{
	free(f->selected);
	f->selected = NULL;
}

static uint64_t *selected_slot(struct rw_filter *f, uint64_t sk, bool add)
{
	size_t h = (size_t)((sk * 0x9e3779b97f4a7c15ull) >> 16);

	for (size_t i = 0; i < SELECTED_PROBES; i++) {
		uint64_t *s = &f->selected[(h + i) & (SELECTED_SLOTS - 1)];

		if (*s == sk || (add && !*s))
			return s;
	}
	return add ? &f->selected[h & (SELECTED_SLOTS - 1)] : NULL;	/* crowded: displace */
}

bool rw_filter_event(struct rw_filter *f, const struct rw_event *ev)
{
	bool owner = ev->flags & RW_EVF_OWNER;
	bool sk = (ev->flags & RW_EVF_SK) && ev->sk;

	if (!rw_filter_events_on(f))
		return true;
	/* the kernel looks a time-wait socket up by its own address, which no
	 * full socket's entry has */
	if (sk && ev->state != RW_ST_TIME_WAIT && selected_slot(f, ev->sk, false))
		return true;
	if ((f->family && ev->family != f->family) || (f->netns && ev->netns != f->netns) ||
	    (f->port && ev->lport != f->port && ev->rport != f->port) ||
	    (f->pid && (!owner || ev->pid != f->pid)) ||
	    (f->cgroup[0] && (!owner || !rw_cgroup_below(ev->cgroup, f->cgroup))))
		return false;
	/* the kernel remembers no socket that passed in CLOSE (it may be past
	 * its destroy) nor a time-wait or request socket */
	if (sk && ev->state != RW_ST_CLOSE && ev->state != RW_ST_TIME_WAIT &&
	    ev->state != RW_ST_NEW_SYN_RECV)
		*selected_slot(f, ev->sk, true) = ev->sk;
	return true;
}
