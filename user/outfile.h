/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The files rstwatch writes (-o, -w), opened so that whoever can write to a
 * directory in the path cannot make root write somewhere else: see FILES in
 * rstwatch(8) for the rules.
 */
#ifndef RSTWATCH_OUTFILE_H
#define RSTWATCH_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RW_FILE_MODE_DEFAULT 0600

struct rw_outfile_opts {
	const char *what;	/* "-o" or "-w", for messages */
	bool append;		/* -o appends; -w truncates an existing file */
	bool special;		/* --allow-special: an existing FIFO or character device */
	mode_t mode;		/* exact mode of a file rstwatch creates */
	uid_t uid;		/* whose file it may be: the user it is opened as */
};

/*
 * The descriptor a path names without any lookup: 1 for "-", "/dev/stdout",
 * 2 for "/dev/stderr", N for "/dev/fd/N" and "/proc/self/fd/N" (what a shell's
 * process substitution passes).  These are the caller's own open files, used
 * as they are.  -1 for any other path.
 */
int rw_outfile_inherited(const char *path);

/*
 * Open path for writing under the rules in FILES (rstwatch(8)) and return the
 * fd (blocking, close-on-exec), or -1 with "what path: why (what to do)" in err.
 * An inherited descriptor (rw_outfile_inherited) is dup()ed.
 */
int rw_outfile_open(const char *path, const struct rw_outfile_opts *o, char *err, size_t errlen);

#endif /* RSTWATCH_OUTFILE_H */
