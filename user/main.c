// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* rstwatch: argv -> options -> trace -> decode -> classify -> output. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "classify.h"
#include "decode.h"
#include "loader.h"
#include "output.h"
#include "privs.h"
#include "sink.h"
#include "summary.h"
#include "trace.h"

#ifndef RSTWATCH_VERSION
#define RSTWATCH_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2
#define EXIT_FORBIDDEN 3	/* --fail-on matched */
#define FORBIDDEN_SHOWN 32	/* forbidden verdicts repeated on stderr at exit */
#define DRAIN_MS 100		/* bound on how long a record waits in the ring buffer */
#define CONN_CAPACITY 65536	/* connections the classifier tracks at once */
/* After SIGINT/SIGTERM with -- CMD: pass the signal on at once (or, for a
 * Ctrl-C the terminal has already delivered to CMD, after FORWARD_MS), then
 * SIGKILL CMD at KILL_MS, so rstwatch is gone within 2 s whatever CMD does. */
#define FORWARD_MS 300
#define KILL_MS 1500

struct options {
	bool json;
	bool events;	/* --events: print decoded events, not verdicts */
	bool verbose;
	const char *write_path;	/* -w: record the event stream */
	const char *read_path;	/* -r: replay a recorded stream */
	const char *out_path;	/* -o: verdicts to this file, reopened on SIGHUP */
	bool count;		/* -c: summary at exit */
	char **cmd;		/* -- CMD ARGS: run it, trace its process tree */
	uint32_t fail_on;	/* --fail-on: bit per enum rw_class */
	uint64_t interval_ns;	/* -i: summary every so often, 0 never */
	uint64_t close_wait_ns;	/* --close-wait */
	unsigned int pressure_pct;	/* --port-pressure */
	uint32_t conn_capacity;	/* --conn-table: connections tracked at once */
	struct rw_loader_opts load;
	struct rw_privs privs;	/* --user */
};

struct run {
	const struct options *opt;
	struct rw_decoder dec;
	struct rw_classifier *cls;
	FILE *out;		/* verdicts, into sink; NULL when -w - takes stdout */
	struct rw_sink sink;	/* stdout or -o FILE under out */
	FILE *trace;		/* -w */
	struct rw_tracer *tracer;	/* live only: its counters go into summaries */
	struct rw_trace_end recorded;	/* replay: the recording run's counters */
	struct rw_summary total, interval;
	uint64_t events;	/* events that reached the classifier */
	uint64_t next_ns;	/* end of the current -i interval */
	uint64_t last_ns;	/* stream time: latest event or recorded tick */
	uint64_t bad_records;
	uint64_t forbidden;	/* verdicts of a --fail-on class */
	char forbidden_lines[FORBIDDEN_SHOWN][640];
	bool out_broken;	/* stdout's reader went away */
};

static volatile sig_atomic_t stop, reopen;

static void on_signal(int sig)
{
	stop = sig;
}

