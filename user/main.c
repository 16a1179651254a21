// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* rstwatch: argv -> options -> trace -> decode -> classify -> output. */
#include <errno.h>
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
#include "child.h"
#include "classify.h"
#include "decode.h"
#include "filter.h"
#include "httpd.h"
#include "loader.h"
#include "merge.h"
#include "outfile.h"
#include "metrics.h"
#include "options.h"
#include "output.h"
#include "pods.h"
#include "privs.h"
#include "sink.h"
#include "summary.h"
#include "trace.h"

#define EXIT_FORBIDDEN 3	/* --fail-on matched */
#define FORBIDDEN_SHOWN 32	/* forbidden verdicts repeated on stderr at exit */
#define DRAIN_MS 100		/* bound on how long a record waits in the ring buffer */
#define WALK_NS 1000000000ull	/* the CLOSE_WAIT walk runs this often (or at half --close-wait) */

struct run {
	const struct options *opt;
	struct rw_decoder dec;
	struct rw_classifier *cls;
	FILE *out;		/* verdicts, into sink; NULL when -w - takes stdout */
	struct rw_sink sink;	/* stdout or -o FILE under out */
	struct rw_text_hints hints;	/* text: each hint once */
	FILE *trace;		/* -w */
	struct rw_tracer *tracer;	/* live only: its counters go into summaries */
	struct rw_trace_end recorded;	/* replay: the recording run's counters */
	struct rw_trace_end tw_from;	/* its TIME_WAIT counts at the last -i summary */
	struct rw_summary total, interval;
	struct rw_metrics *metrics;	/* --metrics */
	struct rw_httpd *httpd;	/* ... and its endpoint */
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

static void emit_verdict(const struct rw_verdict *v, void *arg)
{
	struct run *r = arg;
	struct rw_verdict alone;

	/* --class: not shown, not counted anywhere */
	if (!(r->opt->filter.classes & (1u << v->cls)))
		return;
	if (v->link && !(r->opt->filter.classes & (1u << v->link->cls))) {
		/* its other end is filtered out: printed alone, not as a pair's
		 * second half (it keeps its conn_id) */
		alone = *v;
		alone.link = NULL;
		alone.link_second = false;
		v = &alone;
	}
	rw_summary_add(&r->total, v);
	rw_summary_add(&r->interval, v);
	if (r->metrics)
		rw_metrics_verdict(r->metrics, v);
	if (r->opt->fail_on & (1u << v->cls)) {
		if (r->forbidden < FORBIDDEN_SHOWN) {
			FILE *f = fmemopen(r->forbidden_lines[r->forbidden],
					   sizeof(r->forbidden_lines[0]), "w");

			if (f) {
				rw_text_verdict(f, v, NULL);
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
		rw_text_verdict(r->out, v, &r->hints);
}

static void summary(struct run *r, const struct rw_summary *s, bool interval, uint64_t time_ns)
{
	struct rw_summary_losses l = { .events = r->events, .bad_records = r->bad_records };
	const struct rw_trace_end *k = &r->recorded, *from = interval ? &r->tw_from : &(struct rw_trace_end){ 0 };
	struct rw_summary_tw tw = {
		.entered = k->tw_entered - from->tw_entered,
		.expired = k->tw_expired - from->tw_expired,
		.reused = k->tw_reused - from->tw_reused,
		.now = k->tw_entered - k->tw_ended, .ntop = k->ntop, .top = k->top,
	};
	struct rw_classify_stats cs;

	rw_classify_stats(r->cls, &cs);
	l.evictions = cs.evictions;
	l.lost = r->recorded.lost;
	l.missed = r->recorded.missed;
	l.close_unseen = r->recorded.close_unseen;
	if (r->out)
		rw_summary_print(r->out, r->opt->json, interval, time_ns, s, &l, &tw);
	if (interval)
		r->tw_from = r->recorded;
}

/* Live: what the kernel counted, as the summaries and the trace take it. */
static void kernel_counts(struct run *r, const struct rw_tracer_counters *k)
{
	r->recorded.produced = k->produced;
	r->recorded.lost = k->lost;
	r->recorded.tw_entered = k->tw_entered;
	r->recorded.tw_expired = k->tw_expired;
	r->recorded.tw_reused = k->tw_reused;
	r->recorded.tw_ended = k->tw_ended;
	r->recorded.missed = k->missed;
	r->recorded.close_unseen = k->close_unseen;
	r->recorded.ntop = rw_tracer_tw_top(r->tracer, r->recorded.top, RW_TW_TOP);
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
		kernel_counts(r, &k);
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
	if (k->missed)
		fprintf(stderr, "rstwatch: %llu program runs missed%s: the kernel skipped them (one "
			"was already running on that CPU; bpftool prog shows recursion_misses)\n",
			(unsigned long long)k->missed, replay ? " while recording" : "");
	if (k->close_unseen)
		fprintf(stderr, "rstwatch: %llu socket closes unseen%s: the kernel ran none of "
			"rstwatch's programs there, so their verdicts may be missing (--events marks "
			"them close_unseen)\n", (unsigned long long)k->close_unseen,
			replay ? " while recording" : "");
	if (s.evictions)
		fprintf(stderr, "rstwatch: %llu connections evicted from the state table "
			"(their verdicts carry less evidence)\n", (unsigned long long)s.evictions);
	if (k->tw_untracked)
		fprintf(stderr, "rstwatch: %llu TIME_WAIT entries not counted: the table was full "
			"(raise --sock-table)\n", (unsigned long long)k->tw_untracked);
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
	if (r->opt->verbose && r->tracer && k->missed) {
		char by[512];

		rw_tracer_missed_by_program(r->tracer, by, sizeof(by));
		fprintf(stderr, "rstwatch: program runs missed: %s\n", by);
	}
}

/*
 * Open -o or -w FILE (user/outfile.c says how), as the --user if one was
 * given and rstwatch has not become it yet.  Returns the fd, or -1 after
 * saying why.
 */
static int open_file(const struct options *o, const char *what, const char *path, bool append)
{
	struct rw_outfile_opts fo = {
		.what = what, .append = append, .special = o->allow_special, .mode = o->file_mode,
		.uid = rw_privs_file_uid(&o->privs),
	};
	struct rw_privs_saved saved;
	char err[640];
	int fd = -1;

	if (rw_privs_files_begin(&o->privs, &saved, err, sizeof(err)) == 0) {
		fd = rw_outfile_open(path, &fo, err, sizeof(err));
		if (fd < 0)
			fprintf(stderr, "rstwatch: %s\n", err);
		if (rw_privs_files_end(&saved, err, sizeof(err)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	fprintf(stderr, "rstwatch: %s\n", err);
	return fd;
}

static int open_out(const struct options *o)
{
	return open_file(o, "-o", o->out_path, true);
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
	if (!r->opt->out_path || !r->out || rw_outfile_inherited(r->opt->out_path) >= 0)
		return;		/* standard output or a descriptor: nothing to reopen */
	fd = open_out(r->opt);
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
	if (o->out_path && rw_outfile_inherited(o->out_path) != STDOUT_FILENO) {
		fd = open_out(o);
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

static FILE *open_trace(const struct options *o)
{
	int fd;
	FILE *f;

	if (rw_outfile_inherited(o->write_path) == STDOUT_FILENO)
		return stdout;
	fd = open_file(o, "-w", o->write_path, false);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "wb");
	if (!f) {
		fprintf(stderr, "rstwatch: -w %s: %s\n", o->write_path, strerror(errno));
		close(fd);
	}
	return f;
}

static int start_recording(struct run *r, const char *path, const struct rw_decoder *dec,
			   uint64_t start_ns)
{
	struct rw_trace_header h = { .version = RW_TRACE_VERSION };
	struct utsname u;

	r->trace = open_trace(r->opt);
	if (!r->trace)
		return -1;
	if (r->trace == stdout && r->sink.fd == STDOUT_FILENO)
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

/* The trace ends with the kernel's counters (r->recorded: kernel_counts()). */
static int finish_recording(struct run *r)
{
	bool failed;

	if (!r->trace)
		return 0;
	rw_trace_write_end(r->trace, &r->recorded);
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
 * -r: the recorded events through the same classifier and outputs.  Several
 * files (one per host) are merged by time, each event tagged with its file
 * so that the classifier keeps their sockets apart while it links the two
 * ends of a connection across them; the recordings' counters add up.
 */
static int run_replay(const struct options *o)
{
	struct run r = { 0 };
	struct rw_tracer_counters k = { 0 };
	struct rw_trace_end ends[RW_MERGE_MAX] = { 0 };
	struct rw_trace_item it;
	struct rw_filter filter = o->filter;
	struct rw_merge *m;
	uint64_t created;
	size_t src;
	char err[320];
	int rc = 0, got;

	signal(SIGPIPE, SIG_IGN);
	if (rw_filter_init(&filter)) {
		fprintf(stderr, "rstwatch: out of memory for the filters\n");
		return 1;
	}
	m = rw_merge_open(o->read_paths, o->nread, &created, err, sizeof(err));
	if (!m) {
		fprintf(stderr, "rstwatch: %s\n", err);
		rw_filter_free(&filter);
		return EXIT_USAGE;
	}
	rc = run_setup(&r, o);
	if (rc)
		goto out;
	stream_begin(&r, created);
	while (!r.out_broken && (got = rw_merge_next(m, &it, &src, err, sizeof(err))) > 0) {
		if (it.kind == RW_TRACE_EVENT) {
			it.ev.source = (uint8_t)src;
			if (rw_filter_event(&filter, &it.ev))
				handle_event(&r, &it.ev);
		} else if (it.kind == RW_TRACE_TICK) {
			handle_tick(&r, it.tick_ns);
		} else if (it.kind == RW_TRACE_END) {
			ends[src] = it.end;
			rw_merge_ends(ends, o->nread, &r.recorded);
		}
	}
	if (!r.out_broken && got < 0) {
		/* what was read so far is printed: the file is cut, the data before is good */
		rw_classify_flush(r.cls);
		flush_out(&r);
		fprintf(stderr, "rstwatch: %s\n", err);
		rc = EXIT_USAGE;
		goto out;
	}
	k.produced = r.recorded.produced;
	k.lost = r.recorded.lost;
	k.missed = r.recorded.missed;
	k.close_unseen = r.recorded.close_unseen;
	if (stream_end(&r, &k, true))
		rc = EXIT_FORBIDDEN;
out:
	rw_merge_close(m);
	close_out(&r);
	rw_classifier_free(r.cls);
	rw_filter_free(&filter);
	return rc;
}

/* GET /metrics: the counters as they are now. */
static void render_metrics(FILE *f, bool openmetrics, void *arg)
{
	struct run *r = arg;
	struct rw_metrics_health h = { .bad_records = r->bad_records };
	struct rw_tracer_counters k;
	struct rw_classify_stats cs;

	rw_tracer_counters(r->tracer, &k);
	rw_classify_stats(r->cls, &cs);
	h.produced = k.produced;
	h.lost = k.lost;
	h.missed = k.missed;
	h.close_unseen = k.close_unseen;
	h.owner_fail = k.owner_fail;
	h.evictions = cs.evictions;
	h.cw_dropped = cs.cw_dropped;
	/* the kernel follows every TIME_WAIT; the classifier only those it
	 * sends records for (--time-wait) */
	h.time_wait = k.tw_entered - k.tw_ended;
	h.tw_entered = k.tw_entered;
	h.tw_expired = k.tw_expired;
	h.tw_reused = k.tw_reused;
	h.close_wait_stuck = cs.close_wait_stuck;
	h.http = *rw_httpd_stats(r->httpd);
	rw_metrics_write(f, r->metrics, &h, openmetrics);
}

/* --metrics: listen before loading anything, so that a taken port fails fast. */
static int metrics_open(struct run *r, const struct options *o)
{
	char err[256];

	if (!o->metrics_addr)
		return 0;
	r->metrics = rw_metrics_new(o->metrics_labels, o->metrics_max_series);
	if (!r->metrics) {
		fprintf(stderr, "rstwatch: out of memory for --metrics-max-series %u\n",
			o->metrics_max_series);
		return EXIT_USAGE;
	}
	r->httpd = rw_httpd_open(o->metrics_addr, err, sizeof(err));
	if (!r->httpd) {
		fprintf(stderr, "rstwatch: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

/* Once attached: what rstwatch_build_info and rstwatch_kernel_feature say. */
static void metrics_start(struct run *r, const struct rw_tracer *t)
{
	struct rw_tracer_feature f[RW_TRACER_FEATURES_MAX];
	size_t n = rw_tracer_features(t, f, RW_TRACER_FEATURES_MAX);
	struct utsname u;

	if (!r->httpd)
		return;
	if (uname(&u))
		u.release[0] = 0;
	rw_metrics_set_build(r->metrics, RSTWATCH_VERSION, u.release, f, n);
	fprintf(stderr, "rstwatch: metrics on http://%s/metrics\n", rw_httpd_addr(r->httpd));
}

/*
 * Wait up to DRAIN_MS for the ring buffer's wakeup or a metrics client, then
 * drain, then serve the clients: one poll() for both, so a scrape sees every
 * record that arrived before it and no client can hold the drain up (the
 * server only ever does bounded, non-blocking work).
 */
static int wait_and_drain(struct run *r, struct rw_tracer *t)
{
	struct pollfd p[1 + RW_HTTPD_FDS];
	int n, rc;

	if (!r->httpd)
		return rw_tracer_poll(t, DRAIN_MS);
	p[0] = (struct pollfd){ .fd = rw_tracer_fd(t), .events = POLLIN };
	n = rw_httpd_pollfds(r->httpd, p + 1);
	if (poll(p, (nfds_t)n + 1, DRAIN_MS) < 0 && errno != EINTR)
		return -errno;
	rc = rw_tracer_poll(t, 0);
	if (rc == 0)
		rw_httpd_serve(r->httpd, p + 1, n, render_metrics, r);
	return rc;
}

/* The owner's cgroup: its path, container and pod (decoder callback). */
static void owner_cgroup(uint64_t id, struct rw_event *ev)
{
	rw_cgroup_lookup(id, ev->cgroup, sizeof(ev->cgroup), &ev->ctr);
	if (ev->ctr.pod_uid[0])
		rw_pods_names(&ev->ctr);
}

/* The decoder maps the kernel's numbers by the names in its types. */
static int decoder_types(const struct btf *btf, void *dec, char *err, size_t errlen)
{
	return rw_decoder_init(dec, btf, err, errlen);
}

static int run_live(const struct options *o)
{
	struct rw_loader_opts lo;
	struct rw_tracer *t = NULL;
	struct rw_tracer_counters k = { 0 };
	struct run r = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t start_ns;
	pid_t child = 0;
	int rc = 0, status, forbidden;
	uint64_t stopping = 0;	/* when a stop signal arrived, with -- CMD */
	uint64_t walk_ns = o->close_wait_ns / 2 < WALK_NS ? o->close_wait_ns / 2 : WALK_NS;
	uint64_t next_walk = 0;
	bool forwarded = false, walk_failed = false;
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
	if (o->quiet)
		close_out(&r);
	rc = metrics_open(&r, o);
	if (rc)
		goto cleanup;
	lo = o->load;
	lo.types = decoder_types;
	lo.types_ctx = &r.dec;
	if (rw_tracer_open(&t, &lo, on_record, &r, err, sizeof(err))) {
		fprintf(stderr, "rstwatch: %s\n", err);
		rc = EXIT_USAGE;
		goto cleanup;
	}
	r.dec.boot_to_real_ns = (int64_t)(clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME));
	if (rw_cgroup_init() == 0)
		r.dec.owner_cgroup = owner_cgroup;
	if (o->pods_dir && access(o->pods_dir, R_OK | X_OK))
		fprintf(stderr, "rstwatch: warning: --pods-dir %s: %s (pods' names stay unknown until "
			"it can be read)\n", o->pods_dir, strerror(errno));
	rw_pods_init(o->pods_dir ? o->pods_dir : RW_PODS_DIR_DEFAULT);
	r.tracer = t;
	start_ns = clock_ns(CLOCK_REALTIME);
	if (o->write_path && start_recording(&r, o->write_path, &r.dec, start_ns)) {
		rc = EXIT_USAGE;
		goto cleanup;
	}
	stream_begin(&r, start_ns);
	flush_out(&r);
	if (o->cmd) {
		child = rw_child_spawn(o, t);
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
	metrics_start(&r, t);
	fprintf(stderr, "rstwatch: tracing TCP aborts%s; Ctrl-C to stop\n",
		r.dec.have_reasons ? "" : " (this kernel gives no reset reasons)");

	while (!r.out_broken && !trace_failed(&r)) {
		if (child > 0) {
			/* the command's end ends the run */
			if (waitpid(child, &status, WNOHANG) == child) {
				rc = rw_child_exit_code(status);
				child = 0;
				break;
			}
			if (stop)
				rw_child_stop(child, stop, &stopping, &forwarded);
		} else if (stop) {
			break;
		}
		if (clock_ns(CLOCK_MONOTONIC) >= next_walk) {
			int wrc = rw_tracer_walk(t, false);

			if (wrc && !walk_failed)
				fprintf(stderr, "rstwatch: warning: the CLOSE_WAIT walk failed: %s "
					"(stuck CLOSE_WAIT sockets go unreported)\n", strerror(-wrc));
			walk_failed = wrc != 0;
			next_walk = clock_ns(CLOCK_MONOTONIC) + walk_ns;
		}
		int prc = wait_and_drain(&r, t);

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
	if (!r.out_broken) {
		rw_tracer_walk(t, true);
		rw_tracer_poll(t, 0);
	}
	rw_tracer_detach(t);
	rw_tracer_counters(t, &k);
	kernel_counts(&r, &k);
	if (!r.out_broken)
		rw_tracer_poll(t, 0);
	forbidden = stream_end(&r, &k, false);
	if (finish_recording(&r))
		rc = 1;
	if (forbidden)
		rc = forbidden;
cleanup:
	if (child > 0)
		rw_child_reap(child);
	rw_tracer_close(t);
	rw_httpd_close(r.httpd);
	rw_metrics_free(r.metrics);
	close_out(&r);
	rw_classifier_free(r.cls);
	rw_cgroup_free();
	rw_pods_free();
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;

	rw_parse_args(argc, argv, &o);
	return o.read_path ? run_replay(&o) : run_live(&o);
}
