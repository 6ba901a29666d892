/* Small helpers shared by every part of hutch. */
#ifndef HUTCH_COMMON_UTIL_H
#define HUTCH_COMMON_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that cannot fail: hutch aborts on out-of-memory. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write or read all of buf, retrying on EINTR and short transfers. */
int write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len);

/* Write a small string to an existing file (procfs, sysfs), in one write. */
int write_file(const char *path, const char *content, struct error *err);

/* Read a whole small file into a NUL-terminated string; NULL on error. */
char *read_file(const char *path, size_t max, struct error *err);
/* The same, for path relative to the directory dfd (or AT_FDCWD). */
char *read_file_at(int dfd, const char *path, size_t max, struct error *err);

/* mkdir -p with mode for each created component; existing dirs are fine. */
int mkdir_p(const char *path, mode_t mode, struct error *err);

/* Remove a tree, making directories writable first (overlay work dirs are mode 0). */
int remove_tree(const char *path, struct error *err);

/*
 * The same for dfd/name, by fds only: never follows a symlink, and fails
 * (EBUSY) rather than enter a directory on a device other than dev.
 * Returns -1 with errno set.
 */
int remove_tree_at(int dfd, const char *name, dev_t dev);

/* Point stdin, stdout and stderr at /dev/null (a child that must hold none of its caller's). */
void stdio_to_null(void);

/* A wait status as a shell reports it: the exit code, or 128+N for signal N. */
int exit_status_code(int status);

bool str_has_prefix(const char *s, const char *prefix);

/* True if path equals dir or lies below it (both absolute, normalized). */
bool path_is_within(const char *path, const char *dir);

/*
 * A size, one syntax for every option and profile key that takes one
 * (run's --memory and --max-file-size, vm's --memory, profiles): a whole
 * number and a unit, K, M, G or T, powers of 1024 (KiB and KB mean the
 * same as K; case does not matter), or B for bytes. A bare number is
 * refused with a message asking for a unit: `hutch run` used to read one
 * as bytes and `hutch vm` as MiB. Zero, negative numbers, fractions and
 * sizes beyond 2^64-1 bytes are refused too. what names the setting in
 * the message ("--memory", "memory"); the message names the value.
 */
int parse_size(const char *what, const char *s, uint64_t *out, struct error *err);

/* FNV-1a of len bytes at data, continuing from h (start with HASH_SEED). */
#define HASH_SEED 0xcbf29ce484222325ull
uint64_t hash_bytes(uint64_t h, const void *data, size_t len);

#endif