static void on_hup(int sig)
{
	(void)sig;
	reopen = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rstwatch [OPTIONS]                 trace this host live (root)\n"
"       rstwatch [OPTIONS] -- CMD [ARGS]   run CMD, trace only its process tree\n"
"       rstwatch -r FILE [-j] [-c]         replay a trace recorded with -w\n"
"Tell why TCP connections on this host end badly: who reset or gave up on them,\n"
"which process owned the socket, the evidence, and what to do.\n"
"\n"
"Output:\n"
"  -j, --json            JSON Lines, one object per verdict (default: aligned text)\n"
"  -o, --output FILE     write verdicts to FILE (appended) instead of stdout;\n"
"                        SIGHUP reopens it (for logrotate)\n"
"  -w FILE               also record the decoded event stream to FILE (- for\n"
"                        stdout, which then carries only the trace)\n"
"  -r FILE               replay a recorded trace (- for stdin): no BPF, no root\n"
"  -c, --count           print a summary (counts per class, losses) at exit\n"
"  -i, --interval SECS   print a summary of the last SECS seconds every SECS\n"
"\n"
"Lifecycle:\n"
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
"Filters (applied in the kernel):\n"
"  -p, --pid PID         only sockets owned by process PID\n"
"      --port PORT       only connections with PORT at either end\n"
"      --netns NS        only network namespace NS: an inode number or a path\n"
"                        such as /run/netns/NAME or /proc/PID/ns/net\n"
"  -4, -6                only IPv4 / only IPv6\n"
"\n"
"Tuning:\n"
"  -b, --buffer MIB      ring buffer size in MiB, a power of two (default 8)\n"
"      --conn-table N    connections the classifier follows at once (default\n"
"                        65536, ~4 MiB); beyond, the least recently used is\n"
"                        evicted and its verdict marked partial\n"
"  -v, --verbose         libbpf's messages and the kernel features in use\n"
"      --user NAME       run as user NAME once the programs are attached\n"
"      --btf FILE        the kernel's BTF from FILE (BTFHub style) instead of\n"
"                        /sys/kernel/btf/vmlinux\n"
"      --events          print every decoded kernel event instead of verdicts\n"
"                        (to see what the classifier sees)\n"
"  -h, --help            this help\n"
"  -V, --version         version\n"
"\n"
"Verdicts: linger0 unread_data data_after_close linger2 memory killed\n"
"timeout/{retransmit,syn,keepalive,user_timeout,zero_window} refused half_open\n"
"time_wait_rst bad_ack listen_overflow peer_reset, and the lifecycle events\n"
"time_wait[/{expired,reused,killed}] time_wait_overflow close_wait/{stuck,closed}\n"
"port_pressure; unclassified.  See rstwatch(8).\n"
"Needs root, or CAP_BPF and CAP_PERFMON; once attached it drops every\n"
"capability (see SECURITY in rstwatch(8)).  Stop with Ctrl-C.\n");
}

static void die_usage(const char *fmt, const char *arg)
{
	fputs("rstwatch: ", stderr);
	fprintf(stderr, fmt, arg);
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

/* --fail-on unread_data,half_open -> a bit per class */
static uint32_t parse_classes(const char *list)
{
	char buf[256], *save = NULL, *tok;
	uint32_t mask = 0;

	if (strlen(list) >= sizeof(buf))
		die_usage("--fail-on: list too long: '%s'", list);
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum rw_class c = rw_class_from_name(tok);

		if (c == RW_CL_COUNT)
			die_usage("--fail-on: unknown class '%s' (classes are listed in rstwatch(8))", tok);
		mask |= 1u << c;
	}
	if (!mask)
		die_usage("--fail-on: no class in '%s'", list);
	return mask;
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

static void parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_PORT = 256, OPT_NETNS, OPT_EVENTS, OPT_FAIL_ON, OPT_USER, OPT_BTF,
	       OPT_CLOSE_WAIT, OPT_PRESSURE, OPT_CONN_TABLE };
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
		{ "user", required_argument, NULL, OPT_USER },
		{ "btf", required_argument, NULL, OPT_BTF },
		{ "conn-table", required_argument, NULL, OPT_CONN_TABLE },
		{ "write", required_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' },
		{ "count", no_argument, NULL, 'c' },
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
	o->load.ringbuf_bytes = 8u << 20;
	o->close_wait_ns = RW_CLOSE_WAIT_DEFAULT_NS;
	o->pressure_pct = RW_PRESSURE_DEFAULT_PCT;
	o->conn_capacity = CONN_CAPACITY;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:jp:b:vhV46w:r:ci:o:", longopts, NULL)) != -1) {
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
			o->fail_on |= parse_classes(optarg);
			break;
		case OPT_CLOSE_WAIT:
			o->close_wait_ns = parse_num(optarg, 1, 86400, "--close-wait: '%s' is not a "
						     "number of seconds (1-86400)") * 1000000000ull;
			break;
		case OPT_PRESSURE:
			o->pressure_pct = (unsigned int)parse_num(optarg, 1, 100, "--port-pressure: "
								  "'%s' is not a percentage (1-100)");
			break;
		case OPT_CONN_TABLE:
			o->conn_capacity = (uint32_t)parse_num(optarg, 16, 1u << 24,
				"--conn-table: '%s' is not a number of connections (16-16777216)");
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
		case 'r':
			o->read_path = optarg;
			break;
		case 'c':
			o->count = true;
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
	if (v4 && v6)
		die_usage("%s-4 and -6 exclude each other; give neither for both", "");
	o->load.filters.family = v4 ? AF_INET : v6 ? AF_INET6 : 0;
	if (o->read_path && o->write_path)
		die_usage("%s-r and -w exclude each other", "");
	if (o->read_path && o->load.btf_path)
		die_usage("%s--btf applies when tracing live; -r reads no kernel types", "");
	if (o->read_path && o->privs.user_set)
		die_usage("%s--user applies when tracing live; -r needs no privilege", "");
	if (o->read_path && o->cmd)
		die_usage("-r replays a trace; it does not run '%s'", o->cmd[0]);
	if (o->read_path && (o->load.filters.pid || o->load.filters.port || o->load.filters.netns ||
			     o->load.filters.family))
		die_usage("%sfilters (-p, --port, --netns, -4, -6) apply when tracing live, not to -r", "");
}

