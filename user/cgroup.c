// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * cgroup v2 id -> path, and the container and pod the path names.
 * bpf_get_current_cgroup_id() returns the kernfs node id in the v2
 * hierarchy, which is also what name_to_handle_at() reports for the cgroup's
 * directory.  The v2 hierarchy is found in /proc/self/mounts: it is
 * /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones.
 * The tree is walked once at start and again when an unknown id shows up (a
 * new container or service).
 *
 * Whoever may create cgroups (a container runtime, and on systemd hosts every
 * logged-in user, in the subtree delegated to user@.service) chooses their
 * names, depth and number, so the walk is bounded: names are kept as the
 * kernel gives them (escaped only on output) but cut at RW_CGROUP_MAX - 1
 * bytes, the depth at MAX_DEPTH, the directories per walk at MAX_VISITS, and
 * the time spent walking as rescan.h says.  The walk goes
 * by directory fd (openat, name_to_handle_at(AT_EMPTY_PATH)), not by path,
 * so a path longer than PATH_MAX (glibc's nftw() gives up on those, and
 * asserts with FTW_CHDIR) is still found.  Each directory's name is read
 * whole on the way down (container.c), so the container id of a path cut
 * short (a Kubernetes container's is some 200 bytes) is still known.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "filter.h"
#include "rescan.h"

#define MAX_CGROUPS 65536
#define MAX_DEPTH 32			/* levels below the root; 2 fds each while walking */
#define MAX_VISITS (2 * MAX_CGROUPS)	/* directories looked at in one walk */

struct cg_entry {
	uint64_t id;
	char *path;
	struct rw_container *ctr;	/* NULL: no container or pod */
};

static struct cg_entry *cg_tab;	/* open addressing, cg_cap slots */
static size_t cg_cap, cg_count;
static struct rw_rescan cg_pace;
static size_t cg_visits;
static char cg_root[256];	/* the cgroup2 mount point */
static size_t cg_root_len;

static size_t slot(uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (cg_cap - 1);
}

static bool cg_full(void)
{
	return cg_count * 2 >= cg_cap;	/* keep probes short: half full is full */
}

static void cg_clear(void)
{
	for (size_t i = 0; i < cg_cap; i++) {
		free(cg_tab[i].path);
		free(cg_tab[i].ctr);
		cg_tab[i].path = NULL;
		cg_tab[i].ctr = NULL;
	}
	cg_count = 0;
}

static void cg_put(uint64_t id, const char *path, const struct rw_cg_ctx *ctx)
{
	size_t i;

	if (cg_full())
		return;
	for (i = slot(id); cg_tab[i].path; i = (i + 1) & (cg_cap - 1))
		if (cg_tab[i].id == id)
			return;
	cg_tab[i].path = strndup(path, RW_CGROUP_MAX - 1);
	if (!cg_tab[i].path)
		return;
	cg_tab[i].id = id;
	cg_count++;
	if (ctx->c.id[0] || ctx->c.pod_uid[0]) {
		cg_tab[i].ctr = malloc(sizeof(*cg_tab[i].ctr));
		if (cg_tab[i].ctr)
			*cg_tab[i].ctr = ctx->c;
	}
}

/*
 * Record the cgroup directory fd (path: its name below the root, already cut
 * to fit; ctx: what the names down to it said), then its subdirectories on
 * the same mount.  Takes fd.
 */
static void visit(int fd, const char *path, size_t len, const struct rw_cg_ctx *ctx, dev_t dev,
		  int depth)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(h.id) };
	char sub[RW_CGROUP_MAX];
	struct rw_cg_ctx child;
	struct dirent *de;
	struct stat st;
	int mount_id, cfd, n;
	DIR *d;

	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) == 0)
		cg_put(h.id, len ? path : "/", ctx);
	if (depth >= MAX_DEPTH || cg_full() || !(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while (cg_visits < MAX_VISITS && !cg_full() && (de = readdir(d))) {
		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue;	/* gone since readdir, or not ours to read */
		if (fstat(cfd, &st) < 0 || st.st_dev != dev) {
			close(cfd);
			continue;
		}
		cg_visits++;
		/* cut at RW_CGROUP_MAX - 1 bytes: what is kept of a long path */
		n = snprintf(sub, sizeof(sub), "%.*s/%s", (int)len, path, de->d_name);
		child = *ctx;
		rw_container_step(&child, de->d_name);
		visit(cfd, sub, n < 0 ? 0 : (size_t)n < sizeof(sub) ? (size_t)n : sizeof(sub) - 1,
		      &child, dev, depth + 1);
	}
	closedir(d);
}

static void scan(void)
{
	struct rw_cg_ctx root = { 0 };
	struct stat st;
	int fd;

	if (cg_full())
		cg_clear();	/* rebuilt from what exists now: removed cgroups go */
	cg_visits = 0;
	fd = open(cg_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0)
		visit(fd, "", 0, &root, st.st_dev, 0);
	else if (fd >= 0)
		close(fd);
}

static int find_cgroup2(void)
{
	FILE *f;

	if (cg_root_len)
		return 0;
	f = setmntent("/proc/self/mounts", "r");
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

int rw_cgroup_resolve(const char *arg, uint64_t *id, uint32_t *level, char *err, size_t errlen)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(h.id) };
	char path[PATH_MAX], full[PATH_MAX + 256];
	const char *rel = arg;
	int fd, mount_id;

	if (!cg_root_len && find_cgroup2()) {
		snprintf(err, errlen, "--cgroup %.200s: no cgroup v2 hierarchy is mounted", arg);
		return -1;
	}
	/* below the mount point, or as the cgroup field prints it */
	if (strncmp(arg, cg_root, cg_root_len) == 0 &&
	    (arg[cg_root_len] == '/' || arg[cg_root_len] == 0))
		rel = arg[cg_root_len] ? arg + cg_root_len : "/";
	if (rw_cgroup_normalize(rel, path, sizeof(path))) {
		snprintf(err, errlen, "--cgroup %.200s: not a cgroup path (give it as the cgroup field "
			 "prints it, e.g. /system.slice/nginx.service)", arg);
		return -1;
	}
	snprintf(full, sizeof(full), "%s%s", cg_root, path);
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH)) {
		snprintf(err, errlen, "--cgroup %.200s: %s: %s (give an existing cgroup, as the cgroup "
			 "field prints it)", arg, full, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	*id = h.id;
	*level = 0;
	for (const char *p = path; *p; p++)
		*level += *p == '/' && p[1];
	return 0;
}

int rw_cgroup_init(void)
{
	if (find_cgroup2())
		return -1;	/* no cgroup v2: owners are reported without cgroup */
	cg_cap = MAX_CGROUPS * 2;
	cg_tab = calloc(cg_cap, sizeof(*cg_tab));
	if (!cg_tab)
		return -1;
	rw_rescan_begin(&cg_pace);
	scan();
	rw_rescan_end(&cg_pace);
	return 0;
}

static const struct cg_entry *lookup(uint64_t id)
{
	for (size_t i = slot(id); cg_tab[i].path; i = (i + 1) & (cg_cap - 1))
		if (cg_tab[i].id == id)
			return &cg_tab[i];
	return NULL;
}

int rw_cgroup_lookup(uint64_t id, char *buf, size_t len, struct rw_container *ctr)
{
	const struct cg_entry *e;

	buf[0] = 0;
	memset(ctr, 0, sizeof(*ctr));
	if (!cg_tab || !id)
		return -1;
	e = lookup(id);
	if (!e && rw_rescan_begin(&cg_pace)) {
		scan();
		rw_rescan_end(&cg_pace);
		e = lookup(id);
	}
	if (!e)
		return -1;
	snprintf(buf, len, "%s", e->path);
	if (e->ctr)
		*ctr = *e->ctr;
	return 0;
}

void rw_cgroup_free(void)
{
	if (cg_tab)
		cg_clear();
	free(cg_tab);
	cg_tab = NULL;
	cg_cap = cg_count = 0;
}
