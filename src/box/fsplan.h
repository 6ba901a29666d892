/*
 * How a box's root is assembled from the host's, decided before any mount.
 *
 * An unprivileged overlay cannot take "/" as its lower layer: the user
 * namespace locks every mount below it, and overlayfs refuses a lower dir
 * with locked mounts beneath (clone_private_mount: has_locked_children). So
 * each top-level directory gets an overlay of its own. A directory that does
 * have foreign mounts below (/mnt/x, /etc/resolv.conf in a container) is
 * rebuilt as a plain directory and its children planned one by one, so the
 * overlays sit exactly on the subtrees free of mounts; pseudo filesystems
 * below (cgroup, binfmt_misc, fuse portals) are bound read-only, as are
 * plain files in such rebuilt directories.
 */
#ifndef HUTCH_BOX_FSPLAN_H
#define HUTCH_BOX_FSPLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/mountinfo.h"

/* Filesystems with files of their own, which get a copy-on-write overlay. */
bool fstype_is_pseudo(const char *fstype);

enum fsplan_kind {
	PLAN_OVERLAY, /* overlay with the host dir as lower layer */
	PLAN_DIR,     /* a plain directory in the box root; children planned */
	PLAN_SYMLINK, /* a symlink recreated with the same target */
	PLAN_BIND_RO, /* a read-only bind (recursive for directories) */
	PLAN_PROC,    /* a fresh procfs for the box's pid namespace */
	PLAN_SYS,     /* sysfs, read-only */
	PLAN_DEV,     /* a minimal /dev */
	PLAN_TMP,     /* the box's private /tmp from its store (--private-tmp) */
};

enum fsplan_flags {
	FSPLAN_PRIVILEGED = 1 << 0,  /* the caller is root: it may write anywhere */
	FSPLAN_PRIVATE_TMP = 1 << 1, /* /tmp is the box's own (PLAN_TMP), not the host's */
};

struct fsplan_entry {
	enum fsplan_kind kind;
	char *path;   /* absolute path inside the box (= on the host) */
	char *target; /* PLAN_SYMLINK only */
	mode_t mode;  /* file type and permissions on the host */
	unsigned nested; /* PLAN_OVERLAY on N overlays below it: mounted after them */
	/*
	 * PLAN_DIR of mode 1777 (/tmp, /var/tmp), whose top level must take
	 * new files although mounts below it keep the host's directory from
	 * being an overlay's lower layer (its mounts are locked in the box's
	 * user namespace): the directory is made with a mount point for each
	 * entry below it, an overlay (layer of the same path) goes over that
	 * skeleton, and the entries' mounts go on top of the overlay.
	 */
	bool cow;
};

struct fsplan {
	struct fsplan_entry *v;
	size_t n;
	bool privileged; /* the caller is root: it may write anywhere */
};

/*
 * Plan the box root from the host tree under root (normally "/"; tests pass
 * a scratch folder) and its mount table, whose paths are relative to root.
 * Entries come parents first. Unless FSPLAN_PRIVILEGED, directories in
 * which the caller can change nothing are bound read-only instead of
 * overlaid. /tmp is planned as any other directory (copy-on-write over
 * the host's) unless FSPLAN_PRIVATE_TMP.
 */
int fsplan_build(struct fsplan *plan, const char *root, const struct mount_table *mt,
		 enum fsplan_flags flags, struct error *err);

/*
 * Unprivileged, a directory whose owner or group the box cannot map (only
 * the caller's uid and primary gid are) cannot be copied up: writing into
 * it fails with EOVERFLOW, and so does writing below it. The root of a
 * layer is never copied up, so when the working directory cwd (a path
 * below root) or one of its parents up to its layer is such a directory, a
 * layer goes just below the deepest of them (or at cwd itself, if it is
 * one), provided the caller may write there or in cwd; and each such
 * directory directly in cwd that the caller may write gets one too.
 * Returns how many layers were added. No-op for a privileged plan.
 */
size_t fsplan_add_cwd(struct fsplan *plan, const char *root, const char *cwd);

/*
 * Files directly in the directory dir that the caller may write on the host
 * but that an unprivileged box cannot copy up, as their owner or group is
 * not the caller's (the kernel refuses with EOVERFLOW): how many (of at most
 * 4096 entries looked at), the first one's name (newly allocated, in
 * *first) and its lstat. 0 for root, whose boxes map every id.
 */
size_t fsplan_unmapped_files(const char *dir, char **first, struct stat *st);

/* The deepest overlay of plan whose path holds path (or is it), or NULL. */
const struct fsplan_entry *fsplan_layer_of(const struct fsplan *plan, const char *path);
void fsplan_release(struct fsplan *plan);

/*
 * A fingerprint of the plan and of the host files it binds read-only (what
 * each is, and which): two plans with the same hash build the same root.
 */
uint64_t fsplan_hash(const struct fsplan *plan);

/*
 * Read the mount table and plan the root of "/" for this process as a box
 * started from cwd (NULL: none) would; 0 on error.
 */
uint64_t fsplan_hash_host(enum fsplan_flags flags, const char *cwd);

#endif
