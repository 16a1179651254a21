// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * mixload: many TCP connections at once between two network namespaces, each
 * ending in one of a dozen ways, normal closes and aborts, so that one long
 * rstwatch run can be checked connection by connection.  The load of the e2e
 * test `load_mix` and of `make bench` (tests/e2e/scen_load.py drives it).
 *
 *   mixload -a NETNS_A -b NETNS_B -p PORT -4 CLI,SRV,CLOSED,SLOW [-6 CLI,SRV,CLOSED,SLOW]
 *           -n CONNS [-w WORKERS] [-s SEED] [-m NAME=WEIGHT,...] [-l LOG]
 *
 * WORKERS client threads (comm rw_lcli) run in NETNS_A, as many server
 * threads (rw_lsrv, as the main thread that listens) in NETNS_B accept on
 * SRV:PORT and SLOW:PORT of each family given.
 * Connection i is made by client thread i % WORKERS, which starts it only
 * once its previous connection has ended on both sides; its behaviour and
 * family are drawn from (SEED, i) alone, so a run is the same whatever the
 * scheduling.  The client sends a header naming its thread and i, the server
 * answers one byte 'K', then both play the behaviour's part; the two threads
 * meet where the kernel gives one of them no event to wait for (a slot per
 * client thread, below).  What each behaviour makes the kernel do, and so the
 * verdicts it must give (A = client namespace, B = server namespace):
 *
 *   fin_client    client closes first, server reads EOF and closes: no abort
 *   fin_server    server closes first, client reads EOF and closes: no abort
 *   linger0_cli   client closes with SO_LINGER {1,0}: A linger0, B peer_reset
 *   linger0_srv   server closes with SO_LINGER {1,0}: B linger0, A peer_reset
 *   unread_cli    client closes with 100 bytes unread: A unread_data, B peer_reset
 *   unread_srv    server closes with 100 bytes unread: B unread_data, A peer_reset
 *   orphan_data   the client close()s while the server sends 10 bytes, racing
 *                 on purpose: bytes queued before the close make A unread_data
 *                 (RST, no FIN); a close first makes an orphan that the bytes
 *                 then hit, A data_after_close (FIN, then RST), B peer_reset.
 *                 How it went is known for certain when the client saw the
 *                 bytes queued just before close() (race `unread`) or the
 *                 server read the FIN before the reset (`closed_first`);
 *                 otherwise (`undetermined`) it may be either: a FIN that has
 *                 not left yet when the bytes reach the orphan dies with it
 *                 (tcp_reset() purges the write queue), seen under qemu.
 *   refused       SYN to CLOSED:PORT, where nothing listens: B refused, A peer_reset
 *   half_open     the client closes with linger 0 but B drops that RST (nft:
 *                 DSCP CS2 and RST), the server's data then meets no socket in
 *                 A: A linger0 and half_open, B peer_reset
 *   user_timeout  to SLOW:PORT; after the handshake B drops the client's
 *                 segments (nft: DSCP CS1), TCP_USER_TIMEOUT 1 ms gives up at
 *                 the second RTO (~40 ms on the caller's rto_min 5ms route to
 *                 SLOW), then the server closes with linger 0, which A's stack
 *                 ignores (no socket): A timeout/user_timeout, B linger0
 *   linger2       client half-closes, reaches FIN_WAIT2, closes with
 *                 TCP_LINGER2 -1: A linger2, B peer_reset (CLOSE_WAIT)
 *   disconnect    client connect(AF_UNSPEC): A killed, B peer_reset
 *
 * The nft rules and the addresses are the caller's (scen_load.py): mixload
 * only makes sockets.  LOG gets one line per connection:
 *   i behaviour family client_addr client_port server_addr t0 t1 race anomaly
 * (times: CLOCK_BOOTTIME plus the realtime offset at start, as rstwatch
 * stamps its verdicts; race: `-`, `unread`, `closed_first` or
 * `undetermined`; anomaly: `-`
 * or what differed from the plan).  At the end one JSON object on stdout:
 * counts per behaviour, the verdicts the plan implies per namespace and
 * class, the race's outcomes, the anomalies.  Exit 0 unless mixload itself
 * failed; anomalies are data, for the caller to judge.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* name, default weight */
#define BEHAVIOURS(X)                \
	X(FIN_CLIENT, "fin_client", 4)   \
	X(FIN_SERVER, "fin_server", 4)   \
	X(LINGER0_CLI, "linger0_cli", 4) \
	X(LINGER0_SRV, "linger0_srv", 4) \
	X(UNREAD_CLI, "unread_cli", 4)   \
	X(UNREAD_SRV, "unread_srv", 4)   \
	X(ORPHAN_DATA, "orphan_data", 4) \
	X(REFUSED, "refused", 4)         \
	X(HALF_OPEN, "half_open", 4)     \
	X(USER_TIMEOUT, "user_timeout", 4) \
	X(LINGER2, "linger2", 4)         \
	X(DISCONNECT, "disconnect", 4)

