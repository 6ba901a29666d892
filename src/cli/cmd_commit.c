#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box/changes.h"
#include "box/commit.h"
#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static void commit_help(void)
{
	printf("usage: hutch commit [--dry-run] [--force] [--allow-setuid] BOX [PATH...]\n\n"
	       "Apply what box BOX changed to the host, and remove it from the box:\n"
	       "every change, or those at or below the PATHs (with the new directories\n"
	       "they need). Each file is replaced atomically: a kill at any moment\n"
	       "leaves it entirely old or entirely new, and running commit again\n"
	       "completes the commit. Before changing anything, every change is\n"
	       "checked; if one cannot be made, or the host changed it after the box\n"
	       "copied it (a conflict), nothing is changed. A file the box made setuid\n"
	       "or setgid, or gave file capabilities, is refused unless --allow-setuid;\n"
	       "fifos are committed, sockets and device nodes never.\n\n"
	       "  -n, --dry-run     print what would change, change nothing\n"
	       "  -f, --force       overwrite host changes the box has not seen\n"
	       "      --allow-setuid  commit setuid, setgid and capability files too\n"
	       "  -h, --help        show this help\n");
}

/* Each change as it reaches the host; flushed once per batch on disk (c NULL). */
static void print_done(const struct change *c, void *arg)
{
	if (c)
		boxcmd_print_change(stdout, c);
	else
		fflush(stdout);
}

static int commit_box(const char *name, const char *box_dir, char **paths, size_t npaths,
		      bool dry_run, bool force, bool allow_setuid)
{
	struct commit_opts opts = {.box = name,
				   .force = force,
				   .allow_setuid = allow_setuid,
				   .paths = paths,
				   .npaths = npaths};
	struct commit_problems problems;
	_cleanup_free_ bool *selected = NULL;
	struct changes ch;
	struct error err;
	int status = EXIT_HUTCH_FAILED;

	if (changes_collect(&ch, box_dir, "", &err) < 0) {
		error_prefix(&err, "cannot read box '%s'", name);
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	selected = xcalloc(ch.n + 1, sizeof(bool));
	if (changes_select(&ch, paths, npaths, selected, name, &err) < 0 ||
	    commit_check(&ch, selected, &opts, &problems, &err) < 0) {
		error_print(&err);
		goto out;
	}
	if (problems.n > 0) {
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "hutch: %s\n", problems.v[i]);
		commit_problems_release(&problems);
		goto out;
	}
	if (dry_run) {
		for (size_t i = 0; i < ch.n; i++)
			if (selected[i])
				boxcmd_print_change(stdout, &ch.v[i]);
		status = 0;
		goto out;
	}
	if (commit_apply(&ch, selected, &opts, print_done, NULL, &err) < 0) {
		error_print(&err);
		goto out;
	}
	status = 0;
out:
	changes_release(&ch);
	return status;
}

int cmd_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"force", no_argument, NULL, 'f'},
	    {"allow-setuid", no_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_free_ char *box_dir = NULL;
	struct boxcmd_lock lock;
	struct error err;
	bool dry_run = false, force = false, allow_setuid = false;
	char **paths;
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":nfh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry_run = true;
			break;
		case 'f':
			force = true;
			break;
		case 'S':
			allow_setuid = true;
			break;
		case 'h':
			commit_help();
			return 0;
		default:
			usage_error("commit ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (boxcmd_named("commit ", argc, argv, false, &box_dir) < 0)
		return EXIT_HUTCH_FAILED;
	paths = boxcmd_paths(argc - optind - 1, argv + optind + 1);
	/*
	 * Held for the whole commit, a dry run included (it reads the box's
	 * files): no program may change the box's layers meanwhile, and a
	 * second commit, reset or rm of the box waits or fails.
	 */
	if (boxcmd_lock(box_dir, argv[optind], &lock, &err) < 0) {
		error_print(&err);
		boxcmd_paths_free(paths);
		return EXIT_HUTCH_FAILED;
	}
	status =
	    commit_box(argv[optind], box_dir, paths, (size_t)(argc - optind - 1), dry_run, force,
		       allow_setuid);
	boxcmd_unlock(&lock);
	boxcmd_paths_free(paths);
	return status;
}
