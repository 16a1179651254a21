// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * --metrics: the counters and how they are written (see metrics.h).
 *
 * rstwatch_verdicts_total has exactly the labels class, subtype, origin and
 * state, whatever --metrics-labels says: its series are bounded by the
 * classes, and sums over it stay exact for alert rules.  Per-owner labels
 * (--metrics-labels) go to a family of their own, rstwatch_owner_verdicts_total,
 * whose series live in a table sized at start for --metrics-max-series; a
 * verdict that would need one more series is counted in
 * rstwatch_owner_verdicts_refused_total (and still in rstwatch_verdicts_total).
 *
 * Names follow the Prometheus conventions: a unit suffix in base units,
 * _total on counters.  A family is written as the Prometheus text format
 * 0.0.4 or OpenMetrics 1.0 names it: in OpenMetrics a counter's TYPE line
 * names the family without _total and an info family ends in _info only on
 * its sample, and the exposition ends with "# EOF".
 */
#include <dirent.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "metrics.h"

#define N_ORIGINS RW_OR_COUNT

/* --metrics-labels names, bit i = RW_ML_* (append only: they are in users' queries) */
static const char *const owner_labels[] = { "comm", "container", "pod", "namespace" };
#define N_OWNER_LABELS (sizeof(owner_labels) / sizeof(owner_labels[0]))

/* A series: the key is every byte from cls to the end (labels not asked
 * for stay zero). */
struct owner_series {
	uint64_t n;		/* 0: a free slot */
	uint8_t cls, sub, origin, state;
	char comm[RW_COMM_MAX];
	char container[RW_CONTAINER_ID_MAX];
	char pod[RW_POD_NAME_MAX];
	char ns[RW_POD_NS_MAX];
};

#define KEY_OFF offsetof(struct owner_series, cls)
#define KEY_LEN (sizeof(struct owner_series) - KEY_OFF)

struct rw_metrics {
	uint64_t verdicts[RW_CL_COUNT][RW_SUB_COUNT][N_ORIGINS][RW_ST_COUNT];
	uint32_t labels;
	uint32_t max_series, series;
	uint64_t refused;
	struct owner_series *owners;	/* open addressing, mask + 1 slots */
	size_t mask;
	double start_s;		/* process_start_time_seconds */
	char version[32], kernel[65];
	struct rw_tracer_feature features[RW_TRACER_FEATURES_MAX];
	size_t n_features;
};

struct rw_metrics *rw_metrics_new(uint32_t labels, uint32_t max_series)
{
	struct rw_metrics *m = calloc(1, sizeof(*m));
	struct timespec ts;
	size_t slots = 16;

	if (!m)
		return NULL;
	m->labels = labels;
	m->max_series = max_series;
	if (labels) {
		/* at most half full: probes stay short */
		while (slots < 2 * (size_t)max_series)
			slots *= 2;
		m->owners = calloc(slots, sizeof(*m->owners));
		if (!m->owners) {
			free(m);
			return NULL;
		}
		m->mask = slots - 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_s = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	return m;
}

void rw_metrics_free(struct rw_metrics *m)
{
	if (!m)
		return;
	free(m->owners);
	free(m);
}

void rw_metrics_set_build(struct rw_metrics *m, const char *version, const char *kernel,
			  const struct rw_tracer_feature *f, size_t n)
{
	snprintf(m->version, sizeof(m->version), "%s", version);
	snprintf(m->kernel, sizeof(m->kernel), "%s", kernel);
	if (n > RW_TRACER_FEATURES_MAX)
		n = RW_TRACER_FEATURES_MAX;
	memcpy(m->features, f, n * sizeof(*f));
	m->n_features = n;
}

int rw_metrics_parse_labels(const char *list, uint32_t *labels, char *err, size_t errlen)
{
	char buf[128], *save = NULL, *tok;

	*labels = 0;
	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, errlen, "--metrics-labels: list too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < N_OWNER_LABELS && strcmp(tok, owner_labels[i]); i++)
			;
		if (i == N_OWNER_LABELS) {
			snprintf(err, errlen, "--metrics-labels: unknown label '%.32s' (known: comm, "
				 "container, pod, namespace)", tok);
			return -1;
		}
		*labels |= 1u << i;
	}
	if (!*labels) {
		snprintf(err, errlen, "--metrics-labels: no label in '%.32s'", list);
		return -1;
	}
	return 0;
}