enum beh {
#define X(e, n, w) B_##e,
	BEHAVIOURS(X)
#undef X
	B_COUNT
};
static const char *const beh_name[] = {
#define X(e, n, w) n,
	BEHAVIOURS(X)
#undef X
};
static unsigned weight[] = {
#define X(e, n, w) w,
	BEHAVIOURS(X)
#undef X
};

/* The verdicts a behaviour implies, per namespace: what the e2e check
 * compares rstwatch's counts with.  Racy ones are added from the outcome. */
enum vclass { V_LINGER0, V_UNREAD, V_DAC, V_UNREAD_OR_DAC, V_HALF_OPEN, V_REFUSED,
	      V_USER_TIMEOUT, V_LINGER2, V_KILLED, V_PEER_RESET, V_COUNT };
static const char *const vclass_name[] = { "linger0", "unread_data", "data_after_close",
	"unread_data|data_after_close", "half_open", "refused", "timeout/user_timeout",
	"linger2", "killed", "peer_reset" };

#define MAGIC 0x726c6f64u	/* "rlod" */
#define DSCP_TIMEOUT (8 << 2)	/* CS1: B drops these segments (user_timeout) */
#define DSCP_LOST_RST (16 << 2)	/* CS2: B drops RSTs with it (half_open) */
#define IO_TIMEOUT_S 10
#define MAX_WORKERS 256
#define ANOMALY_LEN 120

enum { F_CLOSING = 1, F_CLOSED = 2, F_TIMED_OUT = 4, F_SRV_EOF = 8, F_SRV_DONE = 16 };

/* One per client thread: the connection it has in flight, and where its
 * server thread and it wait for each other. */
struct slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t conn;
	enum beh beh;
	unsigned flags;
	bool eof_first;			/* orphan_data: the server saw the FIN first */
	char srv_anomaly[ANOMALY_LEN];
};

/* A family's addresses: the client's in A; in B the server's, the closed
 * one (nothing listens) and the slow one (the server listens there too; the
 * caller gives its route in A a small rto_min, so that user_timeout's
 * connections, made to it, give up in milliseconds, not at the 200 ms floor
 * TCP_RTO_MIN puts on every other connection's RTO). */
enum { DST_SRV, DST_CLOSED, DST_SLOW, DST_COUNT };

struct family {
	int af;
	const char *cli, *dst[DST_COUNT];
	struct sockaddr_storage sa[DST_COUNT], cli_sa;
	socklen_t len;
};

/*
 * half_open and user_timeout leave B's socket alive after A's is gone (the
 * RST is lost; the timeout sends none) until the server has reset it.  A
 * connect() elsewhere may take that ephemeral port meanwhile and meet B's old
 * socket (a challenge ACK, bad_ack), two connections on one 4-tuple at once:
 * seen once in a million.  These two bind a port of their client thread's own
 * instead, below the ephemeral range, reused only once both ends are done.
 */
#define PINNED_PORT_BASE 10000

struct header {
	uint32_t magic, worker, conn;
};

static struct {
	const char *netns[2];
	int port;
	uint64_t conns, seed;
	unsigned workers;
	struct family fam[2];
	int nfam;
	FILE *log;
	int64_t boot_to_real;
	int lfd[2][2];			/* [family][server, slow] */
	int stopfd;
	struct slot slots[MAX_WORKERS];
} g;

/* Totals, under tally_mu. */
static pthread_mutex_t tally_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t beh[B_COUNT][2];		/* [behaviour][ipv4, ipv6] */
	uint64_t expect[2][V_COUNT];		/* [A/B][class] */
	uint64_t race_unread, race_closed_first, race_undetermined;
	uint64_t anomalies, connect_retries;
	char first_anomalies[5][ANOMALY_LEN + 64];
} tally;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("mixload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* splitmix64: connection i's draws depend on (seed, i) only */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void plan(uint64_t i, enum beh *beh, int *fam)
{
	uint64_t r = mix64(g.seed * 0x100000001b3ull ^ mix64(i)), total = 0, pick;
	int b;

	for (b = 0; b < B_COUNT; b++)
		total += weight[b];
	pick = r % total;
	for (b = 0; b < B_COUNT - 1 && pick >= weight[b]; b++)
		pick -= weight[b];
	*beh = (enum beh)b;
	*fam = g.nfam == 2 ? (int)((r >> 32) & 1) : 0;
}

static socklen_t fill_sa(struct sockaddr_storage *sa, int af, const char *addr, int port)
{
	memset(sa, 0, sizeof(*sa));
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (void *)sa;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			die("-4: %s is not an IPv4 address", addr);
		return sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (void *)sa;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			die("-6: %s is not an IPv6 address", addr);
		return sizeof(*s6);
	}
}

