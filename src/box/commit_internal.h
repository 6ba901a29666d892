/*
 * What the parts of commit share (commit.h is the API): the context of one
 * commit, the resolution rules, and the helpers one part lends another.
 * Not for use outside src/box/commit*.c.
 */
#ifndef HUTCH_BOX_COMMIT_INTERNAL_H
#define HUTCH_BOX_COMMIT_INTERNAL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "box/commit.h"

/*
 * Why commit cannot be made to write where it should not.
 *
 * The threats: the box is untrusted, so any entry in its upper dir may be a
 * symlink pointing anywhere (/etc, ../..); and while commit runs, anyone
 * who may write in a host directory on the way may swap an entry for a
 * symlink (the CVE-2021-26910 kind of race that ended firejail's overlay).
 * A path string resolved twice is therefore never trusted:
 *  - the box's copy is read through an fd opened with RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS from its upper dir, final name O_NOFOLLOW; a box
 *    symlink is read with readlinkat() and recreated with symlinkat(): its
 *    text is copied, never resolved;
 *  - each layer's host dir is opened with RESOLVE_NO_SYMLINKS, and the
 *    parent of each target, afresh for each change, with HOST_RESOLVE below
 *    it: a symlink anywhere on the way fails the lookup (ELOOP) instead of
 *    being followed, ".." cannot climb out, a new mount is not entered;
 *  - on that parent fd, only the final name is acted on, by calls that do
 *    not follow it: new entries are made under a fresh name (O_CREAT|O_EXCL,
 *    symlinkat, mknodat, mkdirat all fail on an existing name, symlink or
 *    not) and renamed over the target, and rename(2) replaces the target
 *    entry itself, whatever it is; unlinkat, fchownat and beneath_chmod do not
 *    follow either;
 *  - a tree is removed through fds: fstatat without following, openat with
 *    O_NOFOLLOW | O_DIRECTORY, never across a mount (remove_tree_at).
 * An entry swapped in at the last moment is thus replaced or removed, never
 * written through. The checks (conflicts, permissions) run before anything
 * changes, and conflicts again just before each change; a change that still
 * fails then stops the commit, each file being entirely old or new.
 */

#define TEMP_PREFIX COMMIT_TEMP_PREFIX
#define TEMP_RANDOM COMMIT_TEMP_RANDOM
#define TREE_DEPTH_MAX 2048
#define COPY_CHUNK (1 << 20)

/*
 * Below a layer's host dir: no symlink of any kind (one planted by the box
 * in its copy is recreated as a symlink, never followed; one swapped into
 * the host tree during the commit makes the lookup fail), no escape by
 * ".." and no other mount (the box's layer covered one filesystem when it
 * ran: a mount that appeared below since is not what the box changed).
 */
#define HOST_RESOLVE                                                                               \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
/* Below an upper dir in the store: the box's symlinks are data, not paths. */
#define UPPER_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/*
 * The directory opened last on one side, kept for the next change: changes
 * come sorted by path, so thousands of files in one folder open it once.
 * The fd stays the directory that was checked when opened (a later swap of
 * its path for a symlink does not redirect it), as a fresh open would be.
 */
struct parent_cache {
	size_t layer;
	char *rel; /* NULL: empty */
	int fd;
	int move_ok; /* may_move_*() of this dir: -1 not asked yet, else 0 or 1 */
};

struct ctx {
	const struct changes *ch;
	const struct commit_opts *opts;
	int *host_root; /* per layer: fd, or -1 before the first use */
	int *upper_root;
	struct parent_cache host_dir, upper_dir;
	char **cleaned; /* host dirs whose leftovers are gone */
	size_t ncleaned;
	uid_t euid;
	bool tmpfile_ok;      /* O_TMPFILE files can be linked in (/proc is there) */
	signed char *same_fs; /* per layer: upper and host dir on one filesystem; -1 unknown */
};

/* --- openat2 resolution below the layers, the box's copies, comparing (commit_beneath.c) --- */

