/* The box root plan: overlays exactly on the subtrees free of foreign mounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "box/fsplan.h"
#include "box/userns.h"
#include "common/util.h"

static const char mountinfo[] =
	"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	"28 27 0:25 / /mnt/with\\040space/inner ro,nosuid shared:5 - tmpfs none ro\n"
	"29 27 0:26 / /etc/resolv.conf rw - ext4 /dev/vda rw\n"
	"30 27 0:27 /box\\040a /var/lib/cg rw - cgroup2 cgroup2 rw\n";

static void mountinfo_is_parsed_and_unescaped(void **state)
{
	struct mount_table mt;
	struct error err;

	assert_int_equal(mount_table_parse(&mt, mountinfo, &err), 0);
	assert_int_equal(mt.n, 5);
	assert_string_equal(mt.v[2].path, "/mnt/with space/inner");
	assert_string_equal(mt.v[2].fstype, "tmpfs");
	assert_true(mount_table_has_below(&mt, "/mnt"));
	assert_true(mount_table_has_below(&mt, "/mnt/with space"));
	assert_false(mount_table_has_below(&mt, "/mnt/with space/inner"));
	assert_false(mount_table_has_below(&mt, "/usr"));
	assert_non_null(mount_table_find(&mt, "/etc/resolv.conf"));
	assert_null(mount_table_find(&mt, "/etc"));
	assert_string_equal(mt.v[4].root, "/box a");
	assert_string_equal(mt.v[4].fstype, "cgroup2");
	mount_table_release(&mt);
}

static void octal_escapes_are_decoded_and_nothing_else(void **state)
{
	static const char *const cases[][2] = {
		{"a\\040b", "a b"},	     {"\\011\\012\\134", "\t\n\\"},
		{"end\\", "end\\"},	     {"\\04", "\\04"}, /* too short */
		{"\\400x", "\\400x"}, /* above \\377: not an escape */
		{"\\08", "\\08"},	     {"", ""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = xstrdup(cases[i][0]);
		octal_unescape(s);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static void garbage_mountinfo_is_refused(void **state)
{
	struct mount_table mt;
	struct error err;

	assert_int_equal(mount_table_parse(&mt, "1 2 3\n", &err), -1);
	assert_non_null(strstr(err.msg, "mountinfo line 1"));
}

static void touch(const char *root, const char *path, int dir)
{
	char *p = xasprintf("%s%s", root, path);
	if (dir)
		assert_int_equal(mkdir(p, 0755), 0);
	else
		fclose(fopen(p, "w"));
	free(p);
}

static void chmod_in(const char *root, const char *path, mode_t mode)
{
	char *p = xasprintf("%s%s", root, path);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static const struct fsplan_entry *find(const struct fsplan *plan, const char *path)
{
	for (size_t i = 0; i < plan->n; i++)
		if (!strcmp(plan->v[i].path, path))
			return &plan->v[i];
	return NULL;
}

static void plan_splits_only_where_mounts_are(void **state)
{
	char root[] = "/var/tmp/hutch-fsplan-XXXXXX";
	struct mount_table mt;
	struct fsplan plan;
	struct error err;
	char *link;

	assert_non_null(mkdtemp(root));
	touch(root, "/usr", 1);
	touch(root, "/etc", 1);
	touch(root, "/etc/resolv.conf", 0);
	touch(root, "/etc/ssl", 1);
	touch(root, "/mnt", 1);
	touch(root, "/mnt/with space", 1);
	touch(root, "/mnt/with space/inner", 1);
	touch(root, "/mnt/other", 1);
	touch(root, "/var", 1);
	touch(root, "/var/lib", 1);
	touch(root, "/var/lib/cg", 1);
	touch(root, "/proc", 1);
	touch(root, "/top-file", 0);
	link = xasprintf("%s/bin", root);
	assert_int_equal(symlink("usr/bin", link), 0);

	assert_int_equal(mount_table_parse(&mt, mountinfo, &err), 0);
	assert_int_equal(fsplan_build(&plan, root, &mt, FSPLAN_PRIVILEGED, &err), 0);

	assert_int_equal(find(&plan, "/usr")->kind, PLAN_OVERLAY);
	assert_int_equal(find(&plan, "/etc")->kind, PLAN_DIR);
	assert_false(find(&plan, "/etc")->cow);
	assert_int_equal(find(&plan, "/etc/resolv.conf")->kind, PLAN_BIND_RO);
	assert_int_equal(find(&plan, "/etc/ssl")->kind, PLAN_OVERLAY);
	assert_int_equal(find(&plan, "/mnt")->kind, PLAN_DIR);
	assert_int_equal(find(&plan, "/mnt/with space")->kind, PLAN_DIR);
	assert_int_equal(find(&plan, "/mnt/with space/inner")->kind, PLAN_OVERLAY);
	assert_int_equal(find(&plan, "/mnt/other")->kind, PLAN_OVERLAY);
	assert_int_equal(find(&plan, "/var/lib/cg")->kind, PLAN_BIND_RO);
	assert_int_equal(find(&plan, "/proc")->kind, PLAN_PROC);
	assert_int_equal(find(&plan, "/top-file")->kind, PLAN_BIND_RO);
	assert_int_equal(find(&plan, "/bin")->kind, PLAN_SYMLINK);
	assert_string_equal(find(&plan, "/bin")->target, "usr/bin");
	/* Missing on this "host", still in every box. */
	assert_int_equal(find(&plan, "/dev")->kind, PLAN_DEV);
	assert_int_equal(find(&plan, "/tmp")->kind, PLAN_TMP);
	assert_int_equal(find(&plan, "/sys")->kind, PLAN_SYS);
	/* Parents come before children. */
	for (size_t i = 0; i < plan.n; i++)
		for (size_t j = i + 1; j < plan.n; j++)
			assert_false(path_is_within(plan.v[i].path, plan.v[j].path) &&
				     strcmp(plan.v[i].path, plan.v[j].path));
	fsplan_release(&plan);
	mount_table_release(&mt);
	free(link);
	{
		struct error e;
		assert_int_equal(remove_tree(root, &e), 0);
	}
}

/* Plan root's tree as an unprivileged user (nobody, when the test runs as root). */
static void plan_unprivileged(const char *root, enum fsplan_kind kinds[5], bool nested[5])
{
	static const char *const paths[] = {"/empty-ro", "/empty-rw", "/closed", "/var",
					    "/var/sticky"};
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mount_table mt = {0};
		struct fsplan plan;
		struct error err;
		if (getuid() == 0 && (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0))
			_exit(2);
		if (fsplan_build(&plan, root, &mt, 0, &err) < 0)
			_exit(3);
		for (int i = 0; i < 5; i++) {
			const struct fsplan_entry *e = find(&plan, paths[i]);
			enum fsplan_kind k = e ? e->kind : (enum fsplan_kind)-1;
			bool n = e && e->nested;
			if (write(fds[1], &k, sizeof(k)) != sizeof(k) ||
			    write(fds[1], &n, sizeof(n)) != sizeof(n))
				_exit(4);
		}
		_exit(0);
	}
	close(fds[1]);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(read(fds[0], &kinds[i], sizeof(kinds[i])), sizeof(kinds[i]));
		assert_int_equal(read(fds[0], &nested[i], sizeof(nested[i])), sizeof(nested[i]));
	}
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void unprivileged_plans_skip_overlays_where_nothing_can_change(void **state)
{
	char root[] = "/var/tmp/hutch-fsplan-XXXXXX";
	enum fsplan_kind kinds[5];
	bool nested[5];
	struct error err;
	bool as_root = getuid() == 0;

	assert_non_null(mkdtemp(root));
	assert_int_equal(chmod(root, 0755), 0);
	touch(root, "/empty-ro", 1);
	touch(root, "/empty-rw", 1);
	touch(root, "/closed", 1);
	touch(root, "/var", 1);
	touch(root, "/var/file", 0);
	touch(root, "/var/sticky", 1);
	chmod_in(root, "/empty-ro", 0555);
	chmod_in(root, "/empty-rw", 0777);
	chmod_in(root, "/closed", 0);
	chmod_in(root, "/var/sticky", 01777);
	chmod_in(root, "/var", 0555);

	plan_unprivileged(root, kinds, nested);
	assert_int_equal(kinds[0], PLAN_BIND_RO); /* empty, not writable */
	assert_int_equal(kinds[1], PLAN_OVERLAY); /* writable */
	assert_int_equal(kinds[2], PLAN_BIND_RO); /* cannot be entered */
	assert_int_equal(kinds[3], PLAN_OVERLAY); /* may hold writable files */
	/*
	 * A writable dir whose parent has an owner the box cannot map (root's,
	 * when the test runs as root and plans as nobody) gets its own layer:
	 * copying the parent up would fail. Owned by the planner, it needs none.
	 */
	if (as_root) {
		assert_int_equal(kinds[4], PLAN_OVERLAY);
		assert_true(nested[4]);
	} else {
		assert_int_equal(kinds[4], (enum fsplan_kind)-1);
	}
	assert_int_equal(remove_tree(root, &err), 0);
}

static void pseudo_and_real_filesystems_are_told_apart(void **state)
{
	assert_false(fstype_is_pseudo("ext4"));
	assert_false(fstype_is_pseudo("tmpfs"));
	assert_false(fstype_is_pseudo("fuse.sshfs"));
	assert_true(fstype_is_pseudo("proc"));
	assert_true(fstype_is_pseudo("cgroup2"));
	assert_true(fstype_is_pseudo("binfmt_misc"));
}

static void root_keeps_its_ids_as_an_identity_map(void **state)
{
	char *map = userns_identity_map("         0          0 4294967295\n");
	assert_string_equal(map, "0 0 4294967295\n");
	free(map);
	map = userns_identity_map("0 1000 1\n1 100000 65536\n");
	assert_string_equal(map, "0 0 1\n1 1 65536\n");
	free(map);
}

/* /tmp: an overlay like any directory, the box's own with FSPLAN_PRIVATE_TMP. */
static void tmp_is_copy_on_write_unless_private(void **state)
{
	static const char below_tmp[] = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
					"31 27 0:28 / /tmp/m rw - fuse.app app rw\n";
	char root[] = "/var/tmp/hutch-fsplan-XXXXXX";
	struct mount_table mt;
	struct fsplan plan;
	struct error err;

	assert_non_null(mkdtemp(root));
	touch(root, "/tmp", 1);
	touch(root, "/tmp/m", 1);
	touch(root, "/tmp/f", 0);
	{
		char *tmp = xasprintf("%s/tmp", root);
		assert_int_equal(chmod(tmp, 01777), 0);
		free(tmp);
	}
	assert_int_equal(mount_table_parse(&mt, "27 1 254:0 / / rw - ext4 /dev/vda rw\n", &err), 0);
	assert_int_equal(fsplan_build(&plan, root, &mt, FSPLAN_PRIVILEGED, &err), 0);
	assert_int_equal(find(&plan, "/tmp")->kind, PLAN_OVERLAY);
	assert_false(find(&plan, "/tmp")->cow);
	fsplan_release(&plan);
	assert_int_equal(
		fsplan_build(&plan, root, &mt, FSPLAN_PRIVILEGED | FSPLAN_PRIVATE_TMP, &err), 0);
	assert_int_equal(find(&plan, "/tmp")->kind, PLAN_TMP);
	assert_null(find(&plan, "/tmp/m"));
	fsplan_release(&plan);
	mount_table_release(&mt);

	/* A mount below: the top takes new files through an overlay over its skeleton. */
	assert_int_equal(mount_table_parse(&mt, below_tmp, &err), 0);
	assert_int_equal(fsplan_build(&plan, root, &mt, FSPLAN_PRIVILEGED, &err), 0);
	assert_int_equal(find(&plan, "/tmp")->kind, PLAN_DIR);
	assert_true(find(&plan, "/tmp")->cow);
	assert_int_equal(find(&plan, "/tmp/m")->kind, PLAN_OVERLAY);
	assert_false(find(&plan, "/tmp/m")->cow);
	assert_int_equal(find(&plan, "/tmp/f")->kind, PLAN_BIND_RO);
	assert_ptr_equal(fsplan_layer_of(&plan, "/tmp/new"), find(&plan, "/tmp"));
	assert_ptr_equal(fsplan_layer_of(&plan, "/tmp/m/x"), find(&plan, "/tmp/m"));
	fsplan_release(&plan);
	mount_table_release(&mt);
	{
		struct error e;
		assert_int_equal(remove_tree(root, &e), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mountinfo_is_parsed_and_unescaped),
		cmocka_unit_test(garbage_mountinfo_is_refused),
		cmocka_unit_test(octal_escapes_are_decoded_and_nothing_else),
		cmocka_unit_test(plan_splits_only_where_mounts_are),
		cmocka_unit_test(unprivileged_plans_skip_overlays_where_nothing_can_change),
		cmocka_unit_test(pseudo_and_real_filesystems_are_told_apart),
		cmocka_unit_test(root_keeps_its_ids_as_an_identity_map),
		cmocka_unit_test(tmp_is_copy_on_write_unless_private),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
