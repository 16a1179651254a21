// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The command line: --help, the checks of each option, their combinations. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "classify.h"
#include "metrics.h"
#include "options.h"
#include "outfile.h"
#include "summary.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rstwatch [OPTIONS]                 trace this host live (root)\n"
"       rstwatch [OPTIONS] -- CMD [ARGS]   run CMD, trace only its process tree\n"
"       rstwatch -r FILE [-j] [-c] [FILTERS]  replay a trace recorded with -w\n"
"Tell why TCP connections on this host end badly: who reset or gave up on them,\n"
"which process owned the socket, the evidence, and what to do.\n"
"\n"
"Output:\n"
"  -j, --json            JSON Lines, one object per verdict (default: aligned text)\n"
"  -o, --output FILE     write verdicts to FILE (appended) instead of stdout;\n"
"                        SIGHUP reopens it (for logrotate)\n"
"  -w, --write FILE      also record the decoded event stream to FILE (- for\n"
"                        stdout, which then carries only the trace)\n"
"      --file-mode MODE  mode of the -o/-w files rstwatch creates (octal,\n"
"                        default 0600); never through a symlink or hard link\n"
"      --allow-special   -o/-w may name an existing FIFO or character device\n"
"  -r, --read FILE       replay a recorded trace (- for stdin): no BPF, no root;\n"
"                        -r FILE -r FILE...: several hosts' traces merged by\n"
"                        time, the two ends of a connection linked across them\n"
"  -c, --count           print a summary (counts per class, losses) at exit\n"
"  -i, --interval SECS   print a summary of the last SECS seconds every SECS\n"
"  -q, --quiet           no verdict lines: for --metrics, --fail-on or -w alone\n"
"\n"
"Metrics (Prometheus text format, or OpenMetrics when the scraper asks):\n"
"      --metrics [ADDR:]PORT\n"
"                        serve /metrics on PORT of ADDR (default 127.0.0.1;\n"
"                        IPv6 as [::1]:PORT; PORT 0: any free one, printed)\n"
"      --metrics-labels LABEL[,LABEL...]\n"
"                        also count verdicts per owner, by these labels: comm,\n"
"                        container, pod, namespace\n"
"      --metrics-max-series N\n"
"                        at most N per-owner series (default 1000); verdicts\n"
"                        beyond are counted as refused\n"
"\n"
"Lifecycle (by default only the anomalies: TIME_WAIT killed early or skipped\n"
"for overflow, port pressure, stuck CLOSE_WAIT):\n"
"      --time-wait       also report every TIME_WAIT entry and how it ended\n"
"                        (expired, reused by connect() or a SYN): a line per\n"
"                        connection that closes first on a busy host\n"
"      --close-wait SECS report a socket left in CLOSE_WAIT longer than SECS\n"
"                        (default 10), and again when it closes\n"
"      --port-pressure PCT\n"
"                        report an endpoint once its TIME_WAIT sockets reach PCT\n"
"                        percent of the ephemeral port range (default 50)\n"
"\n"
"Gate a command:\n"
"      --fail-on CLASS[,CLASS...]\n"
"                        exit 3, repeating those verdicts on stderr, if any\n"
"                        verdict of these classes occurred (else CMD's status)\n"
"\n"
"Filters (live in the kernel; with -r on the recorded events, alike):\n"
"  -p, --pid PID         only sockets owned by process PID\n"
"      --port PORT       only connections with PORT at either end\n"
"      --netns NS        only network namespace NS: an inode number or a path\n"
"                        such as /run/netns/NAME or /proc/PID/ns/net\n"
"      --cgroup PATH     only sockets owned by processes in cgroup PATH or below\n"
"                        it (a service's, a container's, as the cgroup field\n"
"                        prints it), cgroups made after the start included\n"
"  -4, -6                only IPv4 / only IPv6\n"
"      --class CLASS[,CLASS...]\n"
"                        only these verdicts; ^CLASS or no-CLASS leaves one out\n"
"\n"
"Tuning:\n"
"  -b, --buffer MIB      ring buffer size in MiB, a power of two (default 4)\n"
"      --conn-table N    connections the classifier follows at once (default\n"
"                        16384, up to ~1.3 MiB); beyond, the least recently\n"
"                        used is dropped: counted as evicted, and its verdict\n"
"                        marked partial, unless its verdict was out already\n"
"      --sock-table N    sockets, and TIME_WAIT sockets, the kernel side follows\n"
"                        at once (default 65536, ~170 bytes each in kernel\n"
"                        memory); rstwatch warns when one fills\n"
"  -v, --verbose         libbpf's messages and the kernel features in use\n"
"      --user NAME       run as user NAME once the programs are attached\n"
"      --btf FILE        the kernel's BTF from FILE (BTFHub style) instead of\n"
"                        /sys/kernel/btf/vmlinux\n"
"      --pods-dir DIR    the kubelet's pod log directories, NAMESPACE_NAME_UID,\n"
"                        for the names of the owners' pods (default\n"
"                        /var/log/pods; nothing if it does not exist)\n"
"      --events          print every decoded kernel event instead of verdicts\n"
"                        (to see what the classifier sees)\n"
"  -h, --help            this help\n"
"  -V, --version         version\n"
"\n"
"Verdicts: linger0 unread_data data_after_close linger2 memory killed\n"
"timeout/{retransmit,syn,keepalive,user_timeout,zero_window} refused half_open\n"
"time_wait_rst bad_ack listen_overflow peer_reset, from the path: middlebox_reset\n"
"(an RST neither end sent: both ends watched here) challenged_rst/{in_window,\n"
"out_of_window} (an RST the kernel refused), and the lifecycle events\n"
"time_wait[/{expired,reused,killed}] time_wait_overflow close_wait/{stuck,closed}\n"
"port_pressure; unclassified.  See rstwatch(8).\n"
"Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYSLOG; once attached it drops every\n"
"capability (see SECURITY in rstwatch(8)).  Stop with Ctrl-C.\n");
}

