/*
 * Mount primitives that the box's root (box/mounts.c) and the access rules
 * (policy/access.c) both build on. A leaf: it knows nothing of boxes or
 * policies, so neither module depends on the other through it.
 */
#ifndef HUTCH_COMMON_MOUNT_H
#define HUTCH_COMMON_MOUNT_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Bind src (recursively) on target, optionally read-only. */
int mount_bind(const char *src, const char *target, bool read_only, struct error *err);
/* Create a mount point: a directory, or an empty file, as mode says. */
int make_target(const char *target, mode_t mode, struct error *err);

#endif