/* FNV-1a over the series key */
static size_t owner_hash(const struct owner_series *k)
{
	const unsigned char *p = &k->cls;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < KEY_LEN; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (size_t)h;
}

static void count_owner(struct rw_metrics *m, const struct rw_verdict *v)
{
	const struct rw_event *ev = v->ev;
	struct owner_series k;
	size_t i;

	if (!(ev->flags & RW_EVF_OWNER))
		return;		/* no owner: rstwatch_verdicts_total has it */
	memset(&k, 0, sizeof(k));	/* the key's padding and unset labels compare equal */
	k.cls = (uint8_t)v->cls;
	k.sub = (uint8_t)v->sub;
	k.origin = (uint8_t)v->origin;
	k.state = (uint8_t)v->state;
	if (m->labels & RW_ML_COMM)
		memcpy(k.comm, ev->comm, strnlen(ev->comm, RW_COMM_MAX));
	if (m->labels & RW_ML_CONTAINER)
		memcpy(k.container, ev->ctr.id, strnlen(ev->ctr.id, RW_CONTAINER_ID_MAX - 1));
	if (m->labels & RW_ML_POD)
		memcpy(k.pod, ev->ctr.pod, strnlen(ev->ctr.pod, RW_POD_NAME_MAX - 1));
	if (m->labels & RW_ML_NAMESPACE)
		memcpy(k.ns, ev->ctr.pod_ns, strnlen(ev->ctr.pod_ns, RW_POD_NS_MAX - 1));
	for (i = owner_hash(&k) & m->mask; m->owners[i].n; i = (i + 1) & m->mask) {
		struct owner_series *s = &m->owners[i];

		if (memcmp(&s->cls, &k.cls, KEY_LEN) == 0) {
			s->n++;
			return;
		}
	}
	if (m->series >= m->max_series) {
		m->refused++;
		return;
	}
	k.n = 1;
	m->owners[i] = k;
	m->series++;
}

void rw_metrics_verdict(struct rw_metrics *m, const struct rw_verdict *v)
{
	if ((unsigned)v->cls >= RW_CL_COUNT || (unsigned)v->sub >= RW_SUB_COUNT ||
	    (unsigned)v->origin >= N_ORIGINS || (unsigned)v->state >= RW_ST_COUNT)
		return;
	m->verdicts[v->cls][v->sub][v->origin][v->state]++;
	if (m->labels)
		count_owner(m, v);
}

/* ------------------------------------------------------------ exposition */

enum ftype { F_COUNTER, F_GAUGE, F_INFO };

struct expo {
	FILE *f;
	bool om;		/* OpenMetrics 1.0, else Prometheus text 0.0.4 */
	const char *name;	/* the current family, without _total / _info */
	enum ftype type;
};

/* The sample name's suffix, which the text format also puts in HELP/TYPE. */
static const char *suffix(enum ftype t)
{
	return t == F_COUNTER ? "_total" : t == F_INFO ? "_info" : "";
}

static void family(struct expo *x, const char *name, enum ftype t, const char *unit, const char *help)
{
	static const char *const om_types[] = { "counter", "gauge", "info" };
	static const char *const text_types[] = { "counter", "gauge", "gauge" };
	const char *sfx = x->om ? "" : suffix(t);

	x->name = name;
	x->type = t;
	fprintf(x->f, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, sfx, help, name, sfx,
		x->om ? om_types[t] : text_types[t]);
	if (x->om && unit)
		fprintf(x->f, "# UNIT %s %s\n", name, unit);
}

/* A sample's name and opening brace; labels follow with label(), then end_*(). */
static void sample(struct expo *x)
{
	fprintf(x->f, "%s%s{", x->name, suffix(x->type));
}

static void label(struct expo *x, bool *first, const char *name, const char *value)
{
	fprintf(x->f, "%s%s=\"", *first ? "" : ",", name);
	rw_prom_label(x->f, value, 256);
	fputc('"', x->f);
	*first = false;
}

static void end_u64(struct expo *x, uint64_t v)
{
	fprintf(x->f, "} %" PRIu64 "\n", v);
}

/* A family with a single sample and no labels. */
static void single(struct expo *x, const char *name, enum ftype t, const char *unit,
		   const char *help, uint64_t v)
{
	family(x, name, t, unit, help);
	fprintf(x->f, "%s%s %" PRIu64 "\n", name, suffix(t), v);
}

