/*
 * Committing a box's changes to the host (hutch commit).
 *
 * The host is written only through file descriptors: each layer's host dir
 * is opened without following symlinks, every parent below it with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV, and then only the
 * final name is acted on, with *at() calls that do not follow it. Neither a
 * symlink the box made nor one swapped into the host tree meanwhile can
 * redirect a write.
 *
 * Each file, symlink or fifo is written under a temporary name in its
 * target's directory (".hutch-commit-" and 12 random characters; a file
 * where the host has none as an O_TMPFILE, linked in), or is the box's own
 * file renamed from its upper dir where that gives what a copy would (see
 * may_move in commit.c); in batches, made durable with one syncfs before
 * any is renamed over its target, so a kill or a crash at any moment leaves
 * every target entirely old or entirely new. A deleted directory is renamed
 * to such a name before its tree is removed. Leftovers of a killed commit
 * are removed by the next commit that writes in that directory (a temporary
 * file is flock()ed while written, so a concurrent commit leaves it alone);
 * box/changes.h skips these names. A name of that form is thus hutch's:
 * a file of the user's named like it may be removed.
 *
 * Only after the host side is done does the box forget what was committed,
 * in an order that keeps the box's view intact at each step (see
 * forget_committed in commit.c). A commit killed at any moment thus leaves
 * a box whose view is unchanged, and running commit again completes it: what
 * reached the host already equals the box's copy and is no change any more.
 *
 * The caller holds box_lock_idle() for the whole commit.
 */
#ifndef HUTCH_BOX_COMMIT_H
#define HUTCH_BOX_COMMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "box/changes.h"
#include "common/error.h"

struct commit_opts {
	const char *box;    /* the box's name, for messages */
	bool force;	    /* overwrite host entries changed after the box copied them */
	bool allow_setuid;  /* commit files flagged setuid, setgid or caps (changes.h) */
	char *const *paths; /* the PATH arguments (normalized); none: everything */
	size_t npaths;
};

struct commit_problems {
	char **v; /* one line each, without the "hutch: " prefix */
	size_t n;
};

/*
 * Check the selected changes before anything is changed: adds to selected[]
 * the new directories the selected changes need as parents, then reports in
 * problems every change that cannot be committed: a conflict (unless
 * opts->force), a file flagged setuid, setgid or caps (unless
 * opts->allow_setuid; caps need root even then), a host directory the
 * caller cannot write, a parent reached through a symlink, an entry hutch
 * cannot recreate (a device node or socket). Returns -1 only when
 * the check itself fails.
 */
int commit_check(const struct changes *ch, bool *selected, const struct commit_opts *opts,
		 struct commit_problems *problems, struct error *err);
void commit_problems_release(struct commit_problems *problems);

/*
 * Apply the selected changes in order, calling done(change, arg) after
 * each, and done(NULL, arg) after each batch of them; then, once the host
 * side is on disk, remove what was committed from the box. Stops at the
 * first change that fails (a conflict that appeared since commit_check
 * included); what was committed before it stays committed.
 */
int commit_apply(const struct changes *ch, const bool *selected, const struct commit_opts *opts,
		 void (*done)(const struct change *c, void *arg), void *arg, struct error *err);

#endif
