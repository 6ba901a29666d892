/*
 * Acting on a path below a directory fd without following what the path
 * string says: the openat2(2) lookups commit and diff take (RESOLVE_*
 * flags chosen by the caller) and a chmod that never follows a symlink.
 */
#ifndef HUTCH_BOX_BENEATH_H
#define HUTCH_BOX_BENEATH_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/openat2.h>

/*
 * openat2(dirfd, path) with flags | O_CLOEXEC and the RESOLVE_* bits in
 * resolve; retried when a concurrent rename made the kernel give up on
 * ".." (EAGAIN). -1 with errno.
 */
int beneath_open(int dirfd, const char *path, int flags, uint64_t resolve);

/* chmod of name in dfd that never follows a symlink; -1 with errno. */
int beneath_chmod(int dfd, const char *name, mode_t mode);

#endif