/* A usage error: one line, pointing at --help, and exit 2. */
__attribute__((format(printf, 1, 2), noreturn))
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("rstwatch: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see rstwatch --help)\n", stderr);
	exit(EXIT_USAGE);
}

static unsigned long parse_num(const char *s, unsigned long min, unsigned long max,
			       const char *what)
{
	unsigned long v;
	char *end;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		die_usage(what, s);
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		die_usage(what, s);
	return v;
}

/* --netns takes an inode number or a path to a netns file. */
static uint32_t parse_netns(const char *s)
{
	struct stat st;

	if (*s >= '0' && *s <= '9')
		return (uint32_t)parse_num(s, 1, UINT32_MAX, "--netns: '%s' is not a netns inode or path");
	if (stat(s, &st) < 0) {
		fprintf(stderr, "rstwatch: --netns: %s: %s (give a netns inode or a path such as "
			"/run/netns/NAME)\n", s, strerror(errno));
		exit(EXIT_USAGE);
	}
	return (uint32_t)st.st_ino;
}

/* --fail-on unread_data,half_open, --class ^time_wait -> a bit per class */
static uint32_t parse_classes(const char *opt, const char *list, bool exclude)
{
	char err[160];
	uint32_t mask;

	if (rw_parse_classes(opt, list, exclude, &mask, err, sizeof(err)))
		die_usage("%s", err);
	return mask;
}

/* --file-mode 0640: octal, read and write bits only */
static mode_t parse_mode(const char *s)
{
	unsigned long m;
	char *end;

	errno = 0;
	m = strtoul(s, &end, 8);
	if (!*s || *s == '-' || *s == '+' || errno || *end || (m & ~0666ul))
		die_usage("--file-mode: '%s' is not a file mode (octal, within 0666, e.g. 0640)", s);
	return (mode_t)m;
}

