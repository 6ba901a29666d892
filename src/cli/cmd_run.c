#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box/box.h"
#include "box/store.h"
#include "cli/cli.h"
#include "common/banned.h"

static void run_help(void)
{
	printf("usage: hutch run [--box NAME] [--root] [--] COMMAND [ARG...]\n\n"
	       "Run COMMAND in a box: it sees the host's files, but everything it\n"
	       "creates, changes, deletes or renames lands in the box's store.\n\n"
	       "  -b, --box NAME   the box to use (default: %s); made on first use\n"
	       "  -r, --root       be uid 0 inside the box (for installers)\n"
	       "  -h, --help       show this help\n\n"
	       "exit status: the command's; 128+N if signal N killed it; 125 if hutch\n"
	       "failed; 126 if the command cannot be executed; 127 if it is not found\n",
	       BOX_DEFAULT_NAME);
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"box", required_argument, NULL, 'b'},
		{"root", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct box_run_opts opts = {.name = BOX_DEFAULT_NAME};
	int c;

	opterr = 0;
	/* '+': options end at the command, so its own options stay its own. */
	while ((c = getopt_long(argc, argv, "+:b:rh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			opts.name = optarg;
			break;
		case 'r':
			opts.as_root = true;
			break;
		case 'h':
			run_help();
			return 0;
		case ':':
			usage_error("run ", "option '%s' needs a value", argv[optind - 1]);
		default:
			usage_error("run ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		usage_error("run ", "missing command to run");
	opts.argv = argv + optind;
	return run_in_box(&opts);
}

int run_in_box(const struct box_run_opts *opts)
{
	struct store store;
	struct error err;
	int status;

	if (box_name_check(opts->name, &err) < 0 || store_init(&store, &err) < 0) {
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	/* A box that exists was made on a filesystem that passed the check. */
	if ((!store_box_exists(&store, opts->name) && store_check_fs(&store, &err) < 0) ||
	    store_create(&store, &err) < 0) {
		error_print(&err);
		store_release(&store);
		return EXIT_HUTCH_FAILED;
	}
	status = box_run(&store, opts, &err);
	if (status < 0) {
		error_print(&err);
		status = EXIT_HUTCH_FAILED;
	}
	store_release(&store);
	return status;
}
