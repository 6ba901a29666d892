/* Assembling a box's root inside its fresh user+mount namespace. */
#ifndef HUTCH_BOX_MOUNTS_H
#define HUTCH_BOX_MOUNTS_H

#include "box/fsplan.h"
#include "common/error.h"

struct box_root {
	const char *store_home; /* hidden inside the box */
	const char *box_dir;    /* $HUTCH_HOME/boxes/NAME */
	const char *newroot;    /* $HUTCH_HOME/boxes/NAME/mnt */
};

/*
 * Mount the planned tree on root->newroot and pivot into it. Must run with
 * CAP_SYS_ADMIN over a private mount namespace, as PID 1 of the box's pid
 * namespace (for /proc). On return "/" is the box's root, read-only at its
 * top level so nothing is written where the store would not keep it.
 */
int box_root_mount(const struct box_root *root, const struct fsplan *plan, struct error *err);

/* Bring up the loopback interface of a fresh network namespace. */
int net_loopback_up(struct error *err);

#endif
