// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Pod UID -> namespace and name.  The kubelet keeps each pod's container
 * logs in a directory named NAMESPACE_NAME_UID under /var/log/pods (its
 * podLogsDir), made before the pod's containers start: by the time a
 * container owns a socket, its pod's directory is there.  A namespace is a
 * DNS label and a pod name a DNS subdomain, neither of which may hold '_',
 * so the name splits at its two underscores.  The directory is root's, but
 * its entries are read as untrusted all the same: a name that does not have
 * that shape, or is longer than Kubernetes allows, is skipped, and what is
 * kept is escaped on output like any name.  The table is rebuilt from what
 * exists at each read (deleted pods go), at most MAX_PODS entries.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "pods.h"
#include "rescan.h"

#define MAX_PODS 8192
#define UID_LEN 36

struct pod {
	char uid[RW_POD_UID_MAX];
	char ns[RW_POD_NS_MAX];
	char name[RW_POD_NAME_MAX];
};

static struct pod **pods;	/* open addressing, 2 * MAX_PODS slots of entries */
static size_t npods;
static char *pods_dir;
static struct rw_rescan pace;

static size_t slot(const char *uid)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (size_t i = 0; i < UID_LEN; i++)
		h = (h ^ (unsigned char)uid[i]) * 0x100000001b3ull;
	return (size_t)h & (2 * MAX_PODS - 1);
}

static void clear(void)
{
	for (size_t i = 0; pods && i < 2 * MAX_PODS; i++) {
		free(pods[i]);
		pods[i] = NULL;
	}
	npods = 0;
}

/* NAMESPACE_NAME_UID -> an entry, or NULL if it has not that shape */
static struct pod *parse(const char *d)
{
	const char *u1 = strchr(d, '_'), *u2 = u1 ? strchr(u1 + 1, '_') : NULL;
	size_t nslen, namelen;
	struct pod *p;

	if (!u2 || strchr(u2 + 1, '_') || strlen(u2 + 1) != UID_LEN)
		return NULL;
	nslen = (size_t)(u1 - d);
	namelen = (size_t)(u2 - u1 - 1);
	if (!nslen || nslen >= RW_POD_NS_MAX || !namelen || namelen >= RW_POD_NAME_MAX)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	memcpy(p->ns, d, nslen);
	memcpy(p->name, u1 + 1, namelen);
	memcpy(p->uid, u2 + 1, UID_LEN);
	return p;
}

static void scan(void)
{
	DIR *dir;
	struct dirent *de;

	if (!rw_rescan_begin(&pace))
		return;
	dir = opendir(pods_dir);
	if (dir) {
		clear();
		while (npods < MAX_PODS && (de = readdir(dir))) {
			struct pod *p = parse(de->d_name);
			size_t i;

			if (!p)
				continue;
			for (i = slot(p->uid); pods[i]; i = (i + 1) & (2 * MAX_PODS - 1))
				;
			pods[i] = p;
			npods++;
		}
		closedir(dir);
	}
	rw_rescan_end(&pace);
}

void rw_pods_init(const char *dir)
{
	pods_dir = strdup(dir);
	pods = calloc(2 * MAX_PODS, sizeof(*pods));
	if (!pods_dir || !pods) {
		rw_pods_free();
		return;
	}
	scan();
}

static const struct pod *find(const char *uid)
{
	for (size_t i = slot(uid); pods[i]; i = (i + 1) & (2 * MAX_PODS - 1))
		if (memcmp(pods[i]->uid, uid, UID_LEN) == 0)
			return pods[i];
	return NULL;
}

bool rw_pods_names(struct rw_container *ctr)
{
	const struct pod *p;

	if (!pods || strlen(ctr->pod_uid) != UID_LEN)
		return false;
	p = find(ctr->pod_uid);
	if (!p) {
		scan();
		p = find(ctr->pod_uid);
	}
	if (!p)
		return false;
	memcpy(ctr->pod_ns, p->ns, sizeof(ctr->pod_ns));
	memcpy(ctr->pod, p->name, sizeof(ctr->pod));
	return true;
}

void rw_pods_free(void)
{
	clear();
	free(pods);
	free(pods_dir);
	pods = NULL;
	pods_dir = NULL;
}
