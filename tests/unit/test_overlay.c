/* Overlay options on every kernel: overlayfs's escaping, and real mounts with both option paths. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "box/overlay.h"
#include "common/util.h"

static void escape_prefixes_backslash_colon_and_comma(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"/usr", "/usr"},
		{"", ""},
		{"/a:b", "/a\\:b"},
		{"/a,b", "/a\\,b"},
		{"/a\\b", "/a\\\\b"},
		{"::,,\\\\", "\\:\\:\\,\\,\\\\\\\\"},
		{"/x y=z\"'", "/x y=z\"'"}, /* nothing else is special to overlayfs */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = overlay_escape(cases[i].in);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void legacy_options_name_each_layer_escaped(void **state)
{
	struct error err;
	char *data = overlay_legacy_options("/l:o,w", "/u\\p", "/w,k", &err);

	assert_non_null(data);
	assert_string_equal(data, "lowerdir=/l\\:o\\,w,upperdir=/u\\\\p,workdir=/w\\,k,userxattr");
	free(data);
}

static void legacy_options_longer_than_a_page_are_refused(void **state)
{
	char *lower = xmalloc(3000);
	struct error err;

	memset(lower, ',', 2999); /* 2999 commas escape to 5998 bytes */
	lower[0] = '/';
	lower[2999] = '\0';
	assert_null(overlay_legacy_options(lower, "/u", "/w", &err));
	assert_int_equal(err.errnum, ENAMETOOLONG);
	free(lower);
}

static char scratch[256];

static int make_scratch(void **state)
{
	/* Next to this binary: a filesystem with user xattrs (tmpfs before 6.6 has none). */
	char self[200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(scratch, sizeof(scratch), "%s/ovl.XXXXXX", self);
	assert_non_null(mkdtemp(scratch));
	return 0;
}

static int remove_scratch(void **state)
{
	char *cmd = xasprintf("chmod -R u+rwX '%s' && rm -rf '%s'", scratch, scratch);
	int r = system(cmd);
	free(cmd);
	return r == 0 ? 0 : -1;
}

static int put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/*
 * In a child with user and mount namespaces of its own: mount lower (whose
 * name holds every special character) with upper/work, read the lower's
 * file through the overlay, write a new one. Exit status 0 if all worked.
 */
static int child_mounts(const char *dir, bool legacy)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	struct error err;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return 10;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
	if (put_file("/proc/self/uid_map", map) < 0 || put_file("/proc/self/setgroups", "deny") < 0)
		return 11;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
	if (put_file("/proc/self/gid_map", map) < 0)
		return 12;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 13;
	if (legacy != overlay_legacy())
		return 14;
	char *lower = xasprintf("%s/lo:w,er\\1", dir);
	char *upper = xasprintf("%s/up:p,er\\2", dir);
	char *work = xasprintf("%s/wo:r,k\\3", dir);
	char *target = xasprintf("%s/merged", dir);
	if (overlay_mount(lower, upper, work, target, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 15;
	}
	char *seen = xasprintf("%s/from-lower", target);
	char *made = xasprintf("%s/made", target);
	char buf[16] = "";
	FILE *f = fopen(seen, "re");
	if (!f || !fgets(buf, sizeof(buf), f) || strcmp(buf, "lower\n"))
		return 16;
	fclose(f);
	if (put_file(made, "new\n") < 0)
		return 17;
	return 0;
}

static void mount_both_ways(const char *dir, bool legacy)
{
	const char *names[] = {"lo:w,er\\1", "up:p,er\\2", "wo:r,k\\3", "merged"};
	int status;

	for (size_t i = 0; i < 4; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		assert_int_equal(mkdir(p, 0755), 0);
		free(p);
	}
	char *f = xasprintf("%s/lo:w,er\\1/from-lower", dir);
	assert_int_equal(put_file(f, "lower\n"), 0);
	free(f);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_mounts(dir, legacy));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 10)
		skip(); /* no unprivileged user namespaces here */
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The write went to the upper dir, the lower one is as it was. */
	char *up = xasprintf("%s/up:p,er\\2/made", dir);
	char *low = xasprintf("%s/lo:w,er\\1/made", dir);
	struct stat st;
	assert_int_equal(stat(up, &st), 0);
	assert_int_equal(stat(low, &st), -1);
	free(up);
	free(low);
}

static void the_legacy_string_mounts_escaped_paths(void **state)
{
	setenv("HUTCH_TEST_LEGACY_OVERLAY", "1", 1);
	mount_both_ways(scratch, true);
}

static void the_kernels_own_way_mounts_escaped_paths(void **state)
{
	unsetenv("HUTCH_TEST_LEGACY_OVERLAY");
	/* The child probes what this kernel takes: lowerdir+ on 6.8 and later. */
	int legacy = overlay_legacy_probe_detached();
	if (legacy < 0)
		skip();
	mount_both_ways(scratch, legacy == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(escape_prefixes_backslash_colon_and_comma),
	    cmocka_unit_test(legacy_options_name_each_layer_escaped),
	    cmocka_unit_test(legacy_options_longer_than_a_page_are_refused),
	    cmocka_unit_test_setup_teardown(the_legacy_string_mounts_escaped_paths, make_scratch,
					    remove_scratch),
	    cmocka_unit_test_setup_teardown(the_kernels_own_way_mounts_escaped_paths, make_scratch,
					    remove_scratch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
