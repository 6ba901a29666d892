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

struct fixture {
	char *root;  /* scratch folder */
	char *host;  /* root/host: the "host" */
	char *box;   /* root/box: the box dir */
	char *upper; /* root/box/fs/data/upper: layer over host "/data" */
};

static void put(const char *dir, const char *rel, const char *content)
{
	char *p = xasprintf("%s/%s", dir, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	free(p);
}

static void mkd(const char *dir, const char *rel, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, rel);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static int whiteout(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	int r = mknod(p, S_IFCHR | 0, makedev(0, 0));
	free(p);
	return r;
}

static void lnk(const char *dir, const char *rel, const char *target)
{
	char *p = xasprintf("%s/%s", dir, rel);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static void opaque(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	assert_int_equal(setxattr(p, "user.overlay.opaque", "y", 1, 0), 0);
	free(p);
}

/* A copy-up: same content, mode and mtime as the host's file. */
static void copy_up(struct fixture *fx, const char *rel)
{
	char *src = xasprintf("%s/data/%s", fx->host, rel);
	char *dst = xasprintf("%s/%s", fx->upper, rel);
	struct error err;
	char *content = read_file(src, 1 << 20, &err);
	struct stat st;
	struct timespec t[2];

	assert_non_null(content);
	assert_int_equal(stat(src, &st), 0);
	put(fx->upper, rel, content);
	assert_int_equal(chmod(dst, st.st_mode & 07777), 0);
	t[0] = st.st_atim;
	t[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, dst, t, 0), 0);
	free(content);
	free(src);
	free(dst);
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char tmpl[] = "/var/tmp/hutch-unit-changes.XXXXXX";
	char *real;
	struct error err;

	assert_non_null(mkdtemp(tmpl));
	real = realpath(tmpl, NULL);
	assert_non_null(real);
	fx->root = real;
	fx->host = xasprintf("%s/host", real);
	fx->box = xasprintf("%s/box", real);
	fx->upper = xasprintf("%s/fs/data/upper", fx->box);
	assert_int_equal(mkdir_p(fx->upper, 0755, &err), 0);
	assert_int_equal(mkdir_p(fx->host, 0755, &err), 0);
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
	free(fx);
	return 0;
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
static bool build_box(struct fixture *fx)
{
	const char *h, *u = fx->upper;
	char *hd = xasprintf("%s/data", fx->host);

	h = hd;
	mkd(fx->host, "data", 0755);
	put(h, "keep.txt", "keep\n");
	put(h, "mod.txt", "old\n");
	put(h, "same.txt", "same\n");
	put(h, "mode.txt", "mode\n");
	put(h, "del.txt", "delete me\n");
	mkd(h, "deldir", 0755);
	put(h, "deldir/x", "x\n");
	mkd(h, "opq", 0755);
	put(h, "opq/h1", "h1\n");
	put(h, "opq/h2", "h2\n");
	mkd(h, "opq/keepdir", 0755);
	put(h, "opq/keepdir/inner", "inner\n");
	mkd(h, "sub", 0755);
	put(h, "sub/s1", "s1\n");
	put(h, "file-to-dir", "was a file\n");
	lnk(h, "ln", "keep.txt");

	if (whiteout(u, "del.txt") < 0) {
		free(hd);
		return false;
	}
	put(u, "mod.txt", "new content\n");
	copy_up(fx, "same.txt");
	copy_up(fx, "mode.txt");
	{
		char *p = xasprintf("%s/mode.txt", u);
		assert_int_equal(chmod(p, 0600), 0);
		free(p);
	}
	put(u, "new.txt", "brand new\n");
	assert_int_equal(whiteout(u, "deldir"), 0);
	assert_int_equal(whiteout(u, "ghost"), 0); /* nothing on the host: no change */
	mkd(u, "opq", 0755);
	opaque(u, "opq");
	put(u, "opq/h1", "h1 replaced\n");
	mkd(u, "opq/keepdir", 0755); /* hides its host entries too */
	mkd(u, "sub", 0755);	     /* a copy-up: same mode, no change */
	put(u, "sub/s2", "s2\n");
	mkd(u, "newdir", 0750);
	mkd(u, "newdir/deeper", 0700);
	put(u, "newdir/deeper/f", "f\n");
	mkd(u, "file-to-dir", 0755);
	put(u, "file-to-dir/inside", "in\n");
	lnk(u, "ln", "/etc");
	free(hd);
	return true;
}

static void every_kind_of_change_is_classified_in_byte_order(void **state)
{
	struct fixture *fx = *state;
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
	static const char *const ours[] = {".hutch-commit-abcdef123456", ".hutch-commit-000000000000",
					   ".hutch-commit-zzzzzzzzzzzz"};
	static const char *const users[] = {
	    ".hutch-commit-notes",	    ".hutch-commit-",		".hutch-commit-abcdef12345",
	    ".hutch-commit-abcdef1234567", ".hutch-commit-ABCDEF123456", ".hutch-commit-abcdef12345-",
	    "x.hutch-commit-abcdef123456", ".hutch-commit-abcdef12345.", ".hutch-commi-abcdef123456",
	};

	for (size_t i = 0; i < sizeof(ours) / sizeof(*ours); i++)
		assert_true(commit_is_temp_name(ours[i]));
	for (size_t i = 0; i < sizeof(users) / sizeof(*users); i++)
		if (commit_is_temp_name(users[i]))
			fail_msg("'%s' taken for a temporary name of commit", users[i]);
}

/* Below a dir the box replaced, a user's file named like commit's is a deletion; commit's own is not. */
static void only_commit_leftovers_are_hidden_from_the_diff(void **state)
{
	struct fixture *fx = *state;
	char *d = xasprintf("%s/data/d", fx->host);
	struct changes ch;
	struct error err;

	assert_int_equal(mkdir_p(d, 0755, &err), 0);
	put(d, ".hutch-commit-notes", "the user's\n");
	put(d, ".hutch-commit-abcdef123456", "half a file\n");
	mkd(fx->upper, "d", 0755);
	opaque(fx->upper, "d");
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	assert_int_equal(ch.n, 1);
	expect_change(&ch, 0, "/data/d/.hutch-commit-notes", CHANGE_DELETED, KIND_FILE, 11);
	changes_release(&ch);
	free(d);
}

static void sort_order_is_bytewise_with_parents_first(void **state)
{
	struct fixture *fx = *state;
	static const char *const names[] = {"a.txt", "a", "a-b", "B", "\xc3\xa9", "a/b"};
	struct changes ch;
	struct error err;

	mkd(fx->host, "data", 0755);
	for (size_t i = 0; i < 5; i++) {
		if (!strcmp(names[i], "a"))
			mkd(fx->upper, names[i], 0755);
		else
			put(fx->upper, names[i], "x");
	}
	put(fx->upper, "a/b", "x");
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
	struct fixture *fx = *state;
	struct changes ch;
	struct error err;

	/* No host/data at all. */
	put(fx->upper, "f", "x");
	assert_int_equal(changes_collect(&ch, fx->box, fx->host, &err), 0);
	assert_int_equal(ch.n, 1);
	expect_change(&ch, 0, "/data/f", CHANGE_ADDED, KIND_FILE, 1);
	changes_release(&ch);
}

static void selection_matches_paths_at_or_below(void **state)
{
	struct fixture *fx = *state;
	char *sel1[] = {"/data/d"};
	char *sel2[] = {"/data/d/x"};
	char *sel3[] = {"/data/d2"};
	bool selected[3];
	struct changes ch;
	struct error err;

	mkd(fx->host, "data", 0755);
	mkd(fx->upper, "d", 0755);
	put(fx->upper, "d/x", "x");
	put(fx->upper, "dd", "x");
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
	    cmocka_unit_test_setup_teardown(every_kind_of_change_is_classified_in_byte_order, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(sort_order_is_bytewise_with_parents_first, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_missing_host_dir_makes_everything_added, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(selection_matches_paths_at_or_below, setup, teardown),
	    cmocka_unit_test(paths_are_normalized_without_resolving),
	    cmocka_unit_test(commit_temp_names_are_exactly_those_commit_makes),
	    cmocka_unit_test_setup_teardown(only_commit_leftovers_are_hidden_from_the_diff, setup,
					    teardown),
	    cmocka_unit_test(json_strings_are_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
