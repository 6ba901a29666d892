/*
 * The unit tests' scratch trees: a temporary folder with a stand-in for
 * the host and for a box dir, and the helpers that make entries in them and
 * read them back. Each helper fails the test when it cannot do its part.
 * Include after <cmocka.h>. Static inline: each test binary takes what it
 * uses (the Makefile builds every tests/unit/test_*.c on its own).
 */
#ifndef HUTCH_TESTS_UNIT_FIXTURE_H
#define HUTCH_TESTS_UNIT_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"

/*
 * root (a fresh folder under /var/tmp, symlinks resolved) holds host (the
 * "host"), box (a box dir with one layer over host "/data", its upper dir
 * at box/fs/data/upper) and outside (a folder neither reaches). host/data
 * is data's path; fx_setup does not make it (a test of a missing host dir
 * needs it absent).
 */
struct box_fixture {
	char *root, *host, *box, *upper, *data, *outside;
};

static inline char *fx_path(const char *dir, const char *rel)
{
	return xasprintf("%s/%s", dir, rel);
}

/* A fresh folder under /var/tmp, its name saying what for (symlinks resolved); free it. */
static inline char *fx_mkdtemp(const char *what)
{
	char *tmpl = xasprintf("/var/tmp/hutch-unit-%s.XXXXXX", what);
	char *dir;

	assert_non_null(mkdtemp(tmpl));
	dir = realpath(tmpl, NULL);
	assert_non_null(dir);
	free(tmpl);
	return dir;
}

/* Remove the folder fx_mkdtemp made, with all in it, and free its name. */
static inline void fx_rmdtemp(char *dir)
{
	struct error err;

	remove_tree(dir, &err);
	free(dir);
}

/* cmocka setup: a fresh struct box_fixture in *state. */
static inline int fx_setup(void **state)
{
	struct box_fixture *fx = xcalloc(1, sizeof(*fx));
	struct error err;

	fx->root = fx_mkdtemp("box");
	fx->host = fx_path(fx->root, "host");
	fx->box = fx_path(fx->root, "box");
	fx->upper = fx_path(fx->box, "fs/data/upper");
	fx->data = fx_path(fx->host, "data");
	fx->outside = fx_path(fx->root, "outside");
	assert_int_equal(mkdir_p(fx->upper, 0755, &err), 0);
	assert_int_equal(mkdir_p(fx->host, 0755, &err), 0);
	assert_int_equal(mkdir(fx->outside, 0755), 0);
	*state = fx;
	return 0;
}

/* cmocka teardown: the scratch tree removed, the fixture freed. */
static inline int fx_teardown(void **state)
{
	struct box_fixture *fx = *state;

	fx_rmdtemp(fx->root);
	free(fx->host);
	free(fx->box);
	free(fx->upper);
	free(fx->data);
	free(fx->outside);
	free(fx);
	return 0;
}

static inline void fx_put(const char *dir, const char *rel, const char *content)
{
	char *p = fx_path(dir, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	free(p);
}

/* A directory of exactly mode (umask does not apply). */
static inline void fx_mkdir(const char *dir, const char *rel, mode_t mode)
{
	char *p = fx_path(dir, rel);
	assert_int_equal(mkdir(p, mode), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static inline void fx_symlink(const char *dir, const char *rel, const char *target)
{
	char *p = fx_path(dir, rel);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

/* An overlayfs whiteout (char device 0/0); false where mknod is not allowed. */
static inline bool fx_whiteout(const char *dir, const char *rel)
{
	char *p = fx_path(dir, rel);
	int r = mknod(p, S_IFCHR | 0, makedev(0, 0));
	free(p);
	return r == 0;
}

/* Mark an upper dir opaque, as an unprivileged overlay mount does (user.*). */
static inline void fx_opaque(const char *dir, const char *rel)
{
	char *p = fx_path(dir, rel);
	assert_int_equal(setxattr(p, "user.overlay.opaque", "y", 1, 0), 0);
	free(p);
}

/* The file's content (up to 1 MiB), to be freed. */
static inline char *fx_read(const char *dir, const char *rel)
{
	char *p = fx_path(dir, rel);
	struct error err;
	char *s = read_file(p, 1 << 20, &err);
	if (!s)
		fail_msg("%s", err.msg);
	free(p);
	return s;
}

static inline void fx_expect_content(const char *dir, const char *rel, const char *content)
{
	char *s = fx_read(dir, rel);
	assert_string_equal(s, content);
	free(s);
}

static inline bool fx_exists(const char *dir, const char *rel)
{
	char *p = fx_path(dir, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

static inline mode_t fx_mode_of(const char *dir, const char *rel)
{
	char *p = fx_path(dir, rel);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	free(p);
	return st.st_mode;
}

static inline bool fx_is_empty_dir(const char *dir)
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

/* Sleep long enough that later ctimes differ from earlier birth times. */
static inline void fx_tick(void)
{
	struct timespec t = {.tv_nsec = 20 * 1000 * 1000};
	nanosleep(&t, NULL);
}

#endif
