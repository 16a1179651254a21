// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* -- CMD: the command rstwatch runs and traces, its signals and its end. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

/* After SIGINT/SIGTERM with -- CMD: pass the signal on at once (or, for a
 * Ctrl-C the terminal has already delivered to CMD, after FORWARD_MS), then
 * SIGKILL CMD at KILL_MS, so rstwatch is gone within 2 s whatever CMD does. */
#define FORWARD_MS 300
#define KILL_MS 1500

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * In the child: become the user who ran sudo (SUDO_UID/SUDO_GID, checked by
 * parse_sudo_ids()), so the command runs with that user's rights, not root's.
 */
static void drop_to_sudo_user(const struct options *o)
{
	struct passwd *pw;
	uid_t uid = o->sudo_uid;
	gid_t gid = o->sudo_gid;

	if (!o->sudo)
		return;
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
pid_t rw_child_spawn(const struct options *o, struct rw_tracer *t)
{
	char **cmd = o->cmd;
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
		rw_privs_for_cmd();
		drop_to_sudo_user(o);
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
int rw_child_exit_code(int status)
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
void rw_child_stop(pid_t child, int stop, uint64_t *since, bool *forwarded)
{
	uint64_t now = monotonic_ns(), ms;

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
void rw_child_reap(pid_t child)
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