void commit_ctx_init(struct ctx *x, const struct changes *ch, const struct commit_opts *opts);
void commit_ctx_release(struct ctx *x);
/* The layer's host dir, reached without following any symlink. */
int commit_host_root(struct ctx *x, size_t layer);
/* The store is the user's own and the box is locked: its path is trusted. */
int commit_upper_root(struct ctx *x, size_t layer);
char *commit_parent_path(const char *path);
/*
 * The host directory holding c, as an O_PATH fd owned by x (valid until
 * the next host_parent call); -1 with errno.
 */
int commit_host_parent(struct ctx *x, const struct change *c, const char **name);
/* The same in the box's upper dir, from a cache of its own. */
int commit_upper_parent(struct ctx *x, const struct change *c, const char **name);
bool commit_ts_after(const struct timespec *a, const struct timespec *b);
/* The change makes a directory where the host has none (or a non-directory). */
bool commit_creates_dir(const struct change *c);
/*
 * Open the box's copy of a file for reading. A box may leave a file of its
 * own unreadable (chmod 000): its owner may grant itself read access for
 * the moment, as the box is locked; the mode is put back at once.
 */
int commit_open_upper_file(struct ctx *x, const struct change *c);
/* Whether the box's copy of c can be read as it is: no open needed to know. */
bool commit_upper_readable(struct ctx *x, const struct change *c);
bool commit_read_link(int dfd, const char *name, char *buf, size_t size, size_t *len);
/*
 * Whether the host entry hst (name in the host dir hdfd) already holds what
 * the box has: then overwriting it loses nothing. Directories count as
 * equal (a directory's entries are changes of their own). So a directory's
 * mode is committed without a conflict check: its ctime moves with every
 * entry added or removed in it (by this very commit too, which would make
 * a commit killed half-way conflict with itself), so it cannot tell a host
 * chmod from a busy directory.
 */
bool commit_content_equal(struct ctx *x, const struct change *c, int hdfd, const char *name,
			  const struct stat *hst);

/* --- checking (commit_check.c) --- */

void commit_temp_name(char buf[sizeof(TEMP_PREFIX) + TEMP_RANDOM]);
/*
 * Remove what killed commits left in the host dir dfd: a temporary file is
 * removed only if no commit holds its lock (one being written right now by
 * a concurrent commit stays); a renamed-away tree was to be removed anyway.
 */
void commit_clean_leftovers(struct ctx *x, int dfd, const char *display);
/* Make the renames in the host dir dfd durable; a dir we cannot read stays unsynced. */
void commit_sync_dir(int dfd);
const char *commit_host_open_reason(int errnum);
void commit_conflict_msg(struct ctx *x, const struct change *c, struct commit_problems *p,
			 struct error *err);
/*
 * Whether committing c would overwrite a host change the box never saw: the
 * host entry (or, for a tree about to be removed, any entry in it) changed
 * after the box took its copy, and does not already hold the box's content.
 * The latter makes a commit that was killed half-way safe to run again.
 */
bool commit_is_conflict(struct ctx *x, const struct change *c, int hdfd, const char *name,
			const struct stat *hst);

/* --- forgetting what was committed (commit_forget.c) --- */

/*
 * Remove what was committed from the box. Each step keeps the box's view
 * as it is, so a kill between any two leaves a box that shows the same:
 *  1. clear user.overlay.opaque of the touched dirs whose hidden host
 *     entries were all deleted by this commit (the host now holds nothing
 *     the copy lacks, so merging shows the same);
 *  2. unlink the committed files, symlinks and whiteouts, and the stale
 *     entries in the selection (the host holds the same now) — except
 *     below a dir that stays opaque, where the host's entry would not show;
 *  3. remove the touched dirs that are now empty and are no uncommitted
 *     change, deepest first (the host's dir shows instead), again not
 *     below a dir that stays opaque.
 * A failure here leaves an entry that equals the host's: no change.
 */
void commit_forget_committed(struct ctx *x, const bool *committed);

#endif
