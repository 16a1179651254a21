// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * churn: make TCP connections end on loopback as fast as one CPU can, and say
 * how many per second.  The load for tests/bench/run.py.
 *
 *   churn [-m rst|fin|syn] [-t SECS | -n COUNT] [-a N] [-p PORT] [-C CPU] [-N]
 *
 *   rst  connect, accept, the client closes with SO_LINGER {1,0}: one RST,
 *        no TIME_WAIT (the server's close then finds the socket already dead)
 *   fin  connect, accept, the server closes first, then the client: an
 *        orderly close, the server's side goes through TIME_WAIT
 *   syn  SYNs from a raw socket to a port with no listener, 64 per sendmmsg():
 *        each is answered by an RST from no socket (the flood's load)
 *
 * -a N (fin): end one connection in N as rst does, the client closing first
 * with SO_LINGER {1,0}, so that a tracer's count of linger0 aborts can be
 * checked against churn's own (the soak in tests/bench/run.py).
 *
 * The server listens on 127.0.0.1:PORT (-p, default 80), below the ephemeral
 * port range as a server's port is: the server side's TIME_WAIT sockets then
 * hold no ephemeral port, as on a real server (0: the kernel picks a port,
 * from the ephemeral range).
 *
 * One thread, pinned to CPU (-C, default 0): on loopback the whole handshake
 * and teardown run in this task, so the tracer's BPF programs run on this CPU
 * too and every cost they add is taken from this loop's throughput.  By
 * default churn first moves into a network namespace of its own (-N: stay),
 * so other traffic, TIME_WAIT sockets and port ranges on the host neither
 * disturb it nor are disturbed.
 *
 * Prints one line: mode=rst conns=N aborted=A netns=I seconds=S cps=R cpu=C
 * cpu_cps=Q: the connections (syn: packets) made, how many of them were ended
 * with SO_LINGER {1,0} (all of them in rst mode, one in N with -a in fin mode,
 * none in syn mode), the inode of the network namespace they were made in
 * (what a tracer reports as netns), and conns per second of wall time and per
 * second of this process's CPU time (user + sys, which on loopback includes
 * the softirq work done in its context).  On a shared machine the second is
 * the steadier: time other tasks take from CPU 0 lowers the first, not the
 * second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SYN_BATCH 64
#define CLOSED_PORT 9		/* discard: nothing listens in a fresh namespace */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "churn: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A network namespace of our own, with lo up (it starts down). */
static void own_netns(void)
{
	struct ifreq ifr = { 0 };
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		die("unshare(CLONE_NEWNET) (run as root, or pass -N)");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die("SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		die("SIOCSIFFLAGS lo up");
	close(fd);
}

static int listener(struct sockaddr_in *addr, uint16_t port)
{
	socklen_t len = sizeof(*addr);
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr->sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	if (getsockname(fd, (struct sockaddr *)addr, &len) < 0)
		die("getsockname");
	return fd;
}

/* One connection, ended as the mode says.  Returns 0, or -1 to retry. */
static int one_conn(int lfd, const struct sockaddr_in *addr, bool rst)
{
	static const struct linger lg0 = { .l_onoff = 1, .l_linger = 0 };
	int c, s;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		die("socket");
	if (connect(c, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		/* EADDRNOTAVAIL: every port busy (fin mode's TIME_WAITs); try again */
		if (errno != EADDRNOTAVAIL && errno != EINTR)
			die("connect");
		close(c);
		return -1;
	}
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		if (errno == EINTR) {
			close(c);
			return -1;
		}
		die("accept");
	}
	if (rst) {
		if (setsockopt(c, SOL_SOCKET, SO_LINGER, &lg0, sizeof(lg0)) < 0)
			die("SO_LINGER");
		close(c);	/* tcp_disconnect(): RST, reason TCP_STATE (6.12+) */
		close(s);	/* already CLOSE by the RST it received */
	} else {
		close(s);	/* FIN from the server: it will hold TIME_WAIT */
		close(c);	/* client in CLOSE_WAIT -> LAST_ACK -> CLOSE */
	}
	return 0;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One's complement sum of big-endian 16-bit words, read byte by byte: reading
 * the structs through a uint16_t pointer breaks strict aliasing, and at -O2
 * the compiler then sums fields before they are stored. */
static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (uint32_t)(p[0] << 8 | p[1]);
	return sum;
}

struct synpkt {
	struct iphdr ip;
	struct tcphdr tcp;
};

/* Fill a SYN 127.0.0.2:sport -> 127.0.0.1:CLOSED_PORT with valid checksums. */
static void make_syn(struct synpkt *p, uint16_t sport, uint32_t seq)
{
	struct {
		uint32_t saddr, daddr;
		uint8_t zero, proto;
		uint16_t len;
	} pseudo;
	uint32_t sum;

	memset(p, 0, sizeof(*p));
	p->ip.version = 4;
	p->ip.ihl = 5;
	p->ip.ttl = 64;
	p->ip.protocol = IPPROTO_TCP;
	p->ip.tot_len = htons(sizeof(*p));
	p->ip.saddr = htonl(0x7f000002);
	p->ip.daddr = htonl(INADDR_LOOPBACK);
	p->ip.check = htons(csum_fold(csum_add(0, &p->ip, sizeof(p->ip))));
	p->tcp.source = htons(sport);
	p->tcp.dest = htons(CLOSED_PORT);
	p->tcp.seq = htonl(seq);
	p->tcp.doff = 5;
	p->tcp.syn = 1;
	p->tcp.window = htons(65535);
	pseudo.saddr = p->ip.saddr;
	pseudo.daddr = p->ip.daddr;
	pseudo.zero = 0;
	pseudo.proto = IPPROTO_TCP;
	pseudo.len = htons(sizeof(p->tcp));
	sum = csum_add(0, &pseudo, sizeof(pseudo));
	p->tcp.check = htons(csum_fold(csum_add(sum, &p->tcp, sizeof(p->tcp))));
}

/* syn mode: SYN_BATCH raw SYNs per syscall, each answered by an RST.  An
 * IPPROTO_RAW socket only sends, so the RSTs coming back cost nothing here. */
static uint64_t syn_flood(double seconds, uint64_t count)
{
	static struct synpkt pkts[SYN_BATCH];
	struct mmsghdr msgs[SYN_BATCH];
	struct iovec iov[SYN_BATCH];
	struct sockaddr_in dst = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	double end = seconds > 0 ? now_s() + seconds : 0;
	uint64_t sent = 0;
	uint32_t seq = 1;
	uint16_t sport = 1024;
	int fd;

	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0)
		die("socket(SOCK_RAW)");
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < SYN_BATCH; i++) {
		iov[i].iov_base = &pkts[i];
		iov[i].iov_len = sizeof(pkts[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &dst;
		msgs[i].msg_hdr.msg_namelen = sizeof(dst);
	}
	while (!stop && (count == 0 || sent < count)) {
		int n;

		for (int i = 0; i < SYN_BATCH; i++) {
			make_syn(&pkts[i], sport, seq);
			sport = sport == 65535 ? 1024 : sport + 1;
			seq += 7919;
		}
		n = sendmmsg(fd, msgs, SYN_BATCH, 0);
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			die("sendmmsg");
		}
		sent += (uint64_t)n;
		if (end && (sent & 1023) < SYN_BATCH && now_s() >= end)
			break;
	}
	close(fd);
	return sent;
}

static void usage(void)
{
	fprintf(stderr, "usage: churn [-m rst|fin|syn] [-t SECS | -n COUNT] [-a N] [-p PORT] [-C CPU] [-N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode = "rst";
	double seconds = 0, t0, took, cpu_s;
	struct rusage ru;
	uint64_t count = 0, done = 0, aborted = 0, abort_every = 0;
	bool netns = true;
	int cpu = 0, port = 80, c;
	cpu_set_t set;
	struct stat ns;
	struct sigaction sa = { .sa_handler = on_signal };

	while ((c = getopt(argc, argv, "m:t:n:a:p:C:N")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		case 'a':
			abort_every = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'C':
			cpu = atoi(optarg);
			break;
		case 'N':
			netns = false;
			break;
		default:
			usage();
		}
	}
	if (strcmp(mode, "rst") && strcmp(mode, "fin") && strcmp(mode, "syn"))
		usage();
	if ((abort_every && strcmp(mode, "fin")) || port < 0 || port > 65535)
		usage();
	if (seconds <= 0 && count == 0)
		seconds = 5;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("sched_setaffinity");
	if (netns)
		own_netns();
	if (stat("/proc/self/ns/net", &ns) < 0)
		die("stat /proc/self/ns/net");

	t0 = now_s();
	if (strcmp(mode, "syn") == 0) {
		done = syn_flood(seconds, count);
	} else {
		struct sockaddr_in addr;
		int lfd = listener(&addr, (uint16_t)port);
		bool rst = strcmp(mode, "rst") == 0;
		double end = seconds > 0 ? t0 + seconds : 0;

		while (!stop && (count == 0 || done < count)) {
			/* the connection that ends in linger 0: the last of each N */
			bool abort = rst || (abort_every && done % abort_every == abort_every - 1);

			if (one_conn(lfd, &addr, abort) == 0) {
				done++;
				aborted += abort;
			}
			if (end && (done & 255) == 0 && now_s() >= end)
				break;
		}
		close(lfd);
	}
	took = now_s() - t0;
	getrusage(RUSAGE_SELF, &ru);
	cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("mode=%s conns=%llu aborted=%llu netns=%llu seconds=%.3f cps=%.0f cpu=%.3f "
	       "cpu_cps=%.0f\n", mode, (unsigned long long)done, (unsigned long long)aborted,
	       (unsigned long long)ns.st_ino, took, took > 0 ? (double)done / took : 0.0, cpu_s,
	       cpu_s > 0 ? (double)done / cpu_s : 0.0);
	return 0;
}
