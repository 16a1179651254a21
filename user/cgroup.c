// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * cgroup v2 id -> path.  bpf_get_current_cgroup_id() returns the kernfs node
 * id in the v2 hierarchy, which is also what name_to_handle_at() reports for
 * the cgroup's directory.  The v2 hierarchy is found in /proc/self/mounts: it
 * is /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones.
 * The tree is walked once at start and again, at most once a second, when an
 * unknown id shows up (a new container or service).
 */
#include <fcntl.h>
#include <ftw.h>
#include <mntent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroup.h"

#define MAX_CGROUPS 65536

struct cg_entry {
	uint64_t id;
	char *path;
};

static struct cg_entry *cg_tab;	/* open addressing, cg_cap slots */
static size_t cg_cap, cg_count;
static struct timespec cg_last_scan;
static char cg_root[256];	/* the cgroup2 mount point */
static size_t cg_root_len;

static size_t slot(uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (cg_cap - 1);
}

static void cg_put(uint64_t id, const char *path)
{
	size_t i;

	if (cg_count * 2 >= cg_cap)
		return;		/* keep probes short; paths past this stay unknown */
	for (i = slot(id); cg_tab[i].path; i = (i + 1) & (cg_cap - 1))
		if (cg_tab[i].id == id)
			return;
	cg_tab[i].path = strdup(path);
	if (cg_tab[i].path) {
		cg_tab[i].id = id;
		cg_count++;
	}
}

static int visit(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	int mount_id;
	const char *rel = fpath + cg_root_len;

	(void)sb;
	(void)ftw;
	if (type != FTW_D)
		return 0;
	h.fh.handle_bytes = sizeof(h.id);
	if (name_to_handle_at(AT_FDCWD, fpath, &h.fh, &mount_id, 0) < 0)
		return 0;
	cg_put(h.id, *rel ? rel : "/");
	return 0;
}

static void scan(void)
{
	clock_gettime(CLOCK_MONOTONIC, &cg_last_scan);
	nftw(cg_root, visit, 16, FTW_PHYS | FTW_MOUNT);
}

static int find_cgroup2(void)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;

	if (!f)
		return -1;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			snprintf(cg_root, sizeof(cg_root), "%s", m->mnt_dir);
			cg_root_len = strlen(cg_root);
			break;
		}
	}
	endmntent(f);
	return cg_root_len ? 0 : -1;
}

int rw_cgroup_init(void)
{
	if (find_cgroup2())
		return -1;	/* no cgroup v2: owners are reported without cgroup */
	cg_cap = MAX_CGROUPS * 2;
	cg_tab = calloc(cg_cap, sizeof(*cg_tab));
	if (!cg_tab)
		return -1;
	scan();
	return 0;
}

static const char *lookup(uint64_t id)
{
	for (size_t i = slot(id); cg_tab[i].path; i = (i + 1) & (cg_cap - 1))
		if (cg_tab[i].id == id)
			return cg_tab[i].path;
	return NULL;
}

int rw_cgroup_path(uint64_t id, char *buf, size_t len)
{
	const char *p;
	struct timespec now;

	if (!cg_tab || !id) {
		buf[0] = 0;
		return -1;
	}
	p = lookup(id);
	if (!p) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec != cg_last_scan.tv_sec) {
			scan();
			p = lookup(id);
		}
	}
	if (!p) {
		buf[0] = 0;
		return -1;
	}
	snprintf(buf, len, "%s", p);
	return 0;
}

void rw_cgroup_free(void)
{
	for (size_t i = 0; cg_tab && i < cg_cap; i++)
		free(cg_tab[i].path);
	free(cg_tab);
	cg_tab = NULL;
	cg_cap = cg_count = 0;
}
