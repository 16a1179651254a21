// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Opening the -o and -w files.  rstwatch runs as root and writes at a path
 * someone typed, often in a directory others can write to (/tmp, a shared
 * log directory).  With fs.protected_symlinks=0 or fs.protected_regular=0
 * (many container hosts) the kernel does not stop a local user from planting
 * a symlink, a hard link, a FIFO or a file of their own at that name, so
 * rstwatch applies those rules itself, in every directory:
 *
 *  - the last component is never followed (O_NOFOLLOW);
 *  - the directory part is resolved one component at a time with
 *    O_PATH|O_NOFOLLOW, and a symlink in it is followed only if it belongs to
 *    the user the file is opened as or to the owner of the directory holding
 *    it (may_follow_link()'s rule; the kernel applies it only in sticky
 *    world-writable directories, and only when the sysctl is on).  Every
 *    distribution symlink (/var/run -> /run) belongs to root in a root
 *    directory, so it is followed; openat2(RESOLVE_NO_SYMLINKS) would refuse
 *    those too;
 *  - a new file is made with O_CREAT|O_EXCL, so an existing one is never
 *    taken for a new one, and given exactly the requested mode;
 *  - an existing file is looked at through O_PATH first (opening a FIFO or a
 *    device has effects), then opened and checked again on the descriptor
 *    itself: a regular file (a FIFO or character device only when asked for)
 *    with one link (not a hard link to a file elsewhere), belonging to that
 *    user or to the directory's owner (may_create_in_sticky()'s rule).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

#define MAX_LINKS 40	/* symlinks followed in one path: the kernel's MAXSYMLINKS */

struct walk {
	const struct rw_outfile_opts *o;
	const char *path;
	char *err;
	size_t errlen;
	int links;
};

/* "what path: " + the reason; returns -1. */
__attribute__((format(printf, 2, 3)))
static int fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(w->err, w->errlen, "%s %s: ", w->o->what, w->path);

	if (n < 0 || (size_t)n >= w->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

int rw_outfile_inherited(const char *path)
{
	const char *n = NULL;
	char *end;
	long fd;

	if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0)
		return 1;
	if (strcmp(path, "/dev/stderr") == 0)
		return 2;
	if (strncmp(path, "/dev/fd/", 8) == 0)
		n = path + 8;
	else if (strncmp(path, "/proc/self/fd/", 14) == 0)
		n = path + 14;
	if (!n || *n < '0' || *n > '9')
		return -1;
	errno = 0;
	fd = strtol(n, &end, 10);
	if (errno || *end || fd > INT_MAX)
		return -1;
	return (int)fd;
}

/*
 * The directory dir names, relative to at (or absolute), as an O_PATH fd;
 * symlinks in it followed only if trusted (see the top of the file).
 * Returns the fd, or -1 with w->err set.
 */
