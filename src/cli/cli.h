/*
 * Subcommands: one file per command, dispatched from the table in cli.c.
 * Each returns the process exit status; bad usage exits 125 via usage_error().
 */
#ifndef HUTCH_CLI_CLI_H
#define HUTCH_CLI_CLI_H

struct command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;
};

int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);

struct box_run_opts;
/* Check the box name and store, run opts->argv in the box; an exit status. */
int run_in_box(const struct box_run_opts *opts);
int cmd_list(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_vm(int argc, char **argv);

/* "hutch: <msg>" plus a hint to --help, exit 125. */
_Noreturn void usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int cli_main(int argc, char **argv);

#endif