static void parse_addr(struct family *f, const char *arg, int af)
{
	char *s = strdup(arg), *save = NULL;

	f->af = af;
	f->cli = strtok_r(s, ",", &save);
	for (int d = 0; d < DST_COUNT; d++)
		f->dst[d] = strtok_r(NULL, ",", &save);
	if (!f->cli || !f->dst[DST_COUNT - 1] || strtok_r(NULL, ",", &save))
		die("-%c %s: expected CLIENT,SERVER,CLOSED,SLOW addresses", af == AF_INET ? '4' : '6',
		    arg);
	for (int d = 0; d <= DST_COUNT; d++)
		f->len = fill_sa(d < DST_COUNT ? &f->sa[d] : &f->cli_sa, af,
				 d < DST_COUNT ? f->dst[d] : f->cli, d < DST_COUNT ? g.port : 0);
}

static void enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	/* a network namespace is per thread: each thread enters its own */
	if (setns(fd, CLONE_NEWNET) < 0)
		die("setns %s: %s (run as root)", path, strerror(errno));
	close(fd);
}

/* ---------------------------------------------------------------- sockets */

static void set_int(int fd, int level, int opt, int v, const char *what)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0)
		die("setsockopt %s: %s", what, strerror(errno));
}

static void io_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void linger0(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		die("SO_LINGER: %s", strerror(errno));
}

static void set_dscp(int fd, int af, int tos)
{
	if (af == AF_INET)
		set_int(fd, IPPROTO_IP, IP_TOS, tos, "IP_TOS");
	else
		set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, tos, "IPV6_TCLASS");
}

/* Send a pending delayed ACK now (tcp_cleanup_rbuf() via TCP_QUICKACK), so
 * that it leaves before a DSCP change or a close makes B drop what follows. */
static void ack_now(int fd)
{
	set_int(fd, IPPROTO_TCP, TCP_QUICKACK, 1, "TCP_QUICKACK");
}

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "none";
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPIPE: return "EPIPE";
	case EAGAIN: return "EAGAIN (timeout)";
	default: return strerror(e);
	}
}

/* recv() of n bytes; returns bytes read (0: EOF) or -errno */
static ssize_t recv_n(int fd, void *buf, size_t n, int flags)
{
	ssize_t r = recv(fd, buf, n, flags | MSG_WAITALL);

	return r < 0 ? -errno : r;
}