static void single_f(struct expo *x, const char *name, enum ftype t, const char *unit,
		     const char *help, double v)
{
	family(x, name, t, unit, help);
	fprintf(x->f, "%s%s %.3f\n", name, suffix(t), v);
}

static void verdict_labels(struct expo *x, bool *first, int cls, int sub, int origin, int state)
{
	const char *s = rw_subtype_name(sub);

	label(x, first, "class", rw_class_name(cls));
	if (s)
		label(x, first, "subtype", s);
	label(x, first, "origin", rw_origin_name(origin));
	if (state != RW_ST_UNKNOWN)
		label(x, first, "state", rw_state_name(state));
}

static void write_verdicts(struct expo *x, const struct rw_metrics *m)
{
	family(x, "rstwatch_verdicts", F_COUNTER, NULL,
	       "Verdicts by class, subtype, origin and the TCP state it happened in.");
	for (int c = 0; c < RW_CL_COUNT; c++)
		for (int u = 0; u < RW_SUB_COUNT; u++)
			for (int o = 0; o < N_ORIGINS; o++)
				for (int s = 0; s < RW_ST_COUNT; s++) {
					uint64_t n = m->verdicts[c][u][o][s];
					bool first = true;

					if (!n)
						continue;
					sample(x);
					verdict_labels(x, &first, c, u, o, s);
					end_u64(x, n);
				}
	if (!m->labels)
		return;
	family(x, "rstwatch_owner_verdicts", F_COUNTER, NULL,
	       "Verdicts that have an owner, by the labels of rstwatch_verdicts and the owner's "
	       "(--metrics-labels).");
	for (size_t i = 0; i <= m->mask; i++) {
		const struct owner_series *s = &m->owners[i];
		bool first = true;

		if (!s->n)
			continue;
		sample(x);
		verdict_labels(x, &first, s->cls, s->sub, s->origin, s->state);
		if (m->labels & RW_ML_COMM)
			label(x, &first, "comm", s->comm);
		if (m->labels & RW_ML_CONTAINER)
			label(x, &first, "container", s->container);
		if (m->labels & RW_ML_POD)
			label(x, &first, "pod", s->pod);
		if (m->labels & RW_ML_NAMESPACE)
			label(x, &first, "namespace", s->ns);
		end_u64(x, s->n);
	}
	single(x, "rstwatch_owner_series", F_GAUGE, NULL,
	       "Series of rstwatch_owner_verdicts (at most --metrics-max-series).", m->series);
	single(x, "rstwatch_owner_verdicts_refused", F_COUNTER, NULL,
	       "Verdicts not counted in rstwatch_owner_verdicts: --metrics-max-series was reached.",
	       m->refused);
}

static void write_build(struct expo *x, const struct rw_metrics *m)
{
	bool first = true;

	family(x, "rstwatch_build", F_INFO, NULL, "rstwatch's version and the kernel it traces.");
	sample(x);
	label(x, &first, "version", m->version);
	label(x, &first, "kernel", m->kernel);
	end_u64(x, 1);
	family(x, "rstwatch_kernel_feature", F_GAUGE, NULL,
	       "Optional kernel features: 1 if this run uses it, 0 if the kernel refused or lacks it.");
	for (size_t i = 0; i < m->n_features; i++) {
		first = true;
		sample(x);
		label(x, &first, "feature", m->features[i].name);
		end_u64(x, m->features[i].on);
	}
}

