#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "box/changes.h"
#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static void diff_help(void)
{
	printf("usage: hutch diff [--json] BOX [PATH...]\n\n"
	       "Show what box BOX changed, compared with the host as it is now, one\n"
	       "line per path in byte order: A (added), M (modified) or D (deleted),\n"
	       "the kind (file, dir, symlink, other), the size in bytes and the path.\n"
	       "PATHs (absolute, or relative to the current directory) show only the\n"
	       "changes at or below them.\n\n"
	       "  --json      print a JSON array of {path, change, kind, size}\n"
	       "  -h, --help  show this help\n");
}

int cmd_diff(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	_cleanup_free_ char *box_dir = NULL;
	_cleanup_free_ bool *selected = NULL;
	struct changes ch;
	struct error err;
	bool json = false, first = true;
	char **paths;
	int c, npaths;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			diff_help();
			return 0;
		default:
			usage_error("diff ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (boxcmd_named("diff ", argc, argv, false, &box_dir) < 0)
		return EXIT_HUTCH_FAILED;
	npaths = argc - optind - 1;
	paths = boxcmd_paths(npaths, argv + optind + 1);
	if (changes_collect(&ch, box_dir, "", &err) < 0) {
		boxcmd_paths_free(paths);
		error_prefix(&err, "cannot read box '%s'", argv[optind]);
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	selected = xcalloc(ch.n + 1, sizeof(bool));
	if (changes_select(&ch, paths, (size_t)npaths, selected, argv[optind], &err) < 0) {
		error_print(&err);
		changes_release(&ch);
		boxcmd_paths_free(paths);
		return EXIT_HUTCH_FAILED;
	}
	if (json)
		putchar('[');
	for (size_t i = 0; i < ch.n; i++) {
		if (!selected[i])
			continue;
		if (json) {
			fputs(first ? "\n  " : ",\n  ", stdout);
			boxcmd_print_change_json(stdout, &ch.v[i]);
		} else {
			boxcmd_print_change(stdout, &ch.v[i]);
		}
		first = false;
	}
	if (json)
		fputs(first ? "]\n" : "\n]\n", stdout);
	changes_release(&ch);
	boxcmd_paths_free(paths);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_errno(EXIT_HUTCH_FAILED, "cannot write the diff");
	return 0;
}
