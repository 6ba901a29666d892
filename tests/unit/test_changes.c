/*
 * What a box changed: a hand-built upper dir (whiteouts, an opaque dir,
 * copy-ups) read against a scratch folder standing in for the host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "box/changes.h"
#include "box/commit.h"
#include "common/json.h"
#include "common/util.h"

#include "fixture.h"

/* A copy-up: same content, mode and mtime as the host's file. */
static void copy_up(struct box_fixture *fx, const char *rel)
{
	char *dst = fx_path(fx->upper, rel);
	char *src = fx_path(fx->data, rel);
	char *content = fx_read(fx->data, rel);
	struct stat st;
	struct timespec t[2];

	assert_int_equal(stat(src, &st), 0);
	fx_put(fx->upper, rel, content);
	assert_int_equal(chmod(dst, st.st_mode & 07777), 0);
	t[0] = st.st_atim;
	t[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, dst, t, 0), 0);
	free(content);
	free(src);
	free(dst);
}
static void expect_change(const struct changes *ch, size_t i, const char *path,
			  enum change_type type, enum change_kind kind, unsigned long long size)
{
	assert_true(i < ch->n);
	assert_string_equal(ch->v[i].path, path);
	assert_int_equal(ch->v[i].type, type);
	assert_int_equal(ch->v[i].kind, kind);
	assert_int_equal(ch->v[i].size, size);
}

/* A host tree under /data and a box that changed it in every way. */
static bool build_box(struct box_fixture *fx)
{
	const char *h, *u = fx->upper;
	char *hd = xasprintf("%s/data", fx->host);

	h = hd;
	fx_mkdir(fx->host, "data", 0755);
	fx_put(h, "keep.txt", "keep\n");
	fx_put(h, "mod.txt", "old\n");
	fx_put(h, "same.txt", "same\n");
	fx_put(h, "mode.txt", "mode\n");
	fx_put(h, "del.txt", "delete me\n");
	fx_mkdir(h, "deldir", 0755);
	fx_put(h, "deldir/x", "x\n");
	fx_mkdir(h, "opq", 0755);
	fx_put(h, "opq/h1", "h1\n");
	fx_put(h, "opq/h2", "h2\n");
	fx_mkdir(h, "opq/keepdir", 0755);
	fx_put(h, "opq/keepdir/inner", "inner\n");
	fx_mkdir(h, "sub", 0755);
	fx_put(h, "sub/s1", "s1\n");
	fx_put(h, "file-to-dir", "was a file\n");
	fx_symlink(h, "ln", "keep.txt");

	if (!fx_whiteout(u, "del.txt")) {
		free(hd);
		return false;
	}
	fx_put(u, "mod.txt", "new content\n");
	copy_up(fx, "same.txt");
	copy_up(fx, "mode.txt");
	{
		char *p = xasprintf("%s/mode.txt", u);
		assert_int_equal(chmod(p, 0600), 0);
		free(p);
	}
	fx_put(u, "new.txt", "brand new\n");
	assert_true(fx_whiteout(u, "deldir"));
	assert_true(fx_whiteout(u, "ghost")); /* nothing on the host: no change */
	fx_mkdir(u, "opq", 0755);
	fx_opaque(u, "opq");
	fx_put(u, "opq/h1", "h1 replaced\n");
	fx_mkdir(u, "opq/keepdir", 0755); /* hides its host entries too */
	fx_mkdir(u, "sub", 0755);	  /* a copy-up: same mode, no change */
	fx_put(u, "sub/s2", "s2\n");
	fx_mkdir(u, "newdir", 0750);
	fx_mkdir(u, "newdir/deeper", 0700);
	fx_put(u, "newdir/deeper/f", "f\n");
	fx_mkdir(u, "file-to-dir", 0755);
	fx_put(u, "file-to-dir/inside", "in\n");
	fx_symlink(u, "ln", "/etc");
	free(hd);
	return true;
}