static void anomaly(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
__attribute__((format(printf, 2, 3)))
static void anomaly(char *buf, const char *fmt, ...)
{
	va_list ap;

	if (buf[0])
		return;		/* the first one is what went wrong */
	va_start(ap, fmt);
	vsnprintf(buf, ANOMALY_LEN, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if (*p == '\t' || *p == '\n' || *p == '"' || *p == '\\')
			*p = ' ';
}

/* Expect a recv() on a socket the peer has reset: -ECONNRESET (after any
 * queued bytes, which tcp_recvmsg() hands out first). */
static void expect_reset(int fd, char *an, const char *who)
{
	char buf[256];
	ssize_t r;

	do
		r = recv(fd, buf, sizeof(buf), 0);
	while (r > 0);
	if (r == 0)
		anomaly(an, "%s: expected ECONNRESET vs EOF", who);
	else if (errno != ECONNRESET)
		anomaly(an, "%s: expected ECONNRESET vs %s", who, err_name(errno));
}

static void expect_eof(int fd, char *an, const char *who)
{
	char c;
	ssize_t r = recv(fd, &c, 1, 0);

	if (r != 0)
		anomaly(an, "%s: expected EOF vs %s", who, r > 0 ? "data" : err_name(errno));
}

/* poll() with no events: returns when POLLHUP or POLLERR, i.e. once
 * tcp_done() has run on the socket (a reset processed). */
static bool wait_hup(int fd)
{
	struct pollfd p = { .fd = fd, .events = 0 };

	return poll(&p, 1, IO_TIMEOUT_S * 1000) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static bool wait_state(int fd, int state)
{
	int64_t deadline = boot_ns() + (int64_t)IO_TIMEOUT_S * 1000000000;
	struct timespec pause = { .tv_nsec = 50000 };
	struct tcp_info ti;
	socklen_t len;

	while (boot_ns() < deadline) {
		len = sizeof(ti);
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == state)
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

static bool wait_queued(int fd, int n)
{
	char buf[128];

	return n <= (int)sizeof(buf) && recv_n(fd, buf, (size_t)n, MSG_PEEK) == n;
}

/* ------------------------------------------------------------------ slots */

static void slot_set(struct slot *s, unsigned flag)
{
	pthread_mutex_lock(&s->mu);
	s->flags |= flag;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static bool slot_wait(struct slot *s, unsigned flag)
{
	struct timespec until;
	bool ok = true;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += IO_TIMEOUT_S;
	pthread_mutex_lock(&s->mu);
	while (!(s->flags & flag) && ok)
		ok = pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0;
	ok = s->flags & flag;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

/* ----------------------------------------------------------------- server */

static void serve(int fd)
{
	struct header h;
	struct slot *s;
	char an[ANOMALY_LEN] = "", buf[128] = { 'K' };
	bool eof_first = false;
	ssize_t r;

	io_timeouts(fd);
	r = recv_n(fd, &h, sizeof(h), 0);
	if (r != (ssize_t)sizeof(h) || h.magic != MAGIC || h.worker >= g.workers) {
		fprintf(stderr, "mixload: a connection without a valid header (%zd bytes)\n", r);
		close(fd);
		return;
	}
	s = &g.slots[h.worker];
	pthread_mutex_lock(&s->mu);
	if (s->conn != h.conn) {
		pthread_mutex_unlock(&s->mu);
		fprintf(stderr, "mixload: connection %u is not worker %u's current one\n", h.conn, h.worker);
		close(fd);
		return;
	}
	pthread_mutex_unlock(&s->mu);

	switch (s->beh) {
	case B_FIN_CLIENT:
		send(fd, buf, 1, MSG_NOSIGNAL);
		expect_eof(fd, an, "server");
		break;
	case B_FIN_SERVER:
		send(fd, buf, 1, MSG_NOSIGNAL);
		break;		/* close() first: a FIN after 'K' */
	case B_LINGER0_CLI:
	case B_DISCONNECT:
		send(fd, buf, 1, MSG_NOSIGNAL);
		expect_reset(fd, an, "server");
		break;
	case B_UNREAD_CLI:
		/* 'K' and 100 bytes the client will not read */
		if (send(fd, buf, 101, MSG_NOSIGNAL) != 101)
			anomaly(an, "server: send 101: %s", err_name(errno));
		expect_reset(fd, an, "server");
		break;
	case B_LINGER0_SRV:
		send(fd, buf, 1, MSG_NOSIGNAL);
		linger0(fd);
		break;
	case B_UNREAD_SRV:
		send(fd, buf, 1, MSG_NOSIGNAL);
		if (!wait_queued(fd, 100))
			anomaly(an, "server: 100 bytes never queued");
		break;		/* close() with them unread */
	case B_ORPHAN_DATA:
		send(fd, buf, 1, MSG_NOSIGNAL);
		if (!slot_wait(s, F_CLOSING))
			anomaly(an, "server: the client never came to close");
		/* races with the client's close() */
		send(fd, buf, 10, MSG_NOSIGNAL);
		r = recv(fd, buf, sizeof(buf), 0);
		if (r == 0) {
			/* the FIN came first: the client closed before the bytes
			 * arrived; the reset follows (tcp_reset() in CLOSE_WAIT) */
			eof_first = true;
			if (!wait_hup(fd))
				anomaly(an, "server: EOF but no reset");
		} else if (r > 0 || errno != ECONNRESET) {
			anomaly(an, "server: expected EOF or ECONNRESET vs %s",
				r > 0 ? "data" : err_name(errno));
		}
		break;
	case B_HALF_OPEN:
		send(fd, buf, 1, MSG_NOSIGNAL);
		if (!slot_wait(s, F_CLOSED))
			anomaly(an, "server: the client never closed");
		/* the client's RST was dropped: these bytes meet no socket in A */
		if (send(fd, buf, 10, MSG_NOSIGNAL) < 0 && errno != ECONNRESET && errno != EPIPE)
			anomaly(an, "server: send: %s", err_name(errno));
		expect_reset(fd, an, "server");
		break;
	case B_USER_TIMEOUT:
		send(fd, buf, 1, MSG_NOSIGNAL);
		if (!slot_wait(s, F_TIMED_OUT))
			anomaly(an, "server: the client never timed out");
		linger0(fd);	/* its RST meets no socket in A, which answers nothing */
		break;
	case B_LINGER2:
		send(fd, buf, 1, MSG_NOSIGNAL);
		expect_eof(fd, an, "server");
		ack_now(fd);	/* the FIN's ACK: the client waits for FIN_WAIT2 */
		slot_set(s, F_SRV_EOF);
		if (!wait_hup(fd))
			anomaly(an, "server: no reset in CLOSE_WAIT");
		break;
	case B_REFUSED:
	case B_COUNT:
		anomaly(an, "server: accepted a %s connection", beh_name[s->beh]);
		break;
	}
	close(fd);
	pthread_mutex_lock(&s->mu);
	s->eof_first = eof_first;
	memcpy(s->srv_anomaly, an, sizeof(an));
	s->flags |= F_SRV_DONE;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *server_thread(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep;

	(void)arg;
	pthread_setname_np(pthread_self(), "rw_lsrv");
	enter_netns(g.netns[1]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	ev.data.fd = g.stopfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, g.stopfd, &ev);
	for (int f = 0; f < g.nfam; f++) {
		for (int l = 0; l < 2; l++) {
			/* one server thread woken per connection, not all of them */
			ev.events = EPOLLIN | EPOLLEXCLUSIVE;
			ev.data.fd = g.lfd[f][l];
			if (epoll_ctl(ep, EPOLL_CTL_ADD, g.lfd[f][l], &ev) < 0)
				die("epoll_ctl: %s", strerror(errno));
		}
	}
	for (;;) {
		struct epoll_event got;
		int fd;

		if (epoll_wait(ep, &got, 1, -1) < 1)
			continue;
		if (got.data.fd == g.stopfd)
			break;
		fd = accept4(got.data.fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve(fd);
		else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			die("accept: %s", strerror(errno));
	}
	close(ep);
	return NULL;
}

static int listen_on(const struct family *f, int dst)
{
	int fd = socket(f->af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (f->af == AF_INET6)
		set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	if (bind(fd, (const struct sockaddr *)&f->sa[dst], f->len) < 0)
		die("bind %s port %d: %s", f->dst[dst], g.port, strerror(errno));
	if (listen(fd, 4096) < 0)
		die("listen: %s", strerror(errno));
	return fd;
}

/* ----------------------------------------------------------------- client */

struct result {
	int cport;
	int64_t t0, t1;
	const char *race;
	bool inq;
	char an[ANOMALY_LEN];
};

/* Non-blocking connect, so that the port is known even when the kernel
 * refuses: the SYN leaves and the RST is handled before connect() returns
 * (veth delivers in the sender's softirq), and tcp_done() unhashes the port,
 * but inet_sport stays for getsockname().  Returns fd, or -1 with *err. */
static int dial(const struct family *f, int to, int pinned, int *cport, int *err, int64_t *t0)
{
	const struct sockaddr_storage *dst = &f->sa[to];
	struct sockaddr_storage me;
	socklen_t len = sizeof(me), elen = sizeof(*err);
	struct pollfd p;
	int fd, fl;

	for (int tries = 0;; tries++) {
		fd = socket(f->af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket: %s", strerror(errno));
		/* the connection's life starts with the attempt that gets a port:
		 * the port an EADDRNOTAVAIL wait saw freed was another's until then */
		*t0 = boot_ns() + g.boot_to_real;
		if (pinned) {
			struct sockaddr_storage me = f->cli_sa;

			/* sin6_port sits where sin_port does */
			((struct sockaddr_in *)&me)->sin_port = htons((uint16_t)pinned);
			if (bind(fd, (struct sockaddr *)&me, f->len) < 0) {
				*err = errno;	/* the port's last connection is not over */
				*cport = pinned;
				return fd;
			}
		}
		if (connect(fd, (const struct sockaddr *)dst, f->len) == 0 || errno == EINPROGRESS)
			break;
		/* every port to this destination held (TIME_WAIT): wait a bit */
		if (errno != EADDRNOTAVAIL || tries == 1000)
			die("connect: %s", strerror(errno));
		close(fd);
		pthread_mutex_lock(&tally_mu);
		tally.connect_retries++;
		pthread_mutex_unlock(&tally_mu);
		usleep(1000);
	}
	if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
		die("getsockname: %s", strerror(errno));
	*cport = ntohs(me.ss_family == AF_INET ? ((struct sockaddr_in *)&me)->sin_port
					       : ((struct sockaddr_in6 *)&me)->sin6_port);
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1) {
		*err = ETIMEDOUT;
		return fd;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &elen);
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	io_timeouts(fd);
	return fd;
}

static int dst_of(enum beh beh)
{
	return beh == B_REFUSED ? DST_CLOSED : beh == B_USER_TIMEOUT ? DST_SLOW : DST_SRV;
}

static void client_conn(unsigned w, uint64_t i, enum beh beh, const struct family *f,
			struct result *res)
{
	struct slot *s = &g.slots[w];
	struct header h = { .magic = MAGIC, .worker = w, .conn = (uint32_t)i };
	char buf[128] = { 0 }, *an = res->an;
	int fd, err = 0, inq = 0;

	pthread_mutex_lock(&s->mu);
	s->conn = (uint32_t)i;
	s->beh = beh;
	s->flags = 0;
	s->eof_first = false;
	s->srv_anomaly[0] = 0;
	pthread_mutex_unlock(&s->mu);

	fd = dial(f, dst_of(beh), beh == B_HALF_OPEN || beh == B_USER_TIMEOUT ?
		  PINNED_PORT_BASE + 2 * (int)w + (beh == B_USER_TIMEOUT) : 0, &res->cport, &err,
		  &res->t0);
	if (beh == B_REFUSED) {
		if (err != ECONNREFUSED)
			anomaly(an, "client: connect: expected ECONNREFUSED vs %s", err_name(err));
		close(fd);
		goto done;
	}
	if (err) {
		anomaly(an, "client: connect: %s", err_name(err));
		close(fd);
		goto done;
	}
	if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h) ||
	    recv_n(fd, buf, 1, 0) != 1 || buf[0] != 'K') {
		anomaly(an, "client: no 'K' from the server: %s", err_name(errno));
		close(fd);
		goto wait_server;
	}

	switch (beh) {
	case B_FIN_CLIENT:
		break;		/* close() first */
	case B_FIN_SERVER:
		expect_eof(fd, an, "client");
		break;
	case B_LINGER0_CLI:
		linger0(fd);
		break;
	case B_LINGER0_SRV:
		expect_reset(fd, an, "client");
		break;
	case B_UNREAD_CLI:
		if (!wait_queued(fd, 100))
			anomaly(an, "client: 100 bytes never queued");
		break;		/* close() with them unread */
	case B_UNREAD_SRV:
		if (send(fd, buf, 100, MSG_NOSIGNAL) != 100)
			anomaly(an, "client: send 100: %s", err_name(errno));
		expect_reset(fd, an, "client");
		break;
	case B_ORPHAN_DATA:
		slot_set(s, F_CLOSING);
		/* bytes already queued now make the close an unread_data for sure */
		ioctl(fd, FIONREAD, &inq);
		res->inq = inq > 0;
		break;
	case B_HALF_OPEN:
		ack_now(fd);
		set_dscp(fd, f->af, DSCP_LOST_RST);
		linger0(fd);
		close(fd);
		slot_set(s, F_CLOSED);
		goto wait_server;
	case B_USER_TIMEOUT:
		ack_now(fd);	/* 'K' acked before B starts dropping */
		set_dscp(fd, f->af, DSCP_TIMEOUT);
		/* tcp_write_timeout(): the 2nd RTO, past 1 ms since the first
		 * retransmission, gives up (the 1st has no retransmission yet) */
		set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 1, "TCP_USER_TIMEOUT");
		send(fd, buf, 10, MSG_NOSIGNAL);
		if (recv(fd, buf, 1, 0) >= 0 || errno != ETIMEDOUT)
			anomaly(an, "client: expected ETIMEDOUT vs %s", err_name(errno));
		slot_set(s, F_TIMED_OUT);
		break;
	case B_LINGER2:
		shutdown(fd, SHUT_WR);
		if (!slot_wait(s, F_SRV_EOF) || !wait_state(fd, TCP_FIN_WAIT2))
			anomaly(an, "client: never reached FIN_WAIT2");
		/* tcp_close() in FIN_WAIT2 with linger2 < 0: RST, TCPAbortOnLinger */
		set_int(fd, IPPROTO_TCP, TCP_LINGER2, -1, "TCP_LINGER2");
		break;
	case B_DISCONNECT: {
		struct sockaddr sa = { .sa_family = AF_UNSPEC };

		/* tcp_disconnect() without close(): RST with TCP_STATE */
		if (connect(fd, &sa, sizeof(sa)) < 0)
			anomaly(an, "client: connect(AF_UNSPEC): %s", err_name(errno));
		break;
	}
	case B_REFUSED:
	case B_COUNT:
		break;
	}
	close(fd);

wait_server:
	if (!slot_wait(s, F_SRV_DONE))
		anomaly(an, "the server never finished");
	pthread_mutex_lock(&s->mu);
	if (s->srv_anomaly[0])
		anomaly(an, "%s", s->srv_anomaly);
	if (beh == B_ORPHAN_DATA)
		res->race = res->inq ? "unread" : s->eof_first ? "closed_first" : "undetermined";
	if (beh == B_ORPHAN_DATA && res->inq && s->eof_first)
		anomaly(an, "bytes were queued at close but the server saw a FIN");
	pthread_mutex_unlock(&s->mu);
done:
	res->t1 = boot_ns() + g.boot_to_real;
}

/* The verdicts connection's plan and outcome imply, into tally.expect. */
static void expect(enum beh beh, const struct result *r)
{
	uint64_t *a = tally.expect[0], *b = tally.expect[1];

	switch (beh) {
	case B_FIN_CLIENT: case B_FIN_SERVER: case B_COUNT:
		break;
	case B_LINGER0_CLI: a[V_LINGER0]++; b[V_PEER_RESET]++; break;
	case B_LINGER0_SRV: b[V_LINGER0]++; a[V_PEER_RESET]++; break;
	case B_UNREAD_CLI: a[V_UNREAD]++; b[V_PEER_RESET]++; break;
	case B_UNREAD_SRV: b[V_UNREAD]++; a[V_PEER_RESET]++; break;
	case B_ORPHAN_DATA:
		a[!strcmp(r->race, "unread") ? V_UNREAD :
		  !strcmp(r->race, "closed_first") ? V_DAC : V_UNREAD_OR_DAC]++;
		b[V_PEER_RESET]++;
		break;
	case B_REFUSED: b[V_REFUSED]++; a[V_PEER_RESET]++; break;
	case B_HALF_OPEN: a[V_LINGER0]++; a[V_HALF_OPEN]++; b[V_PEER_RESET]++; break;
	case B_USER_TIMEOUT: a[V_USER_TIMEOUT]++; b[V_LINGER0]++; break;
	case B_LINGER2: a[V_LINGER2]++; b[V_PEER_RESET]++; break;
	case B_DISCONNECT: a[V_KILLED]++; b[V_PEER_RESET]++; break;
	}
}

static void *client_thread(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg;

	pthread_setname_np(pthread_self(), "rw_lcli");
	enter_netns(g.netns[0]);
	for (uint64_t i = w; i < g.conns; i += g.workers) {
		struct result r = { .race = "-" };
		const struct family *f;
		enum beh beh;
		int fam;

		plan(i, &beh, &fam);
		f = &g.fam[fam];
		client_conn(w, i, beh, f, &r);
		fprintf(g.log, "%" PRIu64 "\t%s\t%s\t%s\t%d\t%s\t%" PRId64 "\t%" PRId64 "\t%s\t%s\n",
			i, beh_name[beh], f->af == AF_INET ? "ipv4" : "ipv6", f->cli, r.cport,
			f->dst[dst_of(beh)], r.t0, r.t1, r.race,
			r.an[0] ? r.an : "-");
		pthread_mutex_lock(&tally_mu);
		tally.beh[beh][f->af == AF_INET6]++;
		if (r.an[0]) {
			if (tally.anomalies < 5)
				snprintf(tally.first_anomalies[tally.anomalies],
					 sizeof(tally.first_anomalies[0]), "%" PRIu64 " %s: %s", i,
					 beh_name[beh], r.an);
			tally.anomalies++;
		} else {
			expect(beh, &r);
		}
		if (beh == B_ORPHAN_DATA && !r.an[0]) {
			if (!strcmp(r.race, "unread"))
				tally.race_unread++;
			else if (!strcmp(r.race, "closed_first"))
				tally.race_closed_first++;
			else
				tally.race_undetermined++;
		}
		pthread_mutex_unlock(&tally_mu);
	}
	return NULL;
}

/* ----------------------------------------------------------------- report */

static void report(double seconds)
{
	printf("{\"connections\":%" PRIu64 ",\"workers\":%u,\"seed\":%" PRIu64 ",\"seconds\":%.3f,",
	       g.conns, g.workers, g.seed, seconds);
	printf("\"behaviours\":{");
	for (int b = 0; b < B_COUNT; b++)
		printf("%s\"%s\":{\"ipv4\":%" PRIu64 ",\"ipv6\":%" PRIu64 "}", b ? "," : "",
		       beh_name[b], tally.beh[b][0], tally.beh[b][1]);
	printf("},\"expect\":{");
	for (int side = 0; side < 2; side++) {
		bool first = true;

		printf("%s\"%c\":{", side ? "," : "", "AB"[side]);
		for (int v = 0; v < V_COUNT; v++) {
			if (!tally.expect[side][v])
				continue;
			printf("%s\"%s\":%" PRIu64, first ? "" : ",", vclass_name[v], tally.expect[side][v]);
			first = false;
		}
		printf("}");
	}
	printf("},\"race\":{\"orphan_data\":{\"unread\":%" PRIu64 ",\"closed_first\":%" PRIu64
	       ",\"undetermined\":%" PRIu64 "}},", tally.race_unread, tally.race_closed_first,
	       tally.race_undetermined);
	printf("\"connect_retries\":%" PRIu64 ",\"anomalies\":%" PRIu64 ",\"first_anomalies\":[",
	       tally.connect_retries, tally.anomalies);
	for (uint64_t k = 0; k < tally.anomalies && k < 5; k++)
		printf("%s\"%s\"", k ? "," : "", tally.first_anomalies[k]);
	printf("]}\n");
}

static void set_mix(char *arg)
{
	for (char *kv = strtok(arg, ","); kv; kv = strtok(NULL, ",")) {
		char *eq = strchr(kv, '=');
		int b;

		if (!eq)
			die("-m %s: expected NAME=WEIGHT", kv);
		*eq = 0;
		for (b = 0; b < B_COUNT && strcmp(beh_name[b], kv); b++)
			;
		if (b == B_COUNT)
			die("-m: no behaviour %s", kv);
		weight[b] = (unsigned)strtoul(eq + 1, NULL, 10);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: mixload -a NETNS_A -b NETNS_B -p PORT -4 CLI,SRV,CLOSED,SLOW "
		"[-6 CLI,SRV,CLOSED,SLOW] -n CONNS [-w WORKERS] [-s SEED] [-m NAME=WEIGHT,...] [-l LOG]\n"
		"behaviours:");
	for (int b = 0; b < B_COUNT; b++)
		fprintf(stderr, " %s", beh_name[b]);
	fputc('\n', stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *a4 = NULL, *a6 = NULL, *logpath = NULL;
	pthread_t cli[MAX_WORKERS], srv[MAX_WORKERS];
	int64_t t0;
	uint64_t one = 1;
	unsigned total = 0;
	int c;

	g.workers = 8;
	while ((c = getopt(argc, argv, "a:b:p:4:6:n:w:s:m:l:")) != -1) {
		switch (c) {
		case 'a': g.netns[0] = optarg; break;
		case 'b': g.netns[1] = optarg; break;
		case 'p': g.port = atoi(optarg); break;
		case '4': a4 = optarg; break;
		case '6': a6 = optarg; break;
		case 'n': g.conns = strtoull(optarg, NULL, 10); break;
		case 'w': g.workers = (unsigned)atoi(optarg); break;
		case 's': g.seed = strtoull(optarg, NULL, 10); break;
		case 'm': set_mix(optarg); break;
		case 'l': logpath = optarg; break;
		default: usage();
		}
	}
	if (!g.netns[0] || !g.netns[1] || g.port <= 0 || g.port > 65535 || !(a4 || a6) ||
	    !g.conns || g.workers < 1 || g.workers > MAX_WORKERS || optind != argc)
		usage();
	for (int b = 0; b < B_COUNT; b++)
		total += weight[b];
	if (!total)
		die("-m: every weight is 0");
	if (a4)
		parse_addr(&g.fam[g.nfam++], a4, AF_INET);
	if (a6)
		parse_addr(&g.fam[g.nfam++], a6, AF_INET6);
	g.log = fopen(logpath ? logpath : "/dev/null", "w");
	if (!g.log)
		die("%s: %s", logpath, strerror(errno));
	g.boot_to_real = real_ns() - boot_ns();
	g.stopfd = eventfd(0, EFD_CLOEXEC);
	for (unsigned w = 0; w < g.workers; w++) {
		pthread_mutex_init(&g.slots[w].mu, NULL);
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&g.slots[w].cv, &ca);
		g.slots[w].conn = UINT32_MAX;
	}

	/* The listeners from the main thread, moved into B for the purpose.
	 * Accepted sockets inherit the listener's owner, and rstwatch keeps the
	 * comm it first saw for a process (owner_remember() skips a known
	 * pid): the main thread takes the server threads' name. */
	pthread_setname_np(pthread_self(), "rw_lsrv");
	enter_netns(g.netns[1]);
	for (int f = 0; f < g.nfam; f++) {
		g.lfd[f][0] = listen_on(&g.fam[f], DST_SRV);
		g.lfd[f][1] = listen_on(&g.fam[f], DST_SLOW);
	}

	t0 = boot_ns();
	for (unsigned w = 0; w < g.workers; w++)
		if (pthread_create(&srv[w], NULL, server_thread, NULL) ||
		    pthread_create(&cli[w], NULL, client_thread, (void *)(uintptr_t)w))
			die("pthread_create failed");
	for (unsigned w = 0; w < g.workers; w++)
		pthread_join(cli[w], NULL);
	if (write(g.stopfd, &one, sizeof(one)) != sizeof(one))
		die("eventfd write: %s", strerror(errno));
	for (unsigned w = 0; w < g.workers; w++)
		pthread_join(srv[w], NULL);
	if (fclose(g.log))
		die("%s: %s", logpath, strerror(errno));
	report((double)(boot_ns() - t0) / 1e9);
	return 0;
}
