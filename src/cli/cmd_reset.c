/* hutch reset and hutch rm: discard a box's changes, or the whole box. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box/mounts.h"
#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/* Remove everything inside dir, keeping dir itself. */
static int empty_dir(const char *dir, struct error *err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return errno == ENOENT ? 0 : error_set(err, errno, "cannot open '%s'", dir);
	while ((errno = 0, e = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (remove_tree(path, err) < 0)
			return -1;
	}
	if (errno)
		return error_set(err, errno, "cannot read '%s'", dir);
	return 0;
}

/*
 * reset empties fs/ (every layer: changes and overlay scratch), tmp/ and
 * the trash of old work dirs; rm removes fs/ and tmp/ first, then the
 * rest, so that a kill midway leaves a box that is merely emptier, and
 * running either again finishes.
 */
static int discard(const char *box_dir, bool whole, struct error *err)
{
	_cleanup_free_ char *fs = xasprintf("%s/fs", box_dir);
	_cleanup_free_ char *tmp = xasprintf("%s/tmp", box_dir);
	_cleanup_free_ char *trash = xasprintf("%s/" BOX_TRASH, box_dir);

	if (!whole)
		return empty_dir(fs, err) < 0 || empty_dir(tmp, err) < 0 || empty_dir(trash, err) < 0
			       ? -1
			       : 0;
	if (remove_tree(fs, err) < 0 || remove_tree(tmp, err) < 0 || remove_tree(box_dir, err) < 0)
		return -1;
	return 0;
}

static int reset_or_rm(int argc, char **argv, bool whole)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *cmd = whole ? "rm " : "reset ";
	_cleanup_free_ char *box_dir = NULL;
	struct boxcmd_lock lock;
	struct error err;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			if (whole)
				printf("usage: hutch rm BOX\n\n"
				       "Delete box BOX with every change it holds.\n");
			else
				printf("usage: hutch reset BOX\n\n"
				       "Discard every change box BOX holds (its files and its "
				       "/tmp); keep the box.\n");
			return 0;
		default:
			usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (boxcmd_named(cmd, argc, argv, true, &box_dir) < 0)
		return EXIT_HUTCH_FAILED;
	if (boxcmd_lock(box_dir, argv[optind], &lock, &err) < 0) {
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	r = discard(box_dir, whole, &err);
	boxcmd_unlock(&lock);
	if (r < 0) {
		error_prefix(&err, "cannot %s box '%s'", whole ? "remove" : "reset", argv[optind]);
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	return 0;
}

int cmd_reset(int argc, char **argv)
{
	return reset_or_rm(argc, argv, false);
}

int cmd_rm(int argc, char **argv)
{
	return reset_or_rm(argc, argv, true);
}