static void emit_verdict(const struct rw_verdict *v, void *arg)
{
	struct run *r = arg;

	rw_summary_add(&r->total, v);
	rw_summary_add(&r->interval, v);
	if (r->opt->fail_on & (1u << v->cls)) {
		if (r->forbidden < FORBIDDEN_SHOWN) {
			FILE *f = fmemopen(r->forbidden_lines[r->forbidden],
					   sizeof(r->forbidden_lines[0]), "w");

			if (f) {
				rw_text_verdict(f, v);
				fclose(f);
			}
			r->forbidden_lines[r->forbidden][sizeof(r->forbidden_lines[0]) - 1] = 0;
		}
		r->forbidden++;
	}
	if (!r->out)
		return;
	if (r->opt->json)
		rw_json_verdict(r->out, v);
	else
		rw_text_verdict(r->out, v);
}

static void summary(struct run *r, const struct rw_summary *s, bool interval, uint64_t time_ns)
{
	struct rw_summary_losses l = { .events = r->events, .bad_records = r->bad_records };
	struct rw_classify_stats cs;

	rw_classify_stats(r->cls, &cs);
	l.evictions = cs.evictions;
	l.lost = r->recorded.lost;
	if (r->out)
		rw_summary_print(r->out, r->opt->json, interval, time_ns, s, &l);
}

/*
 * Stream time has reached t: print the -i summaries whose intervals ended.
 * Driven by event and tick times, never the clock, so a replay prints them at
 * the same points.  Live, the losses they report are first written to the
 * trace, where a replay reads them back before printing.
 */
static void advance(struct run *r, uint64_t t)
{
	if (!r->opt->interval_ns || t < r->next_ns)
		return;
	if (r->tracer) {
		struct rw_tracer_counters k;

		rw_tracer_counters(r->tracer, &k);
		r->recorded.produced = k.produced;
		r->recorded.lost = k.lost;
		if (r->trace)
			rw_trace_write_end(r->trace, &r->recorded);
	}
	while (t >= r->next_ns) {
		summary(r, &r->interval, true, r->next_ns);
		memset(&r->interval, 0, sizeof(r->interval));
		r->next_ns += r->opt->interval_ns;
	}
}

/* Everything after decode, shared by live tracing and replay. */
static void handle_event(struct run *r, const struct rw_event *ev)
{
	advance(r, ev->time_ns);
	if (ev->time_ns > r->last_ns)
		r->last_ns = ev->time_ns;
	r->events++;
	if (r->trace)
		rw_trace_write_event(r->trace, ev);
	if (r->opt->events) {
		if (r->out)
			rw_text_event(r->out, ev);
	} else {
		rw_classify(r->cls, ev);
	}
}

/* Time has passed: recorded when it can change the output (a verdict is
 * waiting, or an interval ended), so a replay acts at the same points. */
