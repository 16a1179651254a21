// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* rstwatch: argv -> options -> trace -> decode -> classify -> output. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "classify.h"
#include "decode.h"
#include "loader.h"
#include "output.h"

#ifndef RSTWATCH_VERSION
#define RSTWATCH_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2
#define DRAIN_MS 100		/* bound on how long a record waits in the ring buffer */
#define CONN_CAPACITY 65536	/* connections the classifier tracks at once */

struct options {
	bool json;
	bool events;	/* --events: print decoded events, not verdicts */
	bool verbose;
	struct rw_loader_opts load;
};

struct run {
	const struct options *opt;
	struct rw_decoder dec;
	struct rw_classifier *cls;
	FILE *out;
	uint64_t bad_records;
	bool out_broken;	/* stdout's reader went away */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: rstwatch [OPTIONS]\n"
"Tell why TCP connections on this host end badly: who reset or gave up on them,\n"
"which process owned the socket, the evidence, and what to do.\n"
"\n"
"Output:\n"
"  -j, --json            JSON Lines, one object per verdict (default: aligned text)\n"
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
"  -v, --verbose         libbpf's messages and the kernel features in use\n"
"      --events          print every decoded kernel event instead of verdicts\n"
"                        (to see what the classifier sees)\n"
"  -h, --help            this help\n"
"  -V, --version         version\n"
"\n"
"Verdicts: linger0 unread_data timeout/{retransmit,syn,keepalive} killed refused\n"
"half_open time_wait_rst peer_reset time_wait unclassified.  See rstwatch(8).\n"
"Needs root, or CAP_BPF and CAP_PERFMON.  Stop with Ctrl-C.\n");
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
	enum { OPT_PORT = 256, OPT_NETNS, OPT_EVENTS };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "buffer", required_argument, NULL, 'b' },
		{ "events", no_argument, NULL, OPT_EVENTS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool v4 = false, v6 = false;
	unsigned long mib;
	int c;

	memset(o, 0, sizeof(*o));
	o->load.ringbuf_bytes = 8u << 20;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jp:b:vhV46", longopts, NULL)) != -1) {
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
		die_usage("unexpected argument '%s'", argv[optind]);
	if (v4 && v6)
		die_usage("%s-4 and -6 exclude each other; give neither for both", "");
	o->load.filters.family = v4 ? AF_INET : v6 ? AF_INET6 : 0;
}

static void emit_verdict(const struct rw_verdict *v, void *arg)
{
	struct run *r = arg;

	if (r->opt->json)
		rw_json_verdict(r->out, v);
	else
		rw_text_verdict(r->out, v);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct run *r = ctx;
	struct rw_event ev;

	if (rw_decode(&r->dec, data, size, &ev)) {
		r->bad_records++;
		return 0;
	}
	if (r->opt->events)
		rw_text_event(r->out, &ev);
	else
		rw_classify(r->cls, &ev);
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void flush_out(struct run *r)
{
	if (fflush(r->out) == EOF && errno == EPIPE)
		r->out_broken = true;
}

static void report_counters(const struct run *r, const struct rw_tracer *t)
{
	struct rw_tracer_counters k;
	struct rw_classify_stats s;

	rw_tracer_counters(t, &k);
	rw_classify_stats(r->cls, &s);
	if (k.lost)
		fprintf(stderr, "rstwatch: %llu of %llu events lost: ring buffer full (raise -b)\n",
			(unsigned long long)k.lost, (unsigned long long)k.produced);
	if (s.evictions)
		fprintf(stderr, "rstwatch: %llu connections evicted from the state table "
			"(their verdicts carry less evidence)\n", (unsigned long long)s.evictions);
	if (r->bad_records)
		fprintf(stderr, "rstwatch: %llu malformed records from the kernel ignored\n",
			(unsigned long long)r->bad_records);
	if (r->opt->verbose)
		fprintf(stderr, "rstwatch: %llu events, %llu lost, %llu verdicts, %llu evictions, "
			"%llu owner map failures\n", (unsigned long long)k.produced,
			(unsigned long long)k.lost, (unsigned long long)s.verdicts,
			(unsigned long long)s.evictions, (unsigned long long)k.owner_fail);
}

static int run_live(const struct options *o)
{
	struct rw_tracer *t = NULL;
	struct run r = { .opt = o, .out = stdout };
	struct sigaction sa = { .sa_handler = on_signal };
	char err[256];
	int rc = 0;

	/* no SA_RESTART: a signal must interrupt the poll */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (rw_tracer_open(&t, &o->load, on_record, &r, err, sizeof(err))) {
		fprintf(stderr, "rstwatch: %s\n", err);
		return EXIT_USAGE;
	}
	if (rw_decoder_init(&r.dec, rw_tracer_btf(t), err, sizeof(err))) {
		fprintf(stderr, "rstwatch: %s\n", err);
		rc = EXIT_USAGE;
		goto cleanup;
	}
	r.dec.boot_to_real_ns = (int64_t)(clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME));
	if (rw_cgroup_init() == 0)
		r.dec.cgroup_path = rw_cgroup_path;
	r.cls = rw_classifier_new(CONN_CAPACITY, emit_verdict, &r);
	if (!r.cls) {
		fprintf(stderr, "rstwatch: out of memory for the connection table\n");
		rc = 1;
		goto cleanup;
	}
	if (!o->json && !o->events)
		rw_text_header(r.out);
	flush_out(&r);
	fprintf(stderr, "rstwatch: tracing TCP aborts%s; Ctrl-C to stop\n",
		r.dec.have_reasons ? "" : " (this kernel gives no reset reasons)");

	while (!stop && !r.out_broken) {
		int prc = rw_tracer_poll(t, DRAIN_MS);

		if (prc < 0) {
			fprintf(stderr, "rstwatch: reading the ring buffer: %s\n", strerror(-prc));
			rc = 1;
			break;
		}
		rw_classify_tick(r.cls, clock_ns(CLOCK_REALTIME));
		flush_out(&r);
	}
	if (!r.out_broken) {
		rw_tracer_poll(t, 0);
		rw_classify_flush(r.cls);
		flush_out(&r);
	}
	report_counters(&r, t);
cleanup:
	rw_tracer_close(t);
	rw_classifier_free(r.cls);
	rw_cgroup_free();
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;

	parse_args(argc, argv, &o);
	return run_live(&o);
}