static void every_kind_of_change_is_classified_in_byte_order(void **state)
{
	struct box_fixture *fx = *state;
	struct changes ch;
	struct error err;
	size_t i = 0;

	if (!build_box(fx)) {
		print_message("skipped: cannot make an overlay whiteout (mknod 0/0: %s); "
			      "it needs Linux >= 5.8 or CAP_MKNOD\n",
			      strerror(errno));
		skip();
	}
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	expect_change(&ch, i++, "/data/del.txt", CHANGE_DELETED, KIND_FILE, 10);
	expect_change(&ch, i++, "/data/deldir", CHANGE_DELETED, KIND_DIR, 0);
	expect_change(&ch, i++, "/data/file-to-dir", CHANGE_MODIFIED, KIND_DIR, 0);
	expect_change(&ch, i++, "/data/file-to-dir/inside", CHANGE_ADDED, KIND_FILE, 3);
	expect_change(&ch, i++, "/data/ln", CHANGE_MODIFIED, KIND_SYMLINK, 4);
	expect_change(&ch, i++, "/data/mod.txt", CHANGE_MODIFIED, KIND_FILE, 12);
	expect_change(&ch, i++, "/data/mode.txt", CHANGE_MODIFIED, KIND_FILE, 5);
	expect_change(&ch, i++, "/data/new.txt", CHANGE_ADDED, KIND_FILE, 10);
	expect_change(&ch, i++, "/data/newdir", CHANGE_ADDED, KIND_DIR, 0);
	expect_change(&ch, i++, "/data/newdir/deeper", CHANGE_ADDED, KIND_DIR, 0);
	expect_change(&ch, i++, "/data/newdir/deeper/f", CHANGE_ADDED, KIND_FILE, 2);
	expect_change(&ch, i++, "/data/opq/h1", CHANGE_MODIFIED, KIND_FILE, 12);
	expect_change(&ch, i++, "/data/opq/h2", CHANGE_DELETED, KIND_FILE, 3);
	expect_change(&ch, i++, "/data/opq/keepdir/inner", CHANGE_DELETED, KIND_FILE, 6);
	expect_change(&ch, i++, "/data/sub/s2", CHANGE_ADDED, KIND_FILE, 3);
	assert_int_equal(ch.n, i);

	/* What commit needs to know. */
	assert_string_equal(ch.v[12].opaque_rel, "opq");
	assert_string_equal(ch.v[13].opaque_rel, "opq");
	assert_null(ch.v[0].opaque_rel);
	assert_string_equal(ch.v[12].rel, "opq/h2");
	assert_int_equal(ch.v[8].upper_mode & 07777, 0750);
	assert_true(S_ISREG(ch.v[2].host_mode));
	/* No changes, but commit clears them from the box. */
	assert_int_equal(ch.nstale, 2);
	for (size_t j = 0; j < ch.nstale; j++)
		assert_true(!strcmp(ch.stale[j].path, "/data/ghost") ||
			    !strcmp(ch.stale[j].path, "/data/same.txt"));
	changes_release(&ch);
}

static void commit_temp_names_are_exactly_those_commit_makes(void **state)
{
	static const char *const ours[] = {".hutch-commit-abcdef123456",
					   ".hutch-commit-000000000000",
					   ".hutch-commit-zzzzzzzzzzzz"};
	static const char *const users[] = {
	    ".hutch-commit-notes",	   ".hutch-commit-",
	    ".hutch-commit-abcdef12345",   ".hutch-commit-abcdef1234567",
	    ".hutch-commit-ABCDEF123456",  ".hutch-commit-abcdef12345-",
	    "x.hutch-commit-abcdef123456", ".hutch-commit-abcdef12345.",
	    ".hutch-commi-abcdef123456",
	};

	for (size_t i = 0; i < sizeof(ours) / sizeof(*ours); i++)
		assert_true(commit_is_temp_name(ours[i]));
	for (size_t i = 0; i < sizeof(users) / sizeof(*users); i++)
		if (commit_is_temp_name(users[i]))
			fail_msg("'%s' taken for a temporary name of commit", users[i]);
}

/* Below a dir the box replaced, a user's file named like commit's is a deletion; commit's own is
 * not. */
static void only_commit_leftovers_are_hidden_from_the_diff(void **state)
{
	struct box_fixture *fx = *state;
	char *d = xasprintf("%s/data/d", fx->host);
	struct changes ch;
	struct error err;

	assert_int_equal(mkdir_p(d, 0755, &err), 0);
	fx_put(d, ".hutch-commit-notes", "the user's\n");
	fx_put(d, ".hutch-commit-abcdef123456", "half a file\n");
	fx_mkdir(fx->upper, "d", 0755);
	fx_opaque(fx->upper, "d");
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	assert_int_equal(ch.n, 1);
	expect_change(&ch, 0, "/data/d/.hutch-commit-notes", CHANGE_DELETED, KIND_FILE, 11);
	changes_release(&ch);
	free(d);
}

