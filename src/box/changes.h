/*
 * What a box changed: its layers' upper dirs read against the host as it is
 * now (the store's layout is in box/store.h).
 *
 * For each layer, the upper dir is walked together with the host dir it sits
 * on, never following a symlink on either side:
 *   - a whiteout (char device 0/0) is a deletion if the host still has the
 *     entry, and nothing otherwise (a "stale" whiteout);
 *   - a non-directory is "added" where the host has nothing, "modified"
 *     where the host entry differs in type, mode, size, mtime (ns) or
 *     symlink target, and no change where all of them match (a copy-up
 *     that was never written, or a change already committed: "stale");
 *   - a directory is "added" where the host has none ("modified" where it
 *     replaces a host non-directory) and its children are all added; one
 *     that sits on a host directory is a change only if its mode differs,
 *     and its children are compared in turn. Below a directory marked
 *     user.overlay.opaque (which replaced a host directory), every host
 *     entry the upper dir lacks is deleted: overlayfs shows none of them.
 * A new or changed file is flagged (enum change_flags) when it gains
 * setuid or setgid against the host's file, or carries file capabilities.
 * Changes come out sorted by path, bytewise (strcmp), so parents precede
 * their children.
 */
#ifndef HUTCH_BOX_CHANGES_H
#define HUTCH_BOX_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/error.h"

enum change_type {
	CHANGE_ADDED,
	CHANGE_MODIFIED,
	CHANGE_DELETED,
};

enum change_kind {
	KIND_FILE,
	KIND_DIR,
	KIND_SYMLINK,
	KIND_OTHER, /* fifo, socket, device */
};

/* What makes a new or changed file able to raise privileges on the host. */
enum change_flags {
	CHANGE_SETUID = 1 << 0, /* the box's file is setuid, the host's was not (or none) */
	CHANGE_SETGID = 1 << 1, /* the same for setgid */
	CHANGE_CAPS = 1 << 2,	/* the box's file carries security.capability */
};

struct change_layer {
	char *path;  /* host dir the layer sits on, as the box sees it ("/var") */
	char *host;  /* the same dir on this host: host_root + path */
	char *upper; /* the layer's upper dir in the store */
};

struct change {
	char *path;   /* absolute path, as the box sees it ("/var/tmp/x") */
	char *rel;    /* the same below its layer's root ("tmp/x"), never empty */
	size_t layer; /* index into changes.layers */
	enum change_type type;
	enum change_kind kind;	 /* of the box's entry; of the host's for a deletion */
	unsigned long long size; /* bytes of that entry; 0 for directories */

	/* What commit needs. */
	mode_t upper_mode; /* the box's entry: type and permissions (0 for a deletion) */
	uid_t upper_uid;
	gid_t upper_gid;
	struct timespec upper_atime, upper_mtime;
	/*
	 * When the box took its copy: the birth time of the upper entry (of the
	 * whiteout for a deletion, of the opaque dir for a host entry it hides),
	 * its ctime where the store's filesystem keeps no birth time.
	 */
	struct timespec taken;
	mode_t host_mode; /* the host entry's type and permissions when compared; 0 if none */
	unsigned flags;	  /* enum change_flags; files only */
	bool opaque;	  /* a directory carrying user.overlay.opaque */
	char *opaque_rel; /* a deletion hidden by an opaque dir: that dir's rel, else NULL */
};

struct changes {
	struct change_layer *layers;
	size_t nlayers;
	struct change *v; /* sorted by path */
	size_t n;
	/*
	 * Upper entries that are no change: whiteouts of host entries that are
	 * gone already, and copies equal to the host's entry (a file copied up
	 * but not changed, or a change committed by a commit that was killed).
	 * Commit removes them from the box along with what it commits.
	 */
	struct change *stale;
	size_t nstale;
};

/*
 * Collect the changes of the box in box_dir against the host under host_root
 * ("" for the real host; tests pass a scratch folder). A layer whose name
 * does not decode is skipped with a warning.
 */
int changes_collect(struct changes *ch, const char *box_dir, const char *host_root,
		    struct error *err);
void changes_release(struct changes *ch);

/* Index of the change at exactly path, or -1. */
ssize_t changes_find(const struct changes *ch, const char *path);

/*
 * Mark in selected[] (ch->n entries) every change at or below one of the
 * n absolute, normalized paths; all of them when n is 0. Fails with
 * "'P' is not among box 'BOX''s changes" for a path that matches none.
 */
int changes_select(const struct changes *ch, char *const *paths, size_t n, bool *selected,
		   const char *box, struct error *err);

/* "added", "file" ... for output. */
const char *change_type_name(enum change_type type);
const char *change_kind_name(enum change_kind kind);
/* The name of one flag of enum change_flags: "setuid", "setgid", "caps". */
const char *change_flag_name(enum change_flags flag);

/* Normalize path (absolute, or relative to cwd): no ".", "..", "//" or trailing '/'. */
char *path_normalize(const char *cwd, const char *path);

/*
 * Whether name is one commit gives its temporary entries on the host:
 * COMMIT_TEMP_PREFIX and exactly COMMIT_TEMP_RANDOM characters of [a-z0-9],
 * nothing else (".hutch-commit-notes" is a user's file). diff does not
 * show such host entries, and commit removes them as leftovers of a killed
 * commit.
 */
#define COMMIT_TEMP_PREFIX ".hutch-commit-"
#define COMMIT_TEMP_RANDOM 12
bool commit_is_temp_name(const char *name);

#endif
