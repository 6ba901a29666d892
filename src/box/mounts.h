/* Assembling a box's root inside its fresh user+mount namespace. */
#ifndef HUTCH_BOX_MOUNTS_H
#define HUTCH_BOX_MOUNTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "box/fsplan.h"
#include "common/error.h"
#include "policy/policy.h"

struct box_root {
	const char *store_home; /* hidden inside the box */
	const char *box_dir;    /* $HUTCH_HOME/boxes/NAME */
	const char *newroot;    /* $HUTCH_HOME/boxes/NAME/mnt */
	const struct policy *policy; /* access rules, or NULL */
	int log_fd;                  /* the box's event log */
};

/*
 * Mount the planned tree on root->newroot and pivot into it. Must run with
 * CAP_SYS_ADMIN over a private mount namespace, as PID 1 of the box's pid
 * namespace (for /proc). On return "/" is the box's root, read-only at its
 * top level so nothing is written where the store would not keep it.
 */
int box_root_mount(const struct box_root *root, const struct fsplan *plan, struct error *err);

/* Bind src (recursively) on target, optionally read-only. */
int mount_bind(const char *src, const char *target, bool read_only, struct error *err);
/* Create a mount point: a directory, or an empty file, as mode says. */
int make_target(const char *target, mode_t mode, struct error *err);

/* Bring up the loopback interface of a fresh network namespace. */
int net_loopback_up(struct error *err);

#endif
