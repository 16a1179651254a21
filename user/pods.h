/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A pod's namespace and name from its UID, read from the kubelet's pod log
 * directories (/var/log/pods/NAMESPACE_NAME_UID, --pods-dir): no API access,
 * no credentials, only a directory a node-local agent can mount read-only.
 */
#ifndef RSTWATCH_PODS_H
#define RSTWATCH_PODS_H

#include <stdbool.h>

#include "event.h"

#define RW_PODS_DIR_DEFAULT "/var/log/pods"

/* Read dir now; a directory that does not exist (yet) is not an error. */
void rw_pods_init(const char *dir);
/* Fill ctr->pod_ns and ctr->pod for ctr->pod_uid, reading the directory
 * again (paced as rescan.h says) if the UID is new; false if unknown. */
bool rw_pods_names(struct rw_container *ctr);
void rw_pods_free(void);

#endif /* RSTWATCH_PODS_H */