static void sort_order_is_bytewise_with_parents_first(void **state)
{
	struct box_fixture *fx = *state;
	static const char *const names[] = {"a.txt", "a", "a-b", "B", "\xc3\xa9", "a/b"};
	struct changes ch;
	struct error err;

	fx_mkdir(fx->host, "data", 0755);
	for (size_t i = 0; i < 5; i++) {
		if (!strcmp(names[i], "a"))
			fx_mkdir(fx->upper, names[i], 0755);
		else
			fx_put(fx->upper, names[i], "x");
	}
	fx_put(fx->upper, "a/b", "x");
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	assert_int_equal(ch.n, 6);
	assert_string_equal(ch.v[0].path, "/data/B");
	assert_string_equal(ch.v[1].path, "/data/a");
	assert_string_equal(ch.v[2].path, "/data/a-b");
	assert_string_equal(ch.v[3].path, "/data/a.txt");
	assert_string_equal(ch.v[4].path, "/data/a/b");
	assert_string_equal(ch.v[5].path, "/data/\xc3\xa9");
	assert_int_equal(changes_find(&ch, "/data/a.txt"), 3);
	assert_int_equal(changes_find(&ch, "/data/zzz"), -1);
	changes_release(&ch);
}

static void a_missing_host_dir_makes_everything_added(void **state)
{
	struct box_fixture *fx = *state;
	struct changes ch;
	struct error err;

	/* No host/data at all. */
	fx_put(fx->upper, "f", "x");
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	assert_int_equal(ch.n, 1);
	expect_change(&ch, 0, "/data/f", CHANGE_ADDED, KIND_FILE, 1);
	changes_release(&ch);
}

static void selection_matches_paths_at_or_below(void **state)
{
	struct box_fixture *fx = *state;
	char *sel1[] = {"/data/d"};
	char *sel2[] = {"/data/d/x"};
	char *sel3[] = {"/data/d2"};
	bool selected[3];
	struct changes ch;
	struct error err;

	fx_mkdir(fx->host, "data", 0755);
	fx_mkdir(fx->upper, "d", 0755);
	fx_put(fx->upper, "d/x", "x");
	fx_put(fx->upper, "dd", "x");
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	assert_int_equal(ch.n, 3);
	assert_int_equal(changes_select(&ch, sel1, 1, selected, "A", &err), 0);
	assert_true(selected[0] && selected[1] && !selected[2]);
	assert_int_equal(changes_select(&ch, sel2, 1, selected, "A", &err), 0);
	assert_true(!selected[0] && selected[1] && !selected[2]);
	assert_int_equal(changes_select(&ch, sel3, 1, selected, "A", &err), -1);
	assert_string_equal(err.msg, "'/data/d2' is not among box 'A''s changes");
	changes_release(&ch);
}

static void paths_are_normalized_without_resolving(void **state)
{
	static const char *const cases[][3] = {
	    {"/home/u", "doc.txt", "/home/u/doc.txt"},
	    {"/home/u", "./a//b/", "/home/u/a/b"},
	    {"/home/u", "../v/./x", "/home/v/x"},
	    {"/home/u", "/etc/../../..", "/"},
	    {"/", "a/..", "/"},
	    {"/x", "/abs//path/.", "/abs/path"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = path_normalize(cases[i][0], cases[i][1]);
		assert_string_equal(p, cases[i][2]);
		free(p);
	}
}

static void json_strings_are_escaped(void **state)
{
	static const char *const cases[][2] = {
	    {"plain", "\"plain\""},
	    {"q\"b\\", "\"q\\\"b\\\\\""},
	    {"nl\ntab\t\x01", "\"nl\\ntab\\t\\u0001\""},
	    {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
	    {"bad\xff\xc3", "\"bad\\u00ff\\u00c3\""},
	    {"\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""}, /* a UTF-16 surrogate */
	    {"\xc0\xaf", "\"\\u00c0\\u00af\""},		   /* overlong '/' */
	    {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		json_write_string(f, cases[i][0]);
		fclose(f);
		assert_string_equal(buf, cases[i][1]);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(every_kind_of_change_is_classified_in_byte_order,
					    fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(sort_order_is_bytewise_with_parents_first, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(a_missing_host_dir_makes_everything_added, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(selection_matches_paths_at_or_below, fx_setup,
					    fx_teardown),
	    cmocka_unit_test(paths_are_normalized_without_resolving),
	    cmocka_unit_test(commit_temp_names_are_exactly_those_commit_makes),
	    cmocka_unit_test_setup_teardown(only_commit_leftovers_are_hidden_from_the_diff,
					    fx_setup, fx_teardown),
	    cmocka_unit_test(json_strings_are_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