static void handle_tick(struct run *r, uint64_t now_ns)
{
	bool due = r->opt->interval_ns && now_ns >= r->next_ns;

	if (!rw_classify_pending(r->cls) && !due)
		return;
	if (r->trace)
		rw_trace_write_tick(r->trace, now_ns);
	advance(r, now_ns);
	if (now_ns > r->last_ns)
		r->last_ns = now_ns;
	rw_classify_tick(r->cls, now_ns);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct run *r = ctx;
	struct rw_event ev;

	if (rw_decode(&r->dec, data, size, &ev)) {
		r->bad_records++;
		return 0;
	}
	handle_event(r, &ev);
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The reader of standard output went away (`rstwatch | head -1`): a pipe's
 * write end polls POLLERR once its read end is closed, a socket's POLLHUP.
 * Checked every drain interval, so rstwatch exits promptly even when it has
 * nothing to write (an EPIPE would tell only at the next write).
 */
static bool stdout_gone(const struct run *r)
{
	struct pollfd p = { .fd = STDOUT_FILENO };

	if (!(r->out && r->sink.fd == STDOUT_FILENO) && r->trace != stdout)
		return false;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

static void flush_out(struct run *r)
{
	if (r->out) {
		fflush(r->out);
		if (r->sink.broken)
			r->out_broken = true;
	}
	if (r->trace)
		fflush(r->trace);
}

static void report(const struct run *r, const struct rw_tracer_counters *k, bool replay)
{
	struct rw_classify_stats s;

	rw_classify_stats(r->cls, &s);
	if (k->lost)
		fprintf(stderr, "rstwatch: %llu of %llu events lost%s: ring buffer full (raise -b)\n",
			(unsigned long long)k->lost, (unsigned long long)k->produced,
			replay ? " while recording" : "");
	if (s.evictions)
		fprintf(stderr, "rstwatch: %llu connections evicted from the state table "
			"(their verdicts carry less evidence)\n", (unsigned long long)s.evictions);
	if (r->bad_records)
		fprintf(stderr, "rstwatch: %llu malformed records from the kernel ignored\n",
			(unsigned long long)r->bad_records);
	if (r->sink.dropped_lines)
		fprintf(stderr, "rstwatch: %llu output lines dropped: nobody read %s when rstwatch "
			"stopped\n", (unsigned long long)r->sink.dropped_lines,
			r->opt->out_path ? r->opt->out_path : "standard output");
	if (r->sink.err)
		fprintf(stderr, "rstwatch: writing %s: %s: output is incomplete\n",
			r->opt->out_path ? r->opt->out_path : "standard output", strerror(r->sink.err));
	if (r->opt->verbose)
		fprintf(stderr, "rstwatch: %llu events, %llu delivered, %llu lost, %llu verdicts, "
			"%llu evictions, %llu owner/tree map failures\n", (unsigned long long)k->produced,
			(unsigned long long)(r->events + r->bad_records), (unsigned long long)k->lost,
			(unsigned long long)s.verdicts,
			(unsigned long long)s.evictions, (unsigned long long)k->owner_fail);
}

static int open_out(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		fprintf(stderr, "rstwatch: -o %s: %s\n", path, strerror(errno));
	return fd;
}

/*
 * SIGHUP with -o: logrotate has moved the file away; continue in a new one
 * at the same path.  If that cannot be opened, keep writing to the old one
 * (a moved file still works) and say so.
 */
static void reopen_out(struct run *r)
{
	int fd;

	reopen = 0;
	if (!r->opt->out_path || !r->out)
		return;
	fd = open_out(r->opt->out_path);
	if (fd < 0)
		return;
	fflush(r->out);
	close(r->sink.fd);
	r->sink.fd = fd;
	if (!r->opt->json && !r->opt->events)
		rw_text_header(r->out);
}

static void close_out(struct run *r)
{
	if (!r->out)
		return;
	fclose(r->out);
	if (r->sink.fd != STDOUT_FILENO)
		close(r->sink.fd);
	r->out = NULL;
}

/* Verdict sink and classifier, common to both modes.  Returns 0, or the
 * exit status: EXIT_USAGE if -o FILE cannot be opened. */
static int run_setup(struct run *r, const struct options *o)
{
	int fd = STDOUT_FILENO;

	r->opt = o;
	if (o->out_path) {
		fd = open_out(o->out_path);
		if (fd < 0)
			return EXIT_USAGE;
	}
	r->out = rw_sink_open(&r->sink, fd, &stop);
	if (!r->out) {
		fprintf(stderr, "rstwatch: out of memory for the output stream\n");
		if (fd != STDOUT_FILENO)
			close(fd);
		return 1;
	}
	/* one thread writes it: stdio's per-call locking was a fifth of what a
	 * JSON verdict cost (BENCHMARKS.md) */
	__fsetlocking(r->out, FSETLOCKING_BYCALLER);
	r->cls = rw_classifier_new(o->conn_capacity, emit_verdict, r);
	if (!r->cls) {
		fprintf(stderr, "rstwatch: out of memory for the connection table\n");
		return 1;
	}
	rw_classifier_set(r->cls, o->close_wait_ns, o->pressure_pct);
	return 0;
}

/* A stream starts: summaries count from start_ns; the text header. */
static void stream_begin(struct run *r, uint64_t start_ns)
{
	r->next_ns = start_ns + r->opt->interval_ns;
	r->last_ns = start_ns;
	if (r->out && !r->opt->json && !r->opt->events)
		rw_text_header(r->out);
}

static int report_forbidden(const struct run *r)
{
	if (!r->forbidden)
		return 0;
	fprintf(stderr, "rstwatch: --fail-on: %llu forbidden verdict%s:\n",
		(unsigned long long)r->forbidden, r->forbidden == 1 ? "" : "s");
	for (uint64_t i = 0; i < r->forbidden && i < FORBIDDEN_SHOWN; i++)
		fputs(r->forbidden_lines[i], stderr);
	if (r->forbidden > FORBIDDEN_SHOWN)
		fprintf(stderr, "rstwatch: ... and %llu more\n",
			(unsigned long long)(r->forbidden - FORBIDDEN_SHOWN));
	return EXIT_FORBIDDEN;
}

/* A stream ended: settle waiting verdicts, the -c summary, the loss report.
 * Returns EXIT_FORBIDDEN if --fail-on matched, else 0. */
static int stream_end(struct run *r, const struct rw_tracer_counters *k, bool replay)
{
	if (!r->out_broken) {
		rw_classify_flush(r->cls);
		if (r->opt->count)
			summary(r, &r->total, false, r->last_ns);
	}
	flush_out(r);
	report(r, k, replay);
	return report_forbidden(r);
}

static FILE *open_trace(const char *path, bool write)
{
	FILE *f;

	if (strcmp(path, "-") == 0)
		return write ? stdout : stdin;
	f = fopen(path, write ? "wb" : "rb");
	if (!f)
		fprintf(stderr, "rstwatch: %s: %s\n", path, strerror(errno));
	return f;
}

static int start_recording(struct run *r, const char *path, const struct rw_decoder *dec,
			   uint64_t start_ns)
{
	struct rw_trace_header h = { .version = RW_TRACE_VERSION };
	struct utsname u;

	r->trace = open_trace(path, true);
	if (!r->trace)
		return -1;
	if (r->trace == stdout && !r->opt->out_path)
		close_out(r);	/* stdout carries the trace alone */
	h.boot_to_real_ns = dec->boot_to_real_ns;
	h.created_ns = start_ns;
	if (uname(&u) == 0) {
		snprintf(h.kernel_release, sizeof(h.kernel_release), "%s", u.release);
		snprintf(h.hostname, sizeof(h.hostname), "%s", u.nodename);
	}
	if (rw_trace_write_header(r->trace, &h)) {
		fprintf(stderr, "rstwatch: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writing the trace failed at some point: a FILE's error indicator is sticky,
 * so one check covers every write since it was opened. */
static bool trace_failed(const struct run *r)
{
	return r->trace && ferror(r->trace);
}

static int finish_recording(struct run *r, const struct rw_tracer_counters *k)
{
	struct rw_trace_end end = { .produced = k->produced, .lost = k->lost };
	bool failed;

	if (!r->trace)
		return 0;
	rw_trace_write_end(r->trace, &end);
	failed = fflush(r->trace) == EOF || ferror(r->trace);
	if (r->trace != stdout && fclose(r->trace) == EOF)
		failed = true;
	r->trace = NULL;
	if (failed) {
		fprintf(stderr, "rstwatch: writing %s failed: the trace is incomplete\n",
			r->opt->write_path);
		return -1;
	}
	return 0;
}

/*
 * In the child: become the user who ran sudo (SUDO_UID/SUDO_GID), so the
 * command runs with that user's rights, not root's.
 */
static void drop_to_sudo_user(void)
{
	const char *u = getenv("SUDO_UID"), *g = getenv("SUDO_GID");
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (!u || !g || geteuid() != 0)
		return;
	uid = (uid_t)strtoul(u, NULL, 10);
	gid = (gid_t)strtoul(g, NULL, 10);
	pw = getpwuid(uid);
	if ((pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL)) || setgid(gid) || setuid(uid)) {
		fprintf(stderr, "rstwatch: cannot switch to SUDO_UID %u: %s\n", uid, strerror(errno));
		_exit(126);
	}
}

/*
 * Start CMD so that it is in the traced tree before it runs a single
 * instruction of its own: the child waits on a pipe until its pid is in the
 * proc_tree map, then execs.  Returns the pid, or -1.
 */
static pid_t spawn(char **cmd, struct rw_tracer *t)
{
	int go[2];
	pid_t pid;
	char c;

	if (pipe2(go, O_CLOEXEC) < 0) {
		fprintf(stderr, "rstwatch: pipe: %s\n", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rstwatch: fork: %s\n", strerror(errno));
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (pid == 0) {
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(126);	/* rstwatch could not trace us: do not run untraced */
		signal(SIGPIPE, SIG_DFL);	/* ignored here; exec keeps ignored signals */
		drop_to_sudo_user();
		execvp(cmd[0], cmd);
		fprintf(stderr, "rstwatch: %s: %s\n", cmd[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(go[0]);
	if (rw_tracer_add_tree(t, (uint32_t)pid)) {
		fprintf(stderr, "rstwatch: adding %s to the traced tree failed\n", cmd[0]);
		close(go[1]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	if (write(go[1], "x", 1) != 1) {
		close(go[1]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	close(go[1]);
	return pid;
}

/* CMD's status as a shell reports it: its exit code, or 128 + signal. */
static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* Ctrl-C from the terminal went to CMD too: it is in our foreground group. */
static bool cmd_got_it(int sig)
{
	pid_t fg = tcgetpgrp(STDIN_FILENO);

	if (fg < 0)
		fg = tcgetpgrp(STDERR_FILENO);
	return sig == SIGINT && fg == getpgrp();
}

/*
 * rstwatch was told to stop while CMD runs: pass the signal on (SIGINT stays
 * SIGINT, anything else becomes SIGTERM), then SIGKILL CMD if it is still
 * there KILL_MS later.  Its status, whatever ended it, is rstwatch's.
 */
static void stop_child(pid_t child, uint64_t *since, bool *forwarded)
{
	uint64_t now = clock_ns(CLOCK_MONOTONIC), ms;

	if (!*since)
		*since = now;
	ms = (now - *since) / 1000000;
	if (!*forwarded && (ms >= FORWARD_MS || !cmd_got_it(stop))) {
		kill(child, stop == SIGINT ? SIGINT : SIGTERM);
		*forwarded = true;
	}
	if (ms >= KILL_MS)
		kill(child, SIGKILL);
}

/* rstwatch ends before CMD (an error, stdout gone): SIGTERM, SIGKILL if it lingers. */
static void reap(pid_t child)
{
	kill(child, SIGTERM);
	for (int i = 0; i < KILL_MS / 10; i++) {
		if (waitpid(child, NULL, WNOHANG) == child)
			return;
		usleep(10000);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

static int run_replay(const struct options *o)
{
	struct run r = { 0 };
	struct rw_trace_reader rd = { 0 };
	struct rw_tracer_counters k = { 0 };
	struct rw_trace_header h;
	struct rw_trace_item it;
	const char *name = strcmp(o->read_path, "-") == 0 ? "stdin" : o->read_path;
	int rc = 0, got;

	signal(SIGPIPE, SIG_IGN);
	rd.f = open_trace(o->read_path, false);
	if (!rd.f)
		return EXIT_USAGE;
	if (rw_trace_read_header(&rd, &h)) {
		fprintf(stderr, "rstwatch: %s: %s\n", name, rd.err);
		rc = EXIT_USAGE;
		goto out;
	}
	rc = run_setup(&r, o);
	if (rc)
		goto out;
	stream_begin(&r, h.created_ns);
	while (!r.out_broken && (got = rw_trace_read(&rd, &it)) > 0) {
		if (it.kind == RW_TRACE_EVENT)
			handle_event(&r, &it.ev);
		else if (it.kind == RW_TRACE_TICK)
			handle_tick(&r, it.tick_ns);
		else if (it.kind == RW_TRACE_END)
			r.recorded = it.end;
	}
	if (!r.out_broken && got < 0) {
		/* what was read so far is printed: the file is cut, the data before is good */
		rw_classify_flush(r.cls);
		flush_out(&r);
		fprintf(stderr, "rstwatch: %s: %s\n", name, rd.err);
		rc = EXIT_USAGE;
		goto out;
	}
	k.produced = r.recorded.produced;
	k.lost = r.recorded.lost;
	if (stream_end(&r, &k, true))
		rc = EXIT_FORBIDDEN;
out:
	if (rd.f && rd.f != stdin)
		fclose(rd.f);
	close_out(&r);
	rw_classifier_free(r.cls);
	return rc;
}

static int run_live(const struct options *o)
{
	struct rw_tracer *t = NULL;
	struct rw_tracer_counters k = { 0 };
	struct run r = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t start_ns;
	pid_t child = 0;
	int rc = 0, status, forbidden;
	uint64_t stopping = 0;	/* when a stop signal arrived, with -- CMD */
	bool forwarded = false;
	char err[256];

	/* no SA_RESTART: a signal must interrupt the poll */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a hangup stops like SIGTERM; with -o it reopens the file */
	if (o->out_path)
		sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = run_setup(&r, o);
	if (rc)
		goto cleanup;
	if (rw_tracer_open(&t, &o->load, on_record, &r, err, sizeof(err))) {
		fprintf(stderr, "rstwatch: %s\n", err);
		rc = EXIT_USAGE;
		goto cleanup;
	}
	if (rw_decoder_init(&r.dec, rw_tracer_btf(t), err, sizeof(err))) {
		fprintf(stderr, "rstwatch: %s\n", err);
		rc = EXIT_USAGE;
		goto cleanup;
	}
	r.dec.boot_to_real_ns = (int64_t)(clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME));
	if (rw_cgroup_init() == 0)
		r.dec.cgroup_path = rw_cgroup_path;
	r.tracer = t;
	start_ns = clock_ns(CLOCK_REALTIME);
	if (o->write_path && start_recording(&r, o->write_path, &r.dec, start_ns)) {
		rc = EXIT_USAGE;
		goto cleanup;
	}
	stream_begin(&r, start_ns);
	flush_out(&r);
	if (o->cmd) {
		child = spawn(o->cmd, t);
		if (child < 0) {
			rc = EXIT_USAGE;
			goto cleanup;
		}
	}
	/* attached, CMD started: from here on only signals and our own fds */
	if (rw_privs_drop(&o->privs, child > 0, rw_tracer_usable, t, err, sizeof(err))) {
		fprintf(stderr, "rstwatch: %s\n", err);
		rc = EXIT_USAGE;
		goto cleanup;
	}
	fprintf(stderr, "rstwatch: tracing TCP aborts%s; Ctrl-C to stop\n",
		r.dec.have_reasons ? "" : " (this kernel gives no reset reasons)");

	while (!r.out_broken && !trace_failed(&r)) {
		if (child > 0) {
			/* the command's end ends the run */
			if (waitpid(child, &status, WNOHANG) == child) {
				rc = exit_code(status);
				child = 0;
				break;
			}
			if (stop)
				stop_child(child, &stopping, &forwarded);
		} else if (stop) {
			break;
		}
		int prc = rw_tracer_poll(t, DRAIN_MS);

		if (prc < 0) {
			fprintf(stderr, "rstwatch: reading the ring buffer: %s\n", strerror(-prc));
			rc = 1;
			break;
		}
		handle_tick(&r, clock_ns(CLOCK_REALTIME));
		flush_out(&r);
		if (reopen)
			reopen_out(&r);
		if (stdout_gone(&r))
			r.out_broken = true;
	}
	/*
	 * Drain with the programs still attached: the last records of an abort
	 * that ended the run (the peer's side of it) are still being born.
	 * Then detach, count and drain once more: no record is born after the
	 * detach, so produced = delivered + lost exactly.
	 */
	if (!r.out_broken)
		rw_tracer_poll(t, 0);
	rw_tracer_detach(t);
	rw_tracer_counters(t, &k);
	r.recorded.produced = k.produced;
	r.recorded.lost = k.lost;
	if (!r.out_broken)
		rw_tracer_poll(t, 0);
	forbidden = stream_end(&r, &k, false);
	if (finish_recording(&r, &k))
		rc = 1;
	if (forbidden)
		rc = forbidden;
cleanup:
	if (child > 0)
		reap(child);
	rw_tracer_close(t);
	close_out(&r);
	rw_classifier_free(r.cls);
	rw_cgroup_free();
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;

	parse_args(argc, argv, &o);
	return o.read_path ? run_replay(&o) : run_live(&o);
}