static int walk_dir(struct walk *w, int at, const char *dir)
{
	const char *p = dir;
	int fd = openat(at, *dir == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fail(w, "%s: %s (name a path rstwatch can reach)",
			    *dir == '/' ? "/" : "the working directory", strerror(errno));
	for (;;) {
		char name[NAME_MAX + 1], target[PATH_MAX];
		struct stat st, in;
		size_t len;
		ssize_t n;
		int next;

		p += strspn(p, "/");
		len = strcspn(p, "/");
		if (!len)
			return fd;
		if (len > NAME_MAX) {
			close(fd);
			return fail(w, "a directory name is longer than %d bytes (name a shorter path)",
				    NAME_MAX);
		}
		memcpy(name, p, len);
		name[len] = 0;
		p += len;
		next = openat(fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 || fstat(next, &st) < 0 || fstat(fd, &in) < 0) {
			int e = errno;

			if (next >= 0)
				close(next);
			close(fd);
			return fail(w, "directory '%s': %s (create it, or name another)", name,
				    strerror(e));
		}
		if (S_ISDIR(st.st_mode)) {
			close(fd);
			fd = next;
			continue;
		}
		if (!S_ISLNK(st.st_mode)) {
			close(next);
			close(fd);
			return fail(w, "'%s' is not a directory (name a file in a directory)", name);
		}
		if (st.st_uid != w->o->uid && st.st_uid != in.st_uid) {
			close(next);
			close(fd);
			return fail(w, "symbolic link '%s' belongs to uid %u, neither to uid %u nor to its "
				    "directory's owner (uid %u): not followed (name the real directory)",
				    name, st.st_uid, w->o->uid, in.st_uid);
		}
		n = ++w->links > MAX_LINKS ? (errno = ELOOP, -1) :
		    readlinkat(next, "", target, sizeof(target));
		if (n == 0 || n == (ssize_t)sizeof(target))
			errno = n ? ENAMETOOLONG : ENOENT, n = -1;
		close(next);
		if (n < 0) {
			close(fd);
			return fail(w, "symbolic link '%s': %s (name the real directory)", name,
				    strerror(errno));
		}
		target[n] = 0;
		next = walk_dir(w, fd, target);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
}

static const char *kind(mode_t m)
{
	return S_ISLNK(m) ? "a symbolic link" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ?
	       "a character device" : S_ISBLK(m) ? "a block device" : S_ISDIR(m) ? "a directory" :
	       S_ISSOCK(m) ? "a socket" : "a regular file";
}

/* May rstwatch write to this existing file (st), in directory dst? */
static int check_existing(struct walk *w, const struct stat *st, const struct stat *dst)
{
	const struct rw_outfile_opts *o = w->o;
	mode_t m = st->st_mode;

	if (S_ISLNK(m))
		return fail(w, "is a symbolic link, which rstwatch never writes through (name the "
			    "file itself)");
	if ((S_ISFIFO(m) || S_ISCHR(m)) && !o->special)
		return fail(w, "is %s, not a regular file (add --allow-special if you mean it)",
			    kind(m));
	if (!S_ISREG(m) && !S_ISFIFO(m) && !S_ISCHR(m))
		return fail(w, "is %s (name a regular file)", kind(m));
	if (S_ISREG(m) && st->st_nlink != 1)
		return fail(w, "has %lu hard links: rstwatch does not write through a hard link "
			    "(remove the other links, or name a new file)", (unsigned long)st->st_nlink);
	if (st->st_uid != o->uid && st->st_uid != dst->st_uid)
		return fail(w, "belongs to uid %u, neither to uid %u nor to the directory's owner "
			    "(uid %u): not written (remove it, or name a new file)", st->st_uid, o->uid,
			    dst->st_uid);
	return 0;
}

static int open_in(struct walk *w, int dirfd, const char *name)
{
	const struct rw_outfile_opts *o = w->o;
	int flags = O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | (o->append ? O_APPEND : 0);
	struct stat st, now, dst;
	int fd, e;

	fd = openat(dirfd, name, flags | O_CREAT | O_EXCL, o->mode);
	if (fd >= 0) {
		/* exactly the mode asked for, whatever the umask */
		if (fchmod(fd, o->mode) == 0)
			return fd;
		e = errno;
		close(fd);
		return fail(w, "setting its mode: %s (check --file-mode)", strerror(e));
	}
	if (errno != EEXIST)
		return fail(w, "%s (check the directory's permissions, or name another file)",
			    strerror(errno));
	/* it exists: look before opening, then check the descriptor itself */
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || fstat(dirfd, &dst) < 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		return fail(w, "%s (try again)", strerror(e));
	}
	close(fd);
	if (check_existing(w, &st, &dst))
		return -1;
	/* O_NONBLOCK: a FIFO with no reader fails at once instead of hanging root */
	fd = openat(dirfd, name, flags | O_NONBLOCK);
	if (fd < 0)
		return errno == ENXIO ?
		       fail(w, "a FIFO that no process reads (start its reader first)") :
		       fail(w, "%s (check the file's permissions, or name another file)", strerror(errno));
	if (fstat(fd, &now) < 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
		close(fd);
		return fail(w, "was replaced while rstwatch opened it (try again)");
	}
	if (check_existing(w, &now, &dst) ||
	    (S_ISREG(now.st_mode) && !o->append && ftruncate(fd, 0) < 0 &&
	     fail(w, "truncating it: %s (name a new file)", strerror(errno))) ||
	    (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 &&
	     fail(w, "making it blocking: %s (name a regular file)", strerror(errno)))) {
		close(fd);
		return -1;
	}
	return fd;
}

int rw_outfile_open(const char *path, const struct rw_outfile_opts *o, char *err, size_t errlen)
{
	struct walk w = { .o = o, .path = path, .err = err, .errlen = errlen };
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	int inh = rw_outfile_inherited(path), dirfd, fd;
	char *dir;

	if (inh >= 0) {
		fd = fcntl(inh, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return fail(&w, "descriptor %d: %s (open it when starting rstwatch)", inh,
				    strerror(errno));
		return fd;
	}
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return fail(&w, "is a directory (name a file in it)");
	if (strlen(base) > NAME_MAX)
		return fail(&w, "the file name is longer than %d bytes (name a shorter one)", NAME_MAX);
	dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
	if (!dir)
		return fail(&w, "out of memory (try again)");
	dirfd = walk_dir(&w, AT_FDCWD, dir);
	free(dir);
	if (dirfd < 0)
		return -1;
	fd = open_in(&w, dirfd, base);
	close(dirfd);
	return fd;
}
