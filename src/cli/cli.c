#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/error.h"
#include "common/util.h"
#include "common/banned.h"

#ifndef HUTCH_VERSION
#define HUTCH_VERSION "0.1.0"
#endif

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
	{"run", cmd_run, "run a command in a box"},
	{"shell", cmd_shell, "start an interactive shell in a box"},
	{"list", cmd_list, "list the boxes"},
	{"diff", cmd_diff, "show what a box changed"},
	{"commit", cmd_commit, "apply a box's changes to the host"},
	{"reset", cmd_reset, "discard a box's changes"},
	{"rm", cmd_rm, "delete a box"},
	{"log", cmd_log, "show what a box's programs did"},
	{"vm", cmd_vm, "run a command in a micro-VM"},
	{"help", cmd_help, "show this help"},
	{"version", cmd_version, "print hutch's version"},
};

void usage_error(const char *cmd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "hutch: %s (see 'hutch %s--help')\n", buf, cmd ? cmd : "");
	exit(EXIT_HUTCH_FAILED);
}

static int cmd_help(int argc, char **argv)
{
	printf("usage: hutch <command> [options] [args]\n\n"
	       "hutch runs programs in boxes: they see the real filesystem, but every\n"
	       "file they create, change, delete or rename lands in the box's private\n"
	       "store instead of on the host.\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("\nrun 'hutch <command> --help' for a command's options\n");
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	printf("hutch %s\n", HUTCH_VERSION);
	return 0;
}

int cli_main(int argc, char **argv)
{
	const char *name;

	if (argc < 2)
		usage_error(NULL, "missing command");
	name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		return cmd_help(argc - 1, argv + 1);
	if (!strcmp(name, "--version"))
		return cmd_version(argc - 1, argv + 1);
	if (name[0] == '-')
		usage_error(NULL, "unknown option '%s'", name);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return commands[i].run(argc - 1, argv + 1);
	usage_error(NULL, "unknown command '%s'", name);
}
