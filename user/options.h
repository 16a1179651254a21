// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The command line: what rw_parse_args() (user/options.c) makes of it. */
#ifndef RW_OPTIONS_H
#define RW_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "filter.h"
#include "loader.h"
#include "merge.h"
#include "privs.h"

#ifndef RSTWATCH_VERSION
#define RSTWATCH_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2		/* a bad command line, or an -o/-w file refused */
#define CONN_CAPACITY 16384	/* connections the classifier tracks at once (default) */

struct options {
	bool json;
	bool events;	/* --events: print decoded events, not verdicts */
	bool verbose;
	const char *write_path;	/* -w: record the event stream */
	const char *read_path;	/* -r: replay a recorded stream (the first -r) */
	const char *read_paths[RW_MERGE_MAX];	/* every -r: merged by time */
	size_t nread;
	const char *out_path;	/* -o: verdicts to this file, reopened on SIGHUP */
	mode_t file_mode;	/* --file-mode: of the -o and -w files rstwatch creates */
	bool allow_special;	/* --allow-special: -o/-w may be a FIFO or character device */
	bool sudo;		/* -- CMD runs as sudo_uid:sudo_gid (SUDO_UID, SUDO_GID) */
	uid_t sudo_uid;
	gid_t sudo_gid;
	bool count;		/* -c: summary at exit */
	char **cmd;		/* -- CMD ARGS: run it, trace its process tree */
	uint32_t fail_on;	/* --fail-on: bit per enum rw_class */
	uint64_t interval_ns;	/* -i: summary every so often, 0 never */
	uint64_t close_wait_ns;	/* --close-wait */
	unsigned int pressure_pct;	/* --port-pressure */
	uint32_t conn_capacity;	/* --conn-table: connections tracked at once */
	bool quiet;		/* -q: no verdict lines (metrics, --fail-on, -w only) */
	const char *metrics_addr;	/* --metrics [ADDR:]PORT */
	uint32_t metrics_labels;	/* --metrics-labels: RW_ML_* */
	uint32_t metrics_max_series;	/* --metrics-max-series */
	const char *pods_dir;	/* --pods-dir: the kubelet's pod log directories */
	const char *cgroup;	/* --cgroup, as given */
	struct rw_filter filter;	/* --class; on replay the kernel's filters too */
	struct rw_loader_opts load;
	struct rw_privs privs;	/* --user */
};

/* Fill o from argv; on a usage error print one line and exit EXIT_USAGE;
 * -h and -V print and exit 0. */
void rw_parse_args(int argc, char **argv, struct options *o);

#endif
