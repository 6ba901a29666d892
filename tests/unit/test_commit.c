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

#include "fixture.h"

static int setup(void **state)
{
	struct box_fixture *fx;

	fx_setup(state);
	fx = *state;
	assert_int_equal(mkdir(fx->data, 0755), 0);
	return 0;
}

/* Collect, select paths (all if n == 0), check; returns the number of problems. */
static size_t check(struct box_fixture *fx, struct changes *ch, bool **selected, char **paths,
		    size_t n, bool force, struct commit_problems *problems)
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
static void commit(struct box_fixture *fx, char **paths, size_t n, bool force)
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

static size_t count_changes(struct box_fixture *fx)
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
	struct box_fixture *fx = *state;
	const char *h = fx->data, *u = fx->upper;
	struct timespec t[2] = {{.tv_sec = 1000000000, .tv_nsec = 123456789},
				{.tv_sec = 1234567890, .tv_nsec = 987654321}};
	struct stat st;
	char *p;

	fx_put(h, "mod.txt", "old\n");
	fx_put(h, "del.txt", "bye\n");
	fx_put(h, "old-name.txt", "renamed\n");
	fx_mkdir(h, "deldir", 0755);
	fx_mkdir(h, "deldir/sub", 0755);
	fx_put(h, "deldir/sub/x", "x\n");
	fx_mkdir(h, "replaced", 0755);
	fx_put(h, "replaced/old", "old\n");
	fx_mkdir(h, "dir-to-file", 0755);
	fx_put(h, "dir-to-file/y", "y\n");
	fx_symlink(h, "link-to-dir", "/");
	fx_tick();

	if (!fx_whiteout(u, "del.txt")) {
		print_message("skipped: cannot make an overlay whiteout (mknod 0/0: %s)\n",
			      strerror(errno));
		skip();
	}
	fx_put(u, "mod.txt", "new content\n");
	p = fx_path(u, "mod.txt");
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
	assert_int_equal(setxattr(p, "user.note", "kept", 4, 0), 0);
	assert_int_equal(setxattr(p, "user.overlay.origin", "", 0, 0), 0);
	free(p);
	fx_put(u, "new-name.txt", "renamed\n");
	assert_true(fx_whiteout(u, "old-name.txt"));
	assert_true(fx_whiteout(u, "deldir"));
	fx_mkdir(u, "replaced", 0700);
	assert_int_equal(setxattr(fx_path(u, "replaced"), "user.overlay.opaque", "y", 1, 0), 0);
	fx_put(u, "replaced/new", "new\n");
	fx_put(u, "dir-to-file", "now a file\n");
	fx_mkdir(u, "newdir", 0755);
	fx_put(u, "newdir/f", "f\n");
	/* Read-only: the entries must be added on the host before its mode is set. */
	assert_int_equal(chmod(fx_path(u, "newdir"), 0555), 0);
	fx_symlink(u, "symlink", "../../outside");
	fx_mkdir(u, "link-to-dir", 0755);
	fx_put(u, "link-to-dir/inside", "inside\n");
	assert_int_equal(mkfifo(fx_path(u, "fifo"), 0640), 0);

	commit(fx, NULL, 0, false);

	fx_expect_content(h, "mod.txt", "new content\n");
	assert_int_equal(stat(fx_path(h, "mod.txt"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_mtim.tv_sec, t[1].tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, t[1].tv_nsec);
	{
		char v[8];
		char *hp = fx_path(h, "mod.txt");
		assert_int_equal(getxattr(hp, "user.note", v, sizeof(v)), 4);
		assert_memory_equal(v, "kept", 4);
		assert_int_equal(getxattr(hp, "user.overlay.origin", v, sizeof(v)), -1);
		free(hp);
	}
	assert_false(fx_exists(h, "del.txt"));
	assert_false(fx_exists(h, "old-name.txt"));
	fx_expect_content(h, "new-name.txt", "renamed\n");
	assert_false(fx_exists(h, "deldir"));
	assert_false(fx_exists(h, "replaced/old"));
	fx_expect_content(h, "replaced/new", "new\n");
	assert_int_equal(fx_mode_of(h, "replaced") & 07777, 0700);
	fx_expect_content(h, "dir-to-file", "now a file\n");
	fx_expect_content(h, "newdir/f", "f\n");
	assert_int_equal(fx_mode_of(h, "newdir") & 07777, 0555);
	assert_true(S_ISLNK(fx_mode_of(h, "symlink")));
	{
		char buf[64];
		ssize_t n = readlink(fx_path(h, "symlink"), buf, sizeof(buf));
		assert_int_equal(n, 13);
		assert_memory_equal(buf, "../../outside", 13);
	}
	assert_true(S_ISDIR(fx_mode_of(h, "link-to-dir")));
	fx_expect_content(h, "link-to-dir/inside", "inside\n");
	assert_false(fx_exists("/", "inside"));
	assert_true(S_ISFIFO(fx_mode_of(h, "fifo")));
	assert_true(fx_is_empty_dir(fx->outside));

	assert_int_equal(count_changes(fx), 0);
	assert_true(fx_is_empty_dir(fx->upper));
}

static void a_host_change_after_the_copy_is_a_conflict_until_forced(void **state)
{
	struct box_fixture *fx = *state;
	struct commit_problems problems;
	struct changes ch;
	bool *selected;

	fx_put(fx->data, "doc.txt", "v1\n");
	fx_put(fx->upper, "doc.txt", "box\n");
	fx_put(fx->upper, "new.txt", "box\n");
	fx_tick();
	fx_put(fx->data, "doc.txt", "host v2\n");
	fx_put(fx->data, "new.txt", "host made one too\n");

	assert_int_equal(check(fx, &ch, &selected, NULL, 0, false, &problems), 2);
	assert_string_equal(problems.v[0], "conflict: '/data/doc.txt' changed on the host after "
					   "box 'A' copied it (use --force to overwrite)");
	assert_string_equal(problems.v[1], "conflict: '/data/new.txt' changed on the host after "
					   "box 'A' copied it (use --force to overwrite)");
	commit_problems_release(&problems);
	changes_release(&ch);
	free(selected);
	fx_expect_content(fx->data, "doc.txt", "host v2\n");

	commit(fx, NULL, 0, true);
	fx_expect_content(fx->data, "doc.txt", "box\n");
	fx_expect_content(fx->data, "new.txt", "box\n");
}

static void a_host_that_already_holds_the_box_content_is_no_conflict(void **state)
{
	struct box_fixture *fx = *state;

	fx_put(fx->data, "doc.txt", "v1\n");
	fx_put(fx->upper, "doc.txt", "same\n");
	fx_tick();
	fx_put(fx->data, "doc.txt", "same\n"); /* later mtime and ctime, same bytes */
	assert_int_equal(count_changes(fx), 1);
	commit(fx, NULL, 0, false);
	assert_int_equal(count_changes(fx), 0);
}

static void a_symlink_swapped_into_the_host_is_never_written_through(void **state)
{
	struct box_fixture *fx = *state;
	struct commit_opts opts = {.box = "A"};
	struct commit_problems problems;
	struct changes ch;
	struct error err;
	bool *selected;
	char *sub = fx_path(fx->data, "sub");

	fx_mkdir(fx->data, "sub", 0755);
	fx_tick();
	fx_mkdir(fx->upper, "sub", 0755);
	fx_put(fx->upper, "sub/payload", "written\n");
	assert_int_equal(check(fx, &ch, &selected, NULL, 0, false, &problems), 0);

	/* Between the check and the commit, the host dir becomes a symlink. */
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(symlink(fx->outside, sub), 0);
	assert_int_equal(commit_apply(&ch, selected, &opts, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "symlink"));
	assert_true(fx_is_empty_dir(fx->outside));
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
	assert_true(fx_is_empty_dir(fx->outside));
	assert_true(S_ISDIR(fx_mode_of(fx->data, "sub")));
	fx_expect_content(fx->data, "sub/payload", "written\n");
	free(sub);
}

static void a_host_root_reached_through_a_symlink_is_refused(void **state)
{
	struct box_fixture *fx = *state;
	struct commit_problems problems;
	struct changes ch;
	bool *selected;

	assert_int_equal(rmdir(fx->data), 0);
	assert_int_equal(symlink(fx->outside, fx->data), 0);
	fx_put(fx->upper, "f", "x\n");
	assert_int_equal(check(fx, &ch, &selected, NULL, 0, true, &problems), 1);
	assert_non_null(strstr(problems.v[0], "symlink"));
	commit_problems_release(&problems);
	changes_release(&ch);
	free(selected);
	assert_true(fx_is_empty_dir(fx->outside));
}

static void a_partial_commit_below_an_opaque_dir_keeps_the_box_view(void **state)
{
	struct box_fixture *fx = *state;
	char *ud = fx_path(fx->upper, "d");
	char *sel_new[] = {"/data/d/new"};
	char *sel_all[] = {"/data/d"};
	char v[4];

	fx_mkdir(fx->data, "d", 0755);
	fx_put(fx->data, "d/gone1", "1\n");
	fx_put(fx->data, "d/gone2", "2\n");
	fx_tick();
	fx_mkdir(fx->upper, "d", 0755);
	assert_int_equal(setxattr(ud, "user.overlay.opaque", "y", 1, 0), 0);
	fx_put(fx->upper, "d/new", "new\n");
	assert_int_equal(count_changes(fx), 3);

	/* Only the new file: d stays opaque, and the box keeps its copy. */
	commit(fx, sel_new, 1, false);
	fx_expect_content(fx->data, "d/new", "new\n");
	assert_true(fx_exists(fx->upper, "d/new"));
	assert_int_equal(getxattr(ud, "user.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(count_changes(fx), 2); /* the two deletions */

	/* The rest: the dir is no longer needed in the box at all. */
	commit(fx, sel_all, 1, false);
	assert_false(fx_exists(fx->data, "d/gone1"));
	assert_false(fx_exists(fx->data, "d/gone2"));
	assert_false(fx_exists(fx->upper, "d"));
	assert_int_equal(count_changes(fx), 0);
	free(ud);
}

static void leftovers_of_a_killed_commit_are_cleaned_and_ignored(void **state)
{
	struct box_fixture *fx = *state;

	fx_put(fx->data, ".hutch-commit-abcdef123456", "half a file");
	fx_mkdir(fx->data, ".hutch-commit-0123456789ab", 0755);
	fx_put(fx->data, ".hutch-commit-0123456789ab/x", "half a tree");
	fx_put(fx->data, ".hutch-commit-user-file", "not ours: wrong form");
	fx_put(fx->upper, "f", "x\n");
	commit(fx, NULL, 0, false);
	assert_false(fx_exists(fx->data, ".hutch-commit-abcdef123456"));
	assert_false(fx_exists(fx->data, ".hutch-commit-0123456789ab"));
	assert_true(fx_exists(fx->data, ".hutch-commit-user-file"));
	fx_expect_content(fx->data, "f", "x\n");
}

static void a_new_file_below_a_new_dir_brings_the_dir_along(void **state)
{
	struct box_fixture *fx = *state;
	char *sel[] = {"/data/a/b/c"};

	fx_mkdir(fx->upper, "a", 0750);
	fx_mkdir(fx->upper, "a/b", 0755);
	fx_put(fx->upper, "a/b/c", "c\n");
	fx_put(fx->upper, "other", "o\n");
	commit(fx, sel, 1, false);
	fx_expect_content(fx->data, "a/b/c", "c\n");
	assert_int_equal(fx_mode_of(fx->data, "a") & 07777, 0750);
	assert_false(fx_exists(fx->data, "other"));
	assert_false(fx_exists(fx->upper, "a"));
	assert_true(fx_exists(fx->upper, "other"));
}

/* A box's hard link would share the inode with the host: such a file is copied, not moved. */
static void a_file_the_box_hard_linked_is_copied_not_moved(void **state)
{
	struct box_fixture *fx = *state;
	char *sel[] = {"/data/a"};
	char *a = fx_path(fx->upper, "a"), *b = fx_path(fx->upper, "b"),
	     *ha = fx_path(fx->data, "a");
	struct stat ua, hst;

	fx_put(fx->upper, "a", "shared\n");
	assert_int_equal(link(a, b), 0);
	fx_put(fx->upper, "alone", "alone\n");
	commit(fx, sel, 1, false);
	fx_expect_content(fx->data, "a", "shared\n");
	assert_int_equal(stat(b, &ua), 0);
	assert_int_equal(stat(ha, &hst), 0);
	assert_false(ua.st_ino == hst.st_ino && ua.st_dev == hst.st_dev);
	/* The box writing its other name later leaves the host's file alone. */
	fx_put(fx->upper, "b", "changed in the box\n");
	fx_expect_content(fx->data, "a", "shared\n");
	/* A file of one link is moved: the same inode, nothing copied. */
	assert_int_equal(stat(fx_path(fx->upper, "alone"), &ua), 0);
	commit(fx, NULL, 0, false);
	assert_int_equal(stat(fx_path(fx->data, "alone"), &hst), 0);
	assert_int_equal(ua.st_ino, hst.st_ino);
	fx_expect_content(fx->data, "alone", "alone\n");
	free(a);
	free(b);
	free(ha);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)
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
