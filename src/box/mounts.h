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
 * Start the box's root on root->newroot with what every box has, whatever
 * its plan: /dev and /proc. Must run with
 * CAP_SYS_ADMIN over a private mount namespace, as PID 1 of the box's pid
 * namespace (for /proc). The host's mount table must be read before: this
 * mounts below the store.
 */
int box_root_prepare(const struct box_root *root, struct error *err);

/* Mount a fresh /sys: it shows the network namespace of the calling thread. */
int box_root_sys(const struct box_root *root, struct error *err);

/* Then mount the planned tree but its overlays, and make their mount points. */
int box_root_mount(const struct box_root *root, const struct fsplan *plan, struct error *err);

/*
 * Then mount the overlays (only once the box's last run has unmounted its
 * own: see BOX_LOCK_MOUNTED), apply the policy's access rules and pivot
 * into the box's root. On return "/" is the box's root, read-only at its
 * top level so nothing is written where the store would not keep it.
 */
int box_root_finish(const struct box_root *root, const struct fsplan *plan, struct error *err);

/* Under the box's directory: old overlay work dirs, removed after a run. */
#define BOX_TRASH "trash"
/* At most this many threads detach a stopped box's overlays. */
#define DETACH_THREADS 16

/*
 * Detach the overlays of a box whose processes have all exited, from
 * outside it: join its user and mount namespaces (by the fds of
 * /proc/PID/ns/{user,mnt}, opened while its PID 1 lived) and detach each
 * overlay on a thread of its own. Unmounting an overlay syncs its upper
 * filesystem; the kernel would do that overlay after overlay when the
 * namespace goes. The calling process must be single-threaded, and stays
 * in the box's namespaces: call it in a process that exits next. Returns
 * -1 if the namespaces cannot be joined or their mounts read.
 */
int box_root_detach(int userns_fd, int mntns_fd);

/*
 * Refresh a running box's view of the host. overlayfs keeps the dentries
 * it looked up, so a box that has run a while would miss host files made
 * since (a cached "no such file") or still show deleted ones: reconfiguring
 * each overlay drops every dentry no process uses. Done from a child that
 * joins the box's user and mount namespaces (fds PID 1 sent, control.h),
 * as PID 1 may not mount. Returns -1 if that could not be done.
 */
int box_root_refresh(int userns_fd, int mntns_fd);

/* Empty the box's trash (BOX_TRASH) in the box directory box_dirfd. */
void box_trash_empty(int box_dirfd);

/*
 * overlayfs makes each layer's work/work with mode 0 and leaves it behind
 * at unmount: `find ~`, `du`, backups and `rm -rf` would meet one folder
 * they may not read per layer of every box. Once the kernel has let go of
 * the box's layers (unmounted, the "mounted" lock still held: no run can
 * have mounted them again), make each readable and move it into the trash
 * for box_trash_empty(). The next mount makes a new one.
 */
void box_work_release(int box_dirfd);

/*
 * In a box's PID 1, between runs: empty /dev/shm, remove from /dev
 * whatever the box did not make there itself, and put back the modes of
 * both and the symlinks in /dev (the box's user owns them).
 */
int box_dev_reset(void);

#endif
