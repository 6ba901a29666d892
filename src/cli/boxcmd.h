/* Helpers shared by the commands that act on a box in the store (list, diff, commit, reset, rm). */
#ifndef HUTCH_CLI_BOXCMD_H
#define HUTCH_CLI_BOXCMD_H

#include <stdbool.h>
#include <stdio.h>

#include "box/changes.h"
#include "box/store.h"
#include "common/error.h"

/*
 * The existing box a command names at argv[optind]: usage_error() if none
 * is given or, with one_arg, if more arguments follow it. Sets *box_dir
 * (newly allocated), or prints why not ("no box named 'NAME'") and
 * returns -1.
 */
int boxcmd_named(const char *cmd, int argc, char **argv, bool one_arg, char **box_dir);

/*
 * Lock the box for a command that changes it (commit, reset, rm): first the
 * box's directory (flock), waiting for another such command on the box to
 * finish, then box_lock_idle(), which refuses a running box. Fails with
 * "no box named 'NAME'" if the box was removed while we waited.
 */
struct boxcmd_lock {
	int dir_fd;
	struct box_idle_lock idle;
};

int boxcmd_lock(const char *box_dir, const char *name, struct boxcmd_lock *lock, struct error *err);
void boxcmd_unlock(struct boxcmd_lock *lock);

/*
 * "A file 12 /path": one change as diff and commit print it; flags follow
 * the kind ("A file,setuid,caps 12 /path").
 */
void boxcmd_print_change(FILE *f, const struct change *c);
/* {"path":...,"change":...,"kind":...,"size":...} and "flags":[...] when there are any */
void boxcmd_print_change_json(FILE *f, const struct change *c);

/*
 * A path for a line of human-readable output: as is, or, if it holds a
 * control character, '"' or '\\', in double quotes with C escapes (as git
 * quotes odd names), so that one change is always one line.
 */
void boxcmd_print_path(FILE *f, const char *path);

/*
 * The PATH arguments of diff and commit, normalized (absolute, or relative
 * to the current directory; no symlink is resolved): a NULL-terminated
 * array, freed with boxcmd_paths_free().
 */
char **boxcmd_paths(int n, char **args);
void boxcmd_paths_free(char **paths);

#endif
