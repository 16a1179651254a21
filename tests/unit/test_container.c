// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Container and pod from cgroup paths: each runtime's layout under both
 * cgroup drivers, as the runtimes name them, and names that only look alike.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "container.h"
#include "pods.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UID "4f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6b"
#define UID_ "4f8e2c1a_7b3d_4e5f_9a0b_1c2d3e4f5a6b"

static void expect(const char *path, const char *runtime, const char *id, const char *uid)
{
	struct rw_container c;

	rw_container_from_path(path, &c);
	TEST(path);
	CHECK_STR("runtime", c.runtime, runtime);
	CHECK_STR("container id", c.id, id);
	CHECK_STR("pod UID", c.pod_uid, uid);
	CHECK_STR("pod namespace (not from the path)", c.pod_ns, "");
	CHECK_STR("pod name (not from the path)", c.pod, "");
}

static void mkdirf(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mkdir(path, 0755))
		perror(path);
}

static void pod_names(const char *uid, const char *ns, const char *name)
{
	struct rw_container c = { 0 };

	snprintf(c.pod_uid, sizeof(c.pod_uid), "%s", uid);
	TEST(uid);
	CHECK_INT("found", rw_pods_names(&c), ns[0] != 0);
	CHECK_STR("namespace", c.pod_ns, ns);
	CHECK_STR("name", c.pod, name);
}

/* The kubelet's pod log directories: NAMESPACE_NAME_UID, and what is not. */
static void pods(void)
{
	char dir[] = "/tmp/rstwatch-pods-XXXXXX", cmd[64];
	char longns[128];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	mkdirf(dir, "default_web-0_" UID);
	mkdirf(dir, "kube-system_coredns-5d78c9869d-x7k2p_11111111-2222-3333-4444-555555555555");
	mkdirf(dir, "a_b_c_66666666-2222-3333-4444-555555555555");	/* three underscores */
	mkdirf(dir, "ns_77777777-2222-3333-4444-555555555555");	/* no name */
	memset(longns, 'n', 64);				/* a 64-byte namespace */
	snprintf(longns + 64, sizeof(longns) - 64, "_p_88888888-2222-3333-4444-555555555555");
	mkdirf(dir, longns);
	rw_pods_init(dir);
	pod_names(UID, "default", "web-0");
	pod_names("11111111-2222-3333-4444-555555555555", "kube-system", "coredns-5d78c9869d-x7k2p");
	pod_names("66666666-2222-3333-4444-555555555555", "", "");
	pod_names("77777777-2222-3333-4444-555555555555", "", "");
	pod_names("88888888-2222-3333-4444-555555555555", "", "");
	pod_names("99999999-2222-3333-4444-555555555555", "", "");
	/* a pod made after: found once the directory is read again (at most
	 * every 10 ms) */
	mkdirf(dir, "late_pod-1_99999999-2222-3333-4444-555555555555");
	nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	pod_names("99999999-2222-3333-4444-555555555555", "late", "pod-1");
	rw_pods_free();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		perror(cmd);
}

int main(void)
{
	pods();
	/* containerd */
	expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	       ".slice/cri-containerd-" ID ".scope", "containerd", ID, UID);
	expect("/kubepods/burstable/pod" UID "/" ID, "", ID, UID);
	/* CRI-O */
	expect("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	       ".slice/crio-" ID ".scope", "cri-o", ID, UID);
	expect("/kubepods/besteffort/pod" UID "/crio-" ID, "cri-o", ID, UID);
	/* its monitor is not the container */
	expect("/kubepods.slice/kubepods-pod" UID_ ".slice/crio-conmon-" ID ".scope", "", "", UID);
	/* Docker, alone and through cri-dockerd */
	expect("/system.slice/docker-" ID ".scope", "docker", ID, "");
	expect("/docker/" ID, "docker", ID, "");
	expect("/kubepods.slice/kubepods-pod" UID_ ".slice/docker-" ID ".scope", "docker", ID, UID);
	/* Podman: systemd (rootful, rootless, with its "container" child), cgroupfs */
	expect("/machine.slice/libpod-" ID ".scope", "podman", ID, "");
	expect("/machine.slice/libpod-" ID ".scope/container", "podman", ID, "");
	expect("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID ".scope",
	       "podman", ID, "");
	expect("/libpod_parent/libpod-" ID, "podman", ID, "");
	expect("/machine.slice/libpod-conmon-" ID ".scope", "", "", "");
	/* a guaranteed pod (right under kubepods), kubepods under another root
	 * (kubelet --cgroup-root), cgroups below the container's */
	expect("/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope", "containerd",
	       ID, UID);
	expect("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
	       "kubelet-kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID ".scope/init.scope",
	       "containerd", ID, UID);
	expect("/kubepods/pod" UID "/" ID "/system.slice/nginx.service", "", ID, UID);
	/* the pod's own cgroup: a pod, no container yet */
	expect("/kubepods/burstable/pod" UID, "", "", UID);
	/* names that only look alike */
	expect("/system.slice/nginx.service", "", "", "");
	expect("/", "", "", "");
	expect("", "", "", "");
	expect("/system.slice/docker-" ID "0.scope", "", "", "");		/* 65 digits */
	expect("/system.slice/docker-0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
	       ".scope", "", "", "");						/* upper case */
	expect("/pod" UID "/x", "", "", "");					/* no kubepods */
	expect("/kubepods/pod4f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6", "", "", "");	/* short UID */
	expect("/kubepods/pod" UID_, "", "", "");				/* '_' in cgroupfs */
	expect("/kubepods.slice/kubepods-pod" UID ".slice", "", "", "");	/* '-' in a slice */
	expect("/kubepods/docker/" ID, "docker", ID, "");
	return check_done("container");
}