/* -o/-w /dev/fd/N: N must be open now, before rstwatch opens its own files. */
static void check_inherited(const char *what, const char *path)
{
	int fd = path ? rw_outfile_inherited(path) : -1;

	if (fd > 2 && fcntl(fd, F_GETFD) < 0) {
		fprintf(stderr, "rstwatch: %s %s: descriptor %d is not open (open it when starting "
			"rstwatch, e.g. %d>FILE)\n", what, path, fd, fd);
		exit(EXIT_USAGE);
	}
}

/* A uid or gid from the environment: decimal, not (id_t)-1. */
static bool parse_id(const char *s, uint32_t *id)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return false;
	v = strtoull(s, &end, 10);
	if (errno || *end || v >= UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

/*
 * -- CMD as root under sudo(8) runs CMD as the user who called sudo
 * (SUDO_UID, SUDO_GID).  Read them strictly now: garbage must not quietly
 * become uid 0 (strtoul("abc") is 0) and run CMD as root.
 */
static void parse_sudo_ids(struct options *o)
{
	const char *u = getenv("SUDO_UID"), *g = getenv("SUDO_GID");
	uint32_t uid, gid;

	if (!o->cmd || geteuid() != 0 || (!u && !g))
		return;
	if (!u || !g || !parse_id(u, &uid) || !parse_id(g, &gid)) {
		fprintf(stderr, "rstwatch: -- %s: SUDO_UID '%.40s' and SUDO_GID '%.40s' are not a user and "
			"group id: CMD would run as root (set both to numbers, or unset both to run CMD "
			"as root)\n", o->cmd[0], u ? u : "(unset)", g ? g : "(unset)");
		exit(EXIT_USAGE);
	}
	o->sudo = true;
	o->sudo_uid = uid;
	o->sudo_gid = gid;
}

/* The option getopt just rejected: "-x" from a cluster like "-jx", else the word. */
static const char *optname(const char *word)
{
	static char shortopt[3] = "-?";

	if (optopt && word[0] == '-' && word[1] != '-') {
		shortopt[1] = (char)optopt;
		return shortopt;
	}
	return word;
}

void rw_parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_PORT = 256, OPT_NETNS, OPT_EVENTS, OPT_FAIL_ON, OPT_USER, OPT_BTF,
	       OPT_CLOSE_WAIT, OPT_PRESSURE, OPT_CONN_TABLE, OPT_TIME_WAIT, OPT_FILE_MODE,
	       OPT_SPECIAL, OPT_METRICS, OPT_METRICS_LABELS, OPT_METRICS_SERIES, OPT_SOCK_TABLE,
	       OPT_PODS_DIR, OPT_CGROUP, OPT_CLASS };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "buffer", required_argument, NULL, 'b' },
		{ "events", no_argument, NULL, OPT_EVENTS },
		{ "fail-on", required_argument, NULL, OPT_FAIL_ON },
		{ "close-wait", required_argument, NULL, OPT_CLOSE_WAIT },
		{ "port-pressure", required_argument, NULL, OPT_PRESSURE },
		{ "time-wait", no_argument, NULL, OPT_TIME_WAIT },
		{ "user", required_argument, NULL, OPT_USER },
		{ "btf", required_argument, NULL, OPT_BTF },
		{ "conn-table", required_argument, NULL, OPT_CONN_TABLE },
		{ "sock-table", required_argument, NULL, OPT_SOCK_TABLE },
		{ "write", required_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' },
		{ "file-mode", required_argument, NULL, OPT_FILE_MODE },
		{ "allow-special", no_argument, NULL, OPT_SPECIAL },
		{ "count", no_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "metrics-labels", required_argument, NULL, OPT_METRICS_LABELS },
		{ "metrics-max-series", required_argument, NULL, OPT_METRICS_SERIES },
		{ "pods-dir", required_argument, NULL, OPT_PODS_DIR },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "class", required_argument, NULL, OPT_CLASS },
		{ "interval", required_argument, NULL, 'i' },
		{ "read", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool v4 = false, v6 = false;
	unsigned long mib;
	char err[256];
	int c;

	memset(o, 0, sizeof(*o));
	o->load.ringbuf_bytes = 4u << 20;
	o->close_wait_ns = RW_CLOSE_WAIT_DEFAULT_NS;
	o->pressure_pct = RW_PRESSURE_DEFAULT_PCT;
	o->conn_capacity = CONN_CAPACITY;
	o->file_mode = RW_FILE_MODE_DEFAULT;
	o->metrics_max_series = RW_METRICS_SERIES_DEFAULT;
	o->filter.classes = RW_ALL_CLASSES;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:jp:b:vhV46w:r:ci:o:q", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case 'p':
			o->load.filters.pid = (uint32_t)parse_num(optarg, 1, INT_MAX,
								   "-p: '%s' is not a process id");
			break;
		case OPT_PORT:
			o->load.filters.port = (uint16_t)parse_num(optarg, 1, 65535,
								    "--port: '%s' is not a port (1-65535)");
			break;
		case OPT_NETNS:
			o->load.filters.netns = parse_netns(optarg);
			break;
		case OPT_EVENTS:
			o->events = true;
			break;
		case OPT_FAIL_ON:
			o->fail_on |= parse_classes("--fail-on", optarg, false);
			break;
		case OPT_CLOSE_WAIT:
			o->close_wait_ns = parse_num(optarg, 1, 86400, "--close-wait: '%s' is not a "
						     "number of seconds (1-86400)") * 1000000000ull;
			break;
		case OPT_PRESSURE:
			o->pressure_pct = (unsigned int)parse_num(optarg, 1, 100, "--port-pressure: "
								  "'%s' is not a percentage (1-100)");
			break;
		case OPT_TIME_WAIT:
			o->load.tw_events = true;
			break;
		case OPT_CONN_TABLE:
			o->conn_capacity = (uint32_t)parse_num(optarg, 16, 1u << 24,
				"--conn-table: '%s' is not a number of connections (16-16777216)");
			break;
		case OPT_SOCK_TABLE:
			o->load.sock_table = (uint32_t)parse_num(optarg, 1024, 1u << 24,
				"--sock-table: '%s' is not a number of sockets (1024-16777216)");
			break;
		case OPT_BTF:
			o->load.btf_path = optarg;
			break;
		case OPT_USER:
			if (rw_privs_user(&o->privs, optarg, err, sizeof(err)))
				die_usage("%s", err);
			break;
		case 'w':
			o->write_path = optarg;
			break;
		case 'o':
			o->out_path = optarg;
			break;
		case OPT_FILE_MODE:
			o->file_mode = parse_mode(optarg);
			break;
		case OPT_SPECIAL:
			o->allow_special = true;
			break;
		case 'r':
			if (o->nread == RW_MERGE_MAX)
				die_usage("-r %s: at most 32 trace files at once", optarg);
			for (size_t i = 0; i < o->nread; i++)
				if (strcmp(optarg, "-") == 0 && strcmp(o->read_paths[i], "-") == 0)
					die_usage("-r -: standard input can be given once");
			o->read_paths[o->nread++] = optarg;
			o->read_path = o->read_paths[0];
			break;
		case 'c':
			o->count = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_METRICS:
			o->metrics_addr = optarg;
			break;
		case OPT_METRICS_LABELS:
			if (rw_metrics_parse_labels(optarg, &o->metrics_labels, err, sizeof(err)))
				die_usage("%s", err);
			break;
		case OPT_PODS_DIR:
			o->pods_dir = optarg;
			break;
		case OPT_CGROUP:
			o->cgroup = optarg;
			break;
		case OPT_CLASS:
			o->filter.classes &= parse_classes("--class", optarg, true);
			break;
		case OPT_METRICS_SERIES:
			o->metrics_max_series = (uint32_t)parse_num(optarg, 1, RW_METRICS_SERIES_MAX,
				"--metrics-max-series: '%s' is not a number of series (1-100000)");
			break;
		case 'i':
			o->interval_ns = parse_num(optarg, 1, 86400,
						   "-i: '%s' is not a number of seconds (1-86400)") *
					 1000000000ull;
			break;
		case 'b':
			mib = parse_num(optarg, 1, 1024, "-b: '%s' is not a size in MiB (1-1024)");
			if (mib & (mib - 1))
				die_usage("-b: %s MiB is not a power of two", optarg);
			o->load.ringbuf_bytes = mib << 20;
			break;
		case '4':
			v4 = true;
			break;
		case '6':
			v6 = true;
			break;
		case 'v':
			o->verbose = o->load.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("rstwatch %s\n", RSTWATCH_VERSION);
			exit(0);
		case ':':
			die_usage("option '%s' needs an argument", optname(argv[optind - 1]));
			break;
		default:
			die_usage("unknown option '%s'", optname(argv[optind - 1]));
		}
	}
	if (optind < argc)
		o->cmd = argv + optind;	/* "+" in the optstring: CMD's own options stay its own */
	o->load.filters.tree = o->cmd != NULL;
	o->load.close_wait_ns = o->close_wait_ns;
	o->load.pressure_pct = o->pressure_pct;
	if (v4 && v6)
		die_usage("-4 and -6 exclude each other; give neither for both");
	o->load.filters.family = v4 ? AF_INET : v6 ? AF_INET6 : 0;
	if (o->read_path && o->write_path)
		die_usage("-r and -w exclude each other");
	if (o->read_path && o->load.btf_path)
		die_usage("--btf applies when tracing live; -r reads no kernel types");
	if (o->read_path && o->pods_dir)
		die_usage("--pods-dir applies when tracing live; a trace carries the pods' names");
	if (o->read_path && o->privs.user_set)
		die_usage("--user applies when tracing live; -r needs no privilege");
	if (o->quiet && (o->json || o->out_path || o->count || o->interval_ns || o->events))
		die_usage("-q prints no verdicts: it excludes -j, -o, -c, -i and --events");
	if ((o->metrics_labels || o->metrics_max_series != RW_METRICS_SERIES_DEFAULT) &&
	    !o->metrics_addr)
		die_usage("--metrics-labels and --metrics-max-series go with --metrics");
	if (o->read_path && o->metrics_addr)
		die_usage("--metrics serves a live run; -r replays and exits");
	if (o->read_path && o->cmd)
		die_usage("-r replays a trace; it does not run '%s'", o->cmd[0]);
	check_inherited("-o", o->out_path);
	check_inherited("-w", o->write_path);
	if (o->out_path && o->write_path && rw_outfile_inherited(o->out_path) >= 0 &&
	    rw_outfile_inherited(o->out_path) == rw_outfile_inherited(o->write_path))
		die_usage("-o %s and -w name the same descriptor; give one of them a file", o->out_path);
	parse_sudo_ids(o);
	if (!o->filter.classes)
		die_usage("--class: the lists given together select no class");
	/* live the kernel filters; a replay filters the events it reads */
	o->filter.pid = o->load.filters.pid;
	o->filter.port = o->load.filters.port;
	o->filter.netns = o->load.filters.netns;
	o->filter.family = v4 ? 4 : v6 ? 6 : 0;
	if (o->cgroup && o->read_path &&
	    rw_cgroup_normalize(o->cgroup, o->filter.cgroup, sizeof(o->filter.cgroup)))
		die_usage("--cgroup %s: not a cgroup path as the cgroup field prints it (e.g. "
			  "/system.slice/nginx.service)", o->cgroup);
	if (o->cgroup && !o->read_path &&
	    rw_cgroup_resolve(o->cgroup, &o->load.filters.cgroup_id, &o->load.filters.cgroup_level,
			      err, sizeof(err)))
		die_usage("%s", err);
}
