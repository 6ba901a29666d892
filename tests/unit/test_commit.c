/*
 * Committing to a scratch "host": the round trip, conflicts, symlinks that
 * must not be followed, partial commits below an opaque dir, leftovers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "box/changes.h"
#include "box/commit.h"
#include "common/util.h"

struct fixture {
	char *root, *host, *box, *upper, *data, *outside;
};

static char *at(const char *dir, const char *rel)
{
	return xasprintf("%s/%s", dir, rel);
}

static void put(const char *dir, const char *rel, const char *content)
{
	char *p = at(dir, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	free(p);
}

static void mkd(const char *dir, const char *rel, mode_t mode)
{
	char *p = at(dir, rel);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void lnk(const char *dir, const char *rel, const char *target)
{
	char *p = at(dir, rel);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static bool whiteout(const char *dir, const char *rel)
{
	char *p = at(dir, rel);
	int r = mknod(p, S_IFCHR | 0, makedev(0, 0));
	free(p);
	return r == 0;
}

static void expect_content(const char *dir, const char *rel, const char *content)
{
	char *p = at(dir, rel);
	struct error err;
	char *s = read_file(p, 1 << 20, &err);
	if (!s)
		fail_msg("%s", err.msg);
	assert_string_equal(s, content);
	free(s);
	free(p);
}

static bool exists(const char *dir, const char *rel)
{
	char *p = at(dir, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

static mode_t mode_of(const char *dir, const char *rel)
{
	char *p = at(dir, rel);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	free(p);
	return st.st_mode;
}

static bool is_empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n == 0;
}

/* Make sure later ctimes differ from earlier birth times. */
static void tick(void)
{
	struct timespec t = {.tv_nsec = 20 * 1000 * 1000};
	nanosleep(&t, NULL);
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char tmpl[] = "/var/tmp/hutch-unit-commit.XXXXXX";
	struct error err;

	assert_non_null(mkdtemp(tmpl));
	fx->root = realpath(tmpl, NULL);
	fx->host = at(fx->root, "host");
	fx->box = at(fx->root, "box");
	fx->upper = xasprintf("%s/fs/data/upper", fx->box);
	fx->data = at(fx->host, "data");
	fx->outside = at(fx->root, "outside");
	assert_int_equal(mkdir_p(fx->upper, 0755, &err), 0);
	assert_int_equal(mkdir_p(fx->data, 0755, &err), 0);
	assert_int_equal(mkdir(fx->outside, 0755), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	struct error err;

	remove_tree(fx->root, &err);
	free(fx->root);
	free(fx->host);
	free(fx->box);
	free(fx->upper);
	free(fx->data);
	free(fx->outside);
	free(fx);
	return 0;
}

/* Collect, select paths (all if n == 0), check; returns the number of problems. */
static size_t check(struct fixture *fx, struct changes *ch, bool **selected, char **paths, size_t n,
		    bool force, struct commit_problems *problems)
{
	struct commit_opts opts = {.box = "A", .force = force, .paths = paths, .npaths = n};
	struct error err;

	if (changes_collect(ch, fx->box, fx->host, &err) < 0)
		fail_msg("%s", err.msg);
	*selected = xcalloc(ch->n + 1, sizeof(bool));
	if (changes_select(ch, paths, n, *selected, "A", &err) < 0 ||
	    commit_check(ch, *selected, &opts, problems, &err) < 0)
		fail_msg("%s", err.msg);
	return problems->n;
}

/* The whole commit; fails the test on a problem. */
static void commit(struct fixture *fx, char **paths, size_t n, bool force)
{
	struct commit_opts opts = {.box = "A", .force = force, .paths = paths, .npaths = n};
	struct commit_problems problems;
	struct changes ch;
	struct error err;
	bool *selected;

	if (check(fx, &ch, &selected, paths, n, force, &problems) > 0)
		fail_msg("%s", problems.v[0]);
	if (commit_apply(&ch, selected, &opts, NULL, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	free(selected);
	changes_release(&ch);
}

static size_t count_changes(struct fixture *fx)
{
	struct changes ch;
	struct error err;
	size_t n;

	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	n = ch.n;
	changes_release(&ch);
	return n;
}

static void every_kind_of_change_reaches_the_host_and_leaves_the_box(void **state)
{
	struct fixture *fx = *state;
	const char *h = fx->data, *u = fx->upper;
	struct timespec t[2] = {{.tv_sec = 1000000000, .tv_nsec = 123456789},
				{.tv_sec = 1234567890, .tv_nsec = 987654321}};
	struct stat st;
	char *p;

	put(h, "mod.txt", "old\n");
	put(h, "del.txt", "bye\n");
	put(h, "old-name.txt", "renamed\n");
	mkd(h, "deldir", 0755);
	mkd(h, "deldir/sub", 0755);
	put(h, "deldir/sub/x", "x\n");
	mkd(h, "replaced", 0755);
	put(h, "replaced/old", "old\n");
	mkd(h, "dir-to-file", 0755);
	put(h, "dir-to-file/y", "y\n");
	lnk(h, "link-to-dir", "/");
	tick();

	if (!whiteout(u, "del.txt")) {
		print_message("skipped: cannot make an overlay whiteout (mknod 0/0: %s)\n",
			      strerror(errno));
		skip();
	}
	put(u, "mod.txt", "new content\n");
	p = at(u, "mod.txt");
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
	assert_int_equal(setxattr(p, "user.note", "kept", 4, 0), 0);
	assert_int_equal(setxattr(p, "user.overlay.origin", "", 0, 0), 0);
	free(p);
	put(u, "new-name.txt", "renamed\n");
	assert_true(whiteout(u, "old-name.txt"));
	assert_true(whiteout(u, "deldir"));
	mkd(u, "replaced", 0700);
	assert_int_equal(setxattr(at(u, "replaced"), "user.overlay.opaque", "y", 1, 0), 0);
	put(u, "replaced/new", "new\n");
	put(u, "dir-to-file", "now a file\n");
	mkd(u, "newdir", 0755);
	put(u, "newdir/f", "f\n");
	/* Read-only: the entries must be added on the host before its mode is set. */
	assert_int_equal(chmod(at(u, "newdir"), 0555), 0);
	lnk(u, "symlink", "../../outside");
	mkd(u, "link-to-dir", 0755);
	put(u, "link-to-dir/inside", "inside\n");
	assert_int_equal(mkfifo(at(u, "fifo"), 0640), 0);

	commit(fx, NULL, 0, false);

	expect_content(h, "mod.txt", "new content\n");
	assert_int_equal(stat(at(h, "mod.txt"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_mtim.tv_sec, t[1].tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, t[1].tv_nsec);
	{
		char v[8];
		char *hp = at(h, "mod.txt");
		assert_int_equal(getxattr(hp, "user.note", v, sizeof(v)), 4);
		assert_memory_equal(v, "kept", 4);
		assert_int_equal(getxattr(hp, "user.overlay.origin", v, sizeof(v)), -1);
		free(hp);
	}
	assert_false(exists(h, "del.txt"));
	assert_false(exists(h, "old-name.txt"));
	expect_content(h, "new-name.txt", "renamed\n");
	assert_false(exists(h, "deldir"));
	assert_false(exists(h, "replaced/old"));
	expect_content(h, "replaced/new", "new\n");
	assert_int_equal(mode_of(h, "replaced") & 07777, 0700);
	expect_content(h, "dir-to-file", "now a file\n");
	expect_content(h, "newdir/f", "f\n");
	assert_int_equal(mode_of(h, "newdir") & 07777, 0555);
	assert_true(S_ISLNK(mode_of(h, "symlink")));
	{
		char buf[64];
		ssize_t n = readlink(at(h, "symlink"), buf, sizeof(buf));
		assert_int_equal(n, 13);
		assert_memory_equal(buf, "../../outside", 13);
	}
	assert_true(S_ISDIR(mode_of(h, "link-to-dir")));
	expect_content(h, "link-to-dir/inside", "inside\n");
	assert_false(exists("/", "inside"));
	assert_true(S_ISFIFO(mode_of(h, "fifo")));
	assert_true(is_empty_dir(fx->outside));

	assert_int_equal(count_changes(fx), 0);
	assert_true(is_empty_dir(fx->upper));
}

static void a_host_change_after_the_copy_is_a_conflict_until_forced(void **state)
{
	struct fixture *fx = *state;
	struct commit_problems problems;
	struct changes ch;
	bool *selected;

	put(fx->data, "doc.txt", "v1\n");
	put(fx->upper, "doc.txt", "box\n");
	put(fx->upper, "new.txt", "box\n");
	tick();
	put(fx->data, "doc.txt", "host v2\n");
	put(fx->data, "new.txt", "host made one too\n");

	assert_int_equal(check(fx, &ch, &selected, NULL, 0, false, &problems), 2);
	assert_string_equal(problems.v[0], "conflict: '/data/doc.txt' changed on the host after "
					   "box 'A' copied it (use --force to overwrite)");
	assert_string_equal(problems.v[1], "conflict: '/data/new.txt' changed on the host after "
					   "box 'A' copied it (use --force to overwrite)");
	commit_problems_release(&problems);
	changes_release(&ch);
	free(selected);
	expect_content(fx->data, "doc.txt", "host v2\n");

	commit(fx, NULL, 0, true);
	expect_content(fx->data, "doc.txt", "box\n");
	expect_content(fx->data, "new.txt", "box\n");
}

static void a_host_that_already_holds_the_box_content_is_no_conflict(void **state)
{
	struct fixture *fx = *state;

	put(fx->data, "doc.txt", "v1\n");
	put(fx->upper, "doc.txt", "same\n");
	tick();
	put(fx->data, "doc.txt", "same\n"); /* later mtime and ctime, same bytes */
	assert_int_equal(count_changes(fx), 1);
	commit(fx, NULL, 0, false);
	assert_int_equal(count_changes(fx), 0);
}

static void a_symlink_swapped_into_the_host_is_never_written_through(void **state)
{
	struct fixture *fx = *state;
	struct commit_opts opts = {.box = "A"};
	struct commit_problems problems;
	struct changes ch;
	struct error err;
	bool *selected;
	char *sub = at(fx->data, "sub");

	mkd(fx->data, "sub", 0755);
	tick();
	mkd(fx->upper, "sub", 0755);
	put(fx->upper, "sub/payload", "written\n");
	assert_int_equal(check(fx, &ch, &selected, NULL, 0, false, &problems), 0);

	/* Between the check and the commit, the host dir becomes a symlink. */
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(symlink(fx->outside, sub), 0);
	assert_int_equal(commit_apply(&ch, selected, &opts, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "symlink"));
	assert_true(is_empty_dir(fx->outside));
	changes_release(&ch);
	free(selected);

	/* Seen before the commit, it is a conflict (the host changed it). */
	assert_int_equal(check(fx, &ch, &selected, NULL, 0, false, &problems), 1);
	assert_non_null(strstr(problems.v[0], "conflict: '/data/sub'"));
	commit_problems_release(&problems);
	changes_release(&ch);
	free(selected);
	/* Forced, the symlink is replaced by the box's directory. */
	commit(fx, NULL, 0, true);
	assert_true(is_empty_dir(fx->outside));
	assert_true(S_ISDIR(mode_of(fx->data, "sub")));
	expect_content(fx->data, "sub/payload", "written\n");
	free(sub);
}

static void a_host_root_reached_through_a_symlink_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct commit_problems problems;
	struct changes ch;
	bool *selected;

	assert_int_equal(rmdir(fx->data), 0);
	assert_int_equal(symlink(fx->outside, fx->data), 0);
	put(fx->upper, "f", "x\n");
	assert_int_equal(check(fx, &ch, &selected, NULL, 0, true, &problems), 1);
	assert_non_null(strstr(problems.v[0], "symlink"));
	commit_problems_release(&problems);
	changes_release(&ch);
	free(selected);
	assert_true(is_empty_dir(fx->outside));
}

static void a_partial_commit_below_an_opaque_dir_keeps_the_box_view(void **state)
{
	struct fixture *fx = *state;
	char *ud = at(fx->upper, "d");
	char *sel_new[] = {"/data/d/new"};
	char *sel_all[] = {"/data/d"};
	char v[4];

	mkd(fx->data, "d", 0755);
	put(fx->data, "d/gone1", "1\n");
	put(fx->data, "d/gone2", "2\n");
	tick();
	mkd(fx->upper, "d", 0755);
	assert_int_equal(setxattr(ud, "user.overlay.opaque", "y", 1, 0), 0);
	put(fx->upper, "d/new", "new\n");
	assert_int_equal(count_changes(fx), 3);

	/* Only the new file: d stays opaque, and the box keeps its copy. */
	commit(fx, sel_new, 1, false);
	expect_content(fx->data, "d/new", "new\n");
	assert_true(exists(fx->upper, "d/new"));
	assert_int_equal(getxattr(ud, "user.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(count_changes(fx), 2); /* the two deletions */

	/* The rest: the dir is no longer needed in the box at all. */
	commit(fx, sel_all, 1, false);
	assert_false(exists(fx->data, "d/gone1"));
	assert_false(exists(fx->data, "d/gone2"));
	assert_false(exists(fx->upper, "d"));
	assert_int_equal(count_changes(fx), 0);
	free(ud);
}

static void leftovers_of_a_killed_commit_are_cleaned_and_ignored(void **state)
{
	struct fixture *fx = *state;

	put(fx->data, ".hutch-commit-abcdef123456", "half a file");
	mkd(fx->data, ".hutch-commit-0123456789ab", 0755);
	put(fx->data, ".hutch-commit-0123456789ab/x", "half a tree");
	put(fx->data, ".hutch-commit-user-file", "not ours: wrong form");
	put(fx->upper, "f", "x\n");
	commit(fx, NULL, 0, false);
	assert_false(exists(fx->data, ".hutch-commit-abcdef123456"));
	assert_false(exists(fx->data, ".hutch-commit-0123456789ab"));
	assert_true(exists(fx->data, ".hutch-commit-user-file"));
	expect_content(fx->data, "f", "x\n");
}

static void a_new_file_below_a_new_dir_brings_the_dir_along(void **state)
{
	struct fixture *fx = *state;
	char *sel[] = {"/data/a/b/c"};

	mkd(fx->upper, "a", 0750);
	mkd(fx->upper, "a/b", 0755);
	put(fx->upper, "a/b/c", "c\n");
	put(fx->upper, "other", "o\n");
	commit(fx, sel, 1, false);
	expect_content(fx->data, "a/b/c", "c\n");
	assert_int_equal(mode_of(fx->data, "a") & 07777, 0750);
	assert_false(exists(fx->data, "other"));
	assert_false(exists(fx->upper, "a"));
	assert_true(exists(fx->upper, "other"));
}

/* A box's hard link would share the inode with the host: such a file is copied, not moved. */
static void a_file_the_box_hard_linked_is_copied_not_moved(void **state)
{
	struct fixture *fx = *state;
	char *sel[] = {"/data/a"};
	char *a = at(fx->upper, "a"), *b = at(fx->upper, "b"), *ha = at(fx->data, "a");
	struct stat ua, hst;

	put(fx->upper, "a", "shared\n");
	assert_int_equal(link(a, b), 0);
	put(fx->upper, "alone", "alone\n");
	commit(fx, sel, 1, false);
	expect_content(fx->data, "a", "shared\n");
	assert_int_equal(stat(b, &ua), 0);
	assert_int_equal(stat(ha, &hst), 0);
	assert_false(ua.st_ino == hst.st_ino && ua.st_dev == hst.st_dev);
	/* The box writing its other name later leaves the host's file alone. */
	put(fx->upper, "b", "changed in the box\n");
	expect_content(fx->data, "a", "shared\n");
	/* A file of one link is moved: the same inode, nothing copied. */
	assert_int_equal(stat(at(fx->upper, "alone"), &ua), 0);
	commit(fx, NULL, 0, false);
	assert_int_equal(stat(at(fx->data, "alone"), &hst), 0);
	assert_int_equal(ua.st_ino, hst.st_ino);
	expect_content(fx->data, "alone", "alone\n");
	free(a);
	free(b);
	free(ha);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(every_kind_of_change_reaches_the_host_and_leaves_the_box),
	    T(a_host_change_after_the_copy_is_a_conflict_until_forced),
	    T(a_host_that_already_holds_the_box_content_is_no_conflict),
	    T(a_symlink_swapped_into_the_host_is_never_written_through),
	    T(a_host_root_reached_through_a_symlink_is_refused),
	    T(a_partial_commit_below_an_opaque_dir_keeps_the_box_view),
	    T(leftovers_of_a_killed_commit_are_cleaned_and_ignored),
	    T(a_new_file_below_a_new_dir_brings_the_dir_along),
	    T(a_file_the_box_hard_linked_is_copied_not_moved),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
