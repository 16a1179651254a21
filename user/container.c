// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Container and pod from cgroup names.  Each runtime names the cgroup of a
 * container after its 64-hex-digit id, differently under each cgroup driver
 * (systemd: scope and slice units, whose names use '-' for hierarchy, so the
 * kubelet writes a pod's UID with '_'; cgroupfs: plain directories):
 *
 *   containerd systemd   .../kubepods-QOS-pod<UID_>.slice/cri-containerd-<ID>.scope
 *              cgroupfs  .../kubepods/QOS/pod<UID>/<ID>
 *   CRI-O      systemd   .../kubepods-QOS-pod<UID_>.slice/crio-<ID>.scope
 *              cgroupfs  .../kubepods/QOS/pod<UID>/crio-<ID>
 *   Docker     systemd   /system.slice/docker-<ID>.scope (and, under
 *                        Kubernetes through cri-dockerd, in the pod's slice)
 *              cgroupfs  /docker/<ID>
 *   Podman     systemd   /machine.slice/libpod-<ID>.scope (rootless: below
 *                        user@UID.service), with a "container" child in
 *                        some modes
 *              cgroupfs  /libpod_parent/libpod-<ID>
 *
 * (QOS: burstable or besteffort; a guaranteed pod sits right under
 * kubepods.)  A bare <ID> under a pod is containerd's, or Docker's through
 * cri-dockerd, which name it alike: its runtime stays unknown.  Cgroups
 * below a container's (systemd inside it, a runtime's "container" child)
 * belong to that container.  The monitors the runtimes run beside a
 * container (crio-conmon-<ID>, libpod-conmon-<ID>) are not the container.
 * Names are matched anywhere in the path, not from the root: hosts nest
 * kubepods under other slices (kubelet --cgroup-root), and the names are
 * what the runtimes write, whatever lies above.
 */
#include <stdio.h>
#include <string.h>

#include "container.h"

#define ID_LEN 64
#define UID_LEN 36

static bool hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* s[0..len) is exactly a container id */
static bool is_id(const char *s, size_t len)
{
	if (len != ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!hex(s[i]))
			return false;
	return true;
}

/* s[0..UID_LEN) is a pod UID whose four separators are sep */
static bool is_uid(const char *s, char sep)
{
	for (size_t i = 0; i < UID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != sep : !hex(s[i]))
			return false;
	}
	return true;
}

static bool ends_with(const char *s, size_t len, const char *sfx)
{
	size_t n = strlen(sfx);

	return len >= n && memcmp(s + len - n, sfx, n) == 0;
}

static bool starts_with(const char *s, const char *pfx)
{
	return strncmp(s, pfx, strlen(pfx)) == 0;
}

/* The pod UID a name gives, in its usual form with '-', or false. */
static bool pod_uid(const struct rw_cg_ctx *ctx, const char *name, size_t len, char *uid)
{
	const char *u;

	if (!ctx->kubepods)
		return false;
	/* systemd: kubepods[-QOS]-pod<UID_>.slice */
	if (ends_with(name, len, ".slice") && len >= UID_LEN + 10) {
		u = name + len - 6 - UID_LEN;
		if (memcmp(u - 4, "-pod", 4) == 0 && is_uid(u, '_')) {
			memcpy(uid, u, UID_LEN);
			for (size_t i = 0; i < UID_LEN; i++)
				if (uid[i] == '_')
					uid[i] = '-';
			uid[UID_LEN] = 0;
			return true;
		}
	}
	/* cgroupfs: pod<UID> */
	if (len == UID_LEN + 3 && starts_with(name, "pod") && is_uid(name + 3, '-')) {
		memcpy(uid, name + 3, UID_LEN);
		uid[UID_LEN] = 0;
		return true;
	}
	return false;
}

static const struct {
	const char *prefix, *suffix, *runtime;
} units[] = {
	{ "cri-containerd-", ".scope", "containerd" },
	{ "crio-", ".scope", "cri-o" },
	{ "crio-", "", "cri-o" },
	{ "docker-", ".scope", "docker" },
	{ "libpod-", ".scope", "podman" },
	{ "libpod-", "", "podman" },
};

/* The runtime and id a name gives ("" runtime: an id alone), or false. */
static bool container_id(const struct rw_cg_ctx *ctx, const char *name, size_t len,
			 const char **runtime, const char **id)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t p = strlen(units[i].prefix), s = strlen(units[i].suffix);

		if (len == p + ID_LEN + s && starts_with(name, units[i].prefix) &&
		    ends_with(name, len, units[i].suffix) && is_id(name + p, ID_LEN)) {
			*runtime = units[i].runtime;
			*id = name + p;
			return true;
		}
	}
	if (is_id(name, len)) {
		*runtime = ctx->docker_parent ? "docker" : "";
		*id = name;
		return true;
	}
	return false;
}

void rw_container_step(struct rw_cg_ctx *ctx, const char *name)
{
	size_t len = strlen(name);
	const char *runtime, *id;
	char uid[UID_LEN + 1];

	if (strstr(name, "kubepods"))
		ctx->kubepods = true;
	if (pod_uid(ctx, name, len, uid)) {
		memset(&ctx->c, 0, sizeof(ctx->c));	/* a new pod: no container yet */
		memcpy(ctx->c.pod_uid, uid, sizeof(uid));
	} else if (!ctx->c.id[0] && container_id(ctx, name, len, &runtime, &id)) {
		snprintf(ctx->c.runtime, sizeof(ctx->c.runtime), "%s", runtime);
		memcpy(ctx->c.id, id, ID_LEN);
		ctx->c.id[ID_LEN] = 0;
	}
	ctx->docker_parent = strcmp(name, "docker") == 0;
}

void rw_container_from_path(const char *path, struct rw_container *out)
{
	struct rw_cg_ctx ctx = { 0 };
	char name[256];

	while (*path) {
		size_t n = strcspn(path, "/");

		if (n > 0 && n < sizeof(name)) {
			memcpy(name, path, n);
			name[n] = 0;
			rw_container_step(&ctx, name);
		}
		path += n;
		while (*path == '/')
			path++;
	}
	*out = ctx.c;
}
