/*
 * The box store: where each box keeps everything it writes.
 *
 *   $HUTCH_HOME                      default $XDG_DATA_HOME/hutch, i.e.
 *                                    ~/.local/share/hutch
 *     boxes/NAME/                    one box
 *       fs/LAYER/upper/              overlayfs upper dir for one host directory
 *       fs/LAYER/work/               its overlayfs work dir (work/ in it is mode 0
 *                                    while mounted; box_work_release() moves it out)
 *       tmp/                         the box's private /tmp (--private-tmp);
 *                                    else /tmp is the layer fs/tmp
 *       trash/                       overlay work dirs of earlier runs, emptied
 *                                    after each run (box/mounts.h)
 *       mnt/                         empty on the host; the box's root is
 *                                    assembled on it inside the box's mount ns
 *       control                      unix socket of the running box's PID 1
 *       running, mounted, setup, refresh   lock files (see box_lock)
 *
 * LAYER names the host directory the layer sits on: the absolute path
 * without its leading '/', with '%' written "%25" and '/' written "%2F"
 * ("/usr" -> "usr", "/mnt/a/b" -> "mnt%2Fa%2Fb"). Most layers are top-level
 * directories; a directory that has foreign mounts below it is split into
 * one layer per child (see box/fsplan.h), so layers can be deeper.
 * Deleted host files are overlay whiteouts (char devices 0/0) in upper/, and
 * a directory that replaced a host one carries the xattr user.overlay.opaque.
 */
#ifndef HUTCH_BOX_STORE_H
#define HUTCH_BOX_STORE_H

#include <stdbool.h>

#include "common/error.h"

#define BOX_NAME_MAX 64
#define BOX_DEFAULT_NAME "default"

struct store {
	char *home; /* absolute path of $HUTCH_HOME */
};

/* Find $HUTCH_HOME (or its default); creates nothing. */
int store_init(struct store *store, struct error *err);
/* Create the store if missing and resolve its real path. */
int store_create(struct store *store, struct error *err);
void store_release(struct store *store);

/*
 * Check that the store's filesystem (or, before it exists, its nearest
 * existing parent's) takes user.* xattrs, which overlay "userxattr" needs.
 */
int store_check_fs(const struct store *store, struct error *err);

/* Validate a box name: 1-64 of [A-Za-z0-9._+@-], not starting with '.' or '-'. */
int box_name_check(const char *name, struct error *err);

bool store_box_exists(const struct store *store, const char *name);

/* Newly allocated paths inside the store. */
char *store_box_dir(const struct store *store, const char *name);
/* The profile box name was made with (boxes/NAME/profile), or NULL. */
char *store_box_profile(const struct store *store, const char *name);
/* Remember profile for the box's later runs; best effort (atomic, or nothing). */
void store_box_remember_profile(const struct store *store, const char *name, const char *profile);

/*
 * Box locks (flock on files in the box's directory).
 * BOX_LOCK_RUNNING: every hutch run in the box holds it shared for its
 * whole life, so an exclusive hold means no program runs in the box.
 * BOX_LOCK_MOUNTED: held exclusively from before the box's overlays are
 * mounted until the kernel has taken them down again (after the run
 * returned: see box_run).
 * BOX_LOCK_SETUP: held while a run decides whether to join the box's
 * running PID 1 or to start one, so two runs never both start one.
 * BOX_LOCK_REFRESH: held shared by a joining run while it is inside the
 * box's mount namespace (box_root_refresh); the unmount holder takes it
 * exclusively before it releases BOX_LOCK_MOUNTED.
 * Anything that changes a box's layers (commit, reset, rm) holds running
 * and mounted exclusively: box_lock_idle().
 */
enum box_lock {
	BOX_LOCK_RUNNING,
	BOX_LOCK_MOUNTED,
	BOX_LOCK_SETUP,
	BOX_LOCK_REFRESH,
};

enum box_lock_mode {
	BOX_LOCK_SHARED,
	BOX_LOCK_EXCLUSIVE,
};

/*
 * Take a box lock: at once (timeout_ms 0, failing with EWOULDBLOCK in
 * err->errnum), waiting up to timeout_ms, or for as long as it takes
 * (timeout_ms < 0). Returns the lock's fd (O_CLOEXEC).
 */
int box_lock(const char *box_dir, enum box_lock which, enum box_lock_mode mode, int timeout_ms,
	     struct error *err);
/* Open (creating it) a box lock's file in the box directory box_dirfd, without locking it. */
int box_lock_open_at(int box_dirfd, enum box_lock which);

struct box_idle_lock {
	int running; /* fds; -1 when not held */
	int mounted;
};

/*
 * Lock a box that must not be running, for changing its layers: fails with
 * "box 'NAME' is running" when a program runs in it, waits (bounded) for
 * the kernel to finish unmounting a box that has just stopped.
 */
int box_lock_idle(const char *box_dir, const char *name, struct box_idle_lock *lock,
		  struct error *err);
void box_unlock_idle(struct box_idle_lock *lock);

/* Host path <-> LAYER name; both return newly allocated strings. */
char *layer_name_from_path(const char *host_path);
char *layer_path_from_name(const char *layer); /* NULL if malformed */

#endif
