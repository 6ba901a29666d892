#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/boxcmd.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "common/banned.h"

int boxcmd_named(const char *cmd, int argc, char **argv, bool one_arg, char **box_dir)
{
	struct store store;
	struct error err;
	const char *name;

	if (optind >= argc)
		usage_error(cmd, "missing box name");
	if (one_arg && optind + 1 < argc)
		usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
	name = argv[optind];
	if (box_name_check(name, &err) < 0 || store_init(&store, &err) < 0) {
		error_print(&err);
		return -1;
	}
	if (!store_box_exists(&store, name)) {
		store_release(&store);
		error_set(&err, 0, "no box named '%s'", name);
		error_print(&err);
		return -1;
	}
	*box_dir = store_box_dir(&store, name);
	store_release(&store);
	return 0;
}

int boxcmd_lock(const char *box_dir, const char *name, struct boxcmd_lock *lock, struct error *err)
{
	struct stat st;
	int r;

	lock->idle = (struct box_idle_lock){-1, -1};
	lock->dir_fd = open(box_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (lock->dir_fd < 0)
		return errno == ENOENT ? error_set(err, 0, "no box named '%s'", name)
				       : error_set(err, errno, "cannot open '%s'", box_dir);
	/*
	 * Not box_lock_idle() alone: its "running" lock is also what a second
	 * commit would find taken, and would then report the box as running.
	 * Commands that change a box queue up here instead.
	 */
	r = flock(lock->dir_fd, LOCK_EX | LOCK_NB);
	if (r < 0 && errno == EWOULDBLOCK) {
		warn("waiting for another hutch command on box '%s' to finish", name);
		while ((r = flock(lock->dir_fd, LOCK_EX)) < 0 && errno == EINTR)
			;
	}
	if (r < 0 || fstat(lock->dir_fd, &st) < 0) {
		error_set(err, errno, "cannot lock '%s'", box_dir);
		goto fail;
	}
	if (st.st_nlink == 0) { /* removed by the command we waited for */
		error_set(err, 0, "no box named '%s'", name);
		goto fail;
	}
	if (box_lock_idle(box_dir, name, &lock->idle, err) < 0)
		goto fail;
	return 0;
fail:
	close(lock->dir_fd);
	lock->dir_fd = -1;
	return -1;
}

void boxcmd_unlock(struct boxcmd_lock *lock)
{
	box_unlock_idle(&lock->idle);
	if (lock->dir_fd >= 0)
		close(lock->dir_fd);
	lock->dir_fd = -1;
}

void boxcmd_print_path(FILE *f, const char *path)
{
	term_write_string(f, path, TERM_QUOTE_PATH);
}

void boxcmd_print_change(FILE *f, const struct change *c)
{
	static const char letters[] = "AMD";

	fprintf(f, "%c %s", letters[c->type], change_kind_name(c->kind));
	for (unsigned b = 1; b <= CHANGE_CAPS; b <<= 1)
		if (c->flags & b)
			fprintf(f, ",%s", change_flag_name(b));
	fprintf(f, " %llu ", c->size);
	boxcmd_print_path(f, c->path);
	putc('\n', f);
}

void boxcmd_print_change_json(FILE *f, const struct change *c)
{
	fputs("{\"path\":", f);
	json_write_string(f, c->path);
	fprintf(f, ",\"change\":\"%s\",\"kind\":\"%s\",\"size\":%llu", change_type_name(c->type),
		change_kind_name(c->kind), c->size);
	if (c->flags) {
		const char *sep = "";
		fputs(",\"flags\":[", f);
		for (unsigned b = 1; b <= CHANGE_CAPS; b <<= 1) {
			if (c->flags & b) {
				fprintf(f, "%s\"%s\"", sep, change_flag_name(b));
				sep = ",";
			}
		}
		putc(']', f);
	}
	putc('}', f);
}

char **boxcmd_paths(int n, char **args)
{
	_cleanup_free_ char *cwd = NULL;
	char **paths = xcalloc((size_t)n + 1, sizeof(char *));

	for (int i = 0; i < n; i++) {
		if (!args[i][0])
			die(EXIT_HUTCH_FAILED, "an empty path names nothing");
		if (args[i][0] != '/' && !cwd) {
			cwd = get_current_dir_name();
			if (!cwd)
				die_errno(EXIT_HUTCH_FAILED, "cannot find the current directory");
		}
		paths[i] = path_normalize(cwd ? cwd : "/", args[i]);
	}
	return paths;
}

void boxcmd_paths_free(char **paths)
{
	for (char **p = paths; *p; p++)
		free(*p);
	free(paths);
}
