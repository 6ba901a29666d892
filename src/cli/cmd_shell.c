#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "box/box.h"
#include "box/store.h"
#include "cli/cli.h"
#include "common/banned.h"

static void shell_help(void)
{
	printf("usage: hutch shell [--root] [BOX]\n\n"
	       "Start your $SHELL (or /bin/sh) in BOX (default: %s), interactively.\n\n"
	       "  -r, --root       be uid 0 inside the box\n"
	       "  -h, --help       show this help\n",
	       BOX_DEFAULT_NAME);
}

int cmd_shell(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"root", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct box_run_opts opts = {.name = BOX_DEFAULT_NAME};
	const char *shell = getenv("SHELL");
	char *shell_argv[2];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":rh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			opts.as_root = true;
			break;
		case 'h':
			shell_help();
			return 0;
		default:
			usage_error("shell ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		opts.name = argv[optind++];
	if (optind < argc)
		usage_error("shell ", "unexpected argument '%s'", argv[optind]);
	shell_argv[0] = (char *)(shell && shell[0] == '/' ? shell : "/bin/sh");
	shell_argv[1] = NULL;
	opts.argv = shell_argv;
	return run_in_box(&opts);
}