/* process_* as the Prometheus client libraries name them. */
static void write_process(struct expo *x, const struct rw_metrics *m)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vsz = 0, rss = 0;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t fds = 0;
	FILE *statm = fopen("/proc/self/statm", "re");
	DIR *d = opendir("/proc/self/fd");

	if (statm) {
		if (fscanf(statm, "%llu %llu", &vsz, &rss) != 2)
			vsz = rss = 0;
		fclose(statm);
	}
	if (d) {
		while (readdir(d))
			fds++;
		closedir(d);
		fds = fds > 3 ? fds - 3 : 0;	/* ., .. and the DIR's own fd */
	}
	getrusage(RUSAGE_SELF, &ru);
	single_f(x, "process_cpu_seconds", F_COUNTER, "seconds", "CPU time used by rstwatch, user and system.",
		 (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	single(x, "process_resident_memory_bytes", F_GAUGE, "bytes", "Resident memory.",
	       (uint64_t)rss * (uint64_t)page);
	single(x, "process_virtual_memory_bytes", F_GAUGE, "bytes", "Virtual memory.",
	       (uint64_t)vsz * (uint64_t)page);
	single_f(x, "process_start_time_seconds", F_GAUGE, "seconds",
		 "When rstwatch started, seconds since the epoch.", m->start_s);
	single(x, "process_open_fds", F_GAUGE, NULL, "Open file descriptors.", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		single(x, "process_max_fds", F_GAUGE, NULL, "Limit on open file descriptors.",
		       (uint64_t)rl.rlim_cur);
}

static void write_http(struct expo *x, const struct rw_httpd_stats *s)
{
	char code[8];

	family(x, "rstwatch_http_requests", F_COUNTER, NULL, "Requests to the metrics endpoint, by status.");
	for (int i = 0; i < RW_HTTP_NCODES; i++) {
		bool first = true;

		snprintf(code, sizeof(code), "%d", rw_http_code(i));
		sample(x);
		label(x, &first, "code", code);
		end_u64(x, s->requests[i]);
	}
	family(x, "rstwatch_http_clients_dropped", F_COUNTER, NULL,
	       "Metrics clients closed before they were done: too slow (timeout), displaced by newer "
	       "connections (evicted), or a socket error.");
	for (int i = 0; i < RW_HTTP_NDROPS; i++) {
		bool first = true;

		sample(x);
		label(x, &first, "reason", rw_http_drop_name(i));
		end_u64(x, s->dropped[i]);
	}
}

/* The families read from struct rw_metrics_health, in exposition order. */
static const struct {
	const char *name;
	enum ftype type;
	size_t off;
	const char *help;
} health[] = {
#define H(name, type, field, help) { name, type, offsetof(struct rw_metrics_health, field), help }
	H("rstwatch_time_wait_sockets", F_GAUGE, time_wait,
	  "Connections in TIME_WAIT now, as rstwatch followed them (its filters apply)."),
	H("rstwatch_time_wait_entered", F_COUNTER, tw_entered,
	  "Connections that entered TIME_WAIT (counted in the kernel, no verdict each)."),
	H("rstwatch_time_wait_expired", F_COUNTER, tw_expired,
	  "TIME_WAIT periods that ran out."),
	H("rstwatch_time_wait_reused", F_COUNTER, tw_reused,
	  "TIME_WAIT 4-tuples a new connection took over (connect() with tcp_tw_reuse, or a "
	  "SYN)."),
	H("rstwatch_close_wait_stuck_sockets", F_GAUGE, close_wait_stuck,
	  "Sockets in CLOSE_WAIT for longer than --close-wait now (reported close_wait/stuck, "
	  "not yet closed)."),
	H("rstwatch_events", F_COUNTER, produced,
	  "Records the BPF programs produced: delivered, lost or malformed."),
	H("rstwatch_events_lost", F_COUNTER, lost, "Records lost to a full ring buffer (raise -b)."),
	H("rstwatch_events_missed", F_COUNTER, missed,
	  "Runs of rstwatch's BPF programs the kernel skipped (one already running on that CPU; "
	  "recursion_misses): events never seen."),
	H("rstwatch_closes_unseen", F_COUNTER, close_unseen,
	  "Sockets freed whose move to CLOSE ran none of rstwatch's programs (the kernel "
	  "skipped them): their verdicts may be missing."),
	H("rstwatch_events_malformed", F_COUNTER, bad_records,
	  "Malformed records from the kernel, ignored."),
	H("rstwatch_conn_evictions", F_COUNTER, evictions,
	  "Connections evicted from the full state table (raise --conn-table)."),
	H("rstwatch_owner_map_failures", F_COUNTER, owner_fail,
	  "Owner or process-tree map updates that failed in the kernel."),
	H("rstwatch_close_wait_unwatched", F_COUNTER, cw_dropped,
	  "CLOSE_WAIT sockets given up watching: too many at once."),
#undef H
};

void rw_metrics_write(FILE *f, const struct rw_metrics *m, const struct rw_metrics_health *h,
		      bool openmetrics)
{
	struct expo x = { .f = f, .om = openmetrics };

	write_verdicts(&x, m);
	for (size_t i = 0; i < sizeof(health) / sizeof(health[0]); i++)
		single(&x, health[i].name, health[i].type, NULL, health[i].help,
		       *(const uint64_t *)((const char *)h + health[i].off));
	write_build(&x, m);
	write_http(&x, &h->http);
	write_process(&x, m);
	if (openmetrics)
		fputs("# EOF\n", f);
}
