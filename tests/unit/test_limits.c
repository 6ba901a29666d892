/*
 * Resource limits (policy/limits.h): the cgroup v2 path against a fake
 * cgroup folder (this machine's cgroup2 has no usable controllers), the
 * fallbacks, what -v says, the per-process rlimits, and the watchdog's
 * measures of memory and tasks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "policy/limits.h"
#include "policy/policy.h"

#include "fixture.h"

struct fixture {
	char *dir;   /* the fake cgroup (our "own" cgroup) */
	char *child; /* where the run's cgroup will be */
};

/*
 * A fake cgroup v2 folder: the interface files as the kernel has them, and
 * the run's child cgroup made in advance with its (empty) files, since
 * mkdir(2) on a real cgroupfs makes them but not on a plain filesystem.
 * limits_prepare() takes a leftover empty cgroup of its own name as its own.
 */
static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	static const char *const files[] = {"memory.max", "memory.swap.max", "pids.max",
					    "cpu.max",	  "cgroup.procs",    "memory.events",
					    "pids.events"};

	fx->dir = fx_mkdtemp("cgroup");
	fx_put(fx->dir, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	fx_put(fx->dir, "cgroup.subtree_control", "memory pids\n");
	fx_put(fx->dir, "cgroup.procs", "");
	fx->child = xasprintf("%s/hutch-tbox-%d", fx->dir, (int)getpid());
	if (mkdir(fx->child, 0755) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		fx_put(fx->child, files[i], "");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	fx_rmdtemp(fx->dir);
	free(fx->child);
	free(fx);
	return 0;
}

static void the_cgroup_gets_every_limit_and_pid_1(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {.memory = 64 << 20, .pids = 10, .cpus_milli = 1500};
	struct limits l;
	struct error err;
	char *subtree;

	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	assert_int_equal(l.memory, LIMIT_CGROUP);
	assert_int_equal(l.pids, LIMIT_CGROUP);
	assert_int_equal(l.cpus, LIMIT_CGROUP);
	assert_string_equal(l.cgroup, fx->child);
	assert_true(l.cgroup_fd >= 0);
	assert_false(l.fallback[0]);
	assert_true(limits_enforce_memory(&l));
	assert_int_equal(limits_watch_tasks(&l), 0);

	fx_expect_content(fx->child, "memory.max", "67108864");
	fx_expect_content(fx->child, "memory.swap.max", "0");
	/* 10 for the programs, 2 for PID 1 and its supervisor thread (the default filter). */
	fx_expect_content(fx->child, "pids.max", "12");
	fx_expect_content(fx->child, "cpu.max", "150000 100000");
	/* cpu was not enabled for children: it was asked for (a plain file keeps the write). */
	subtree = fx_read(fx->dir, "cgroup.subtree_control");
	assert_true(str_has_prefix(subtree, "+cpu"));
	free(subtree);

	fx_expect_content(fx->child, "cgroup.procs", "");
	assert_int_equal(limits_attach(&l, 4242, &err), 0);
	fx_expect_content(fx->child, "cgroup.procs", "4242");

	assert_true(str_has_prefix(limits_describe(&l),
				   "memory 64 MiB by cgroup, pids 10 by cgroup, "
				   "cpus 1.5 by cgroup (cgroup /var/tmp/"));
	limits_release(&l);
}

static void cgroup_events_explain_how_the_box_ended(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {.memory = 64 << 20, .pids = 10, .max_file_size = 1 << 20};
	struct limits l;
	struct error err;
	char why[256];

	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	fx_put(fx->child, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	fx_put(fx->child, "pids.events", "max 0\n");
	assert_int_equal(limits_explain(&l, 1, why, sizeof(why)), 0);
	assert_int_equal(limits_explain(&l, 137, why, sizeof(why)), 0);

	fx_put(fx->child, "pids.events", "max 3\n");
	assert_int_equal(limits_explain(&l, 1, why, sizeof(why)), 1);
	assert_string_equal(why, "process limit of 10 reached: the box could not start more");

	fx_put(fx->child, "memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n");
	assert_int_equal(limits_explain(&l, 137, why, sizeof(why)), 1);
	assert_string_equal(
	    why, "memory limit of 64 MiB reached: the kernel killed a process of the box");

	fx_put(fx->child, "memory.events", "oom_kill 0\n");
	fx_put(fx->child, "pids.events", "max 0\n");
	assert_int_equal(limits_explain(&l, 153, why, sizeof(why)), 1);
	assert_string_equal(why, "file size limit of 1 MiB reached: a write past it was refused");
	limits_release(&l);
}

static void missing_controllers_fall_back_one_by_one(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {.memory = 1 << 30, .pids = 50, .cpus_milli = 1000};
	struct limits l;
	struct error err;
	char expected[512];

	/* This machine's case: cgroup v2 with nothing but hugetlb. */
	fx_put(fx->dir, "cgroup.controllers", "hugetlb\n");
	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	assert_int_equal(l.memory, LIMIT_WATCHDOG);
	assert_int_equal(l.pids, getuid() == 0 ? LIMIT_WATCHDOG : LIMIT_RLIMIT);
	assert_null(l.cgroup);
	assert_int_equal(l.cgroup_fd, -1);
	assert_false(limits_enforce_memory(&l));
	/* 50 for the programs, 2 for PID 1 and its supervisor thread. */
	assert_int_equal(limits_watch_tasks(&l), getuid() == 0 ? 52 : 0);
	assert_int_equal(l.tasks_max, 52);
	snprintf(expected, sizeof(expected),
		 "cgroup v2 at %s lacks the memory, pids and cpu controllers: memory 1 GiB by PID 1's "
		 "watchdog, pids 50 by %s",
		 fx->dir,
		 getuid() == 0 ? "PID 1's watchdog (RLIMIT_NPROC does not bind root)"
			       : "RLIMIT_NPROC (counts this box's tasks only)");
	if (!str_has_prefix(limits_describe(&l), expected))
		fail_msg("expected '%s...', got '%s'", expected, limits_describe(&l));
	limits_release(&l);

	/* Only pids delegated: pids by the cgroup, the others by their fallbacks. */
	fx_put(fx->dir, "cgroup.controllers", "pids\n");
	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	assert_int_equal(l.memory, LIMIT_WATCHDOG);
	assert_int_equal(l.pids, LIMIT_CGROUP);
	assert_non_null(l.cgroup);
	fx_expect_content(fx->child, "pids.max", "52");
	fx_expect_content(fx->child, "memory.max", "");
	snprintf(expected, sizeof(expected),
		 "cgroup v2 at %s lacks the memory and cpu controllers: memory 1 GiB by PID 1's "
		 "watchdog, pids 50 by cgroup, cpus 1",
		 fx->dir);
	if (!str_has_prefix(limits_describe(&l), expected))
		fail_msg("expected '%s...', got '%s'", expected, limits_describe(&l));
	limits_release(&l);

	/* Without a filter PID 1 has no supervisor thread: one task of hutch's. */
	p.seccomp = FILTER_OFF;
	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	assert_int_equal(l.tasks_max, 51);
	fx_expect_content(fx->child, "pids.max", "51");
	assert_non_null(strstr(limits_describe(&l), "pids 50 by cgroup"));
	limits_release(&l);
}

static void a_cgroup_that_cannot_delegate_is_not_used(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {.memory = 1 << 30};
	struct limits l;
	struct error err;
	char path[256];

	/* Enabling memory for children fails (here: EISDIR; in life: EBUSY, EACCES). */
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", fx->dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	assert_int_equal(l.memory, LIMIT_WATCHDOG);
	assert_null(l.cgroup);
	assert_non_null(strstr(limits_describe(&l), "cannot enable controllers for child cgroups"));
	limits_release(&l);
}

static void a_cgroup_in_use_is_not_taken(void **state)
{
	struct fixture *fx = *state;
	struct policy p = {.pids = 5};
	struct limits l;
	struct error err;

	fx_put(fx->child, "cgroup.procs", "999\n");
	assert_int_equal(limits_prepare_at(&p, "tbox", fx->dir, NULL, &l, &err), 0);
	assert_null(l.cgroup);
	assert_non_null(strstr(limits_describe(&l), "exists and is in use"));
	limits_release(&l);
}

static void without_cgroup_v2_the_reason_is_given(void **state)
{
	struct policy p = {.memory = 512 << 10};
	struct limits l;
	struct error err;

	assert_int_equal(limits_prepare_at(&p, "b", NULL, "cgroup v2 is not mounted", &l, &err), 0);
	assert_string_equal(limits_describe(&l),
			    "cgroup v2 is not mounted: memory 512 KiB by PID 1's watchdog");
	limits_release(&l);
}

static void describe_says_none_or_the_rlimits(void **state)
{
	struct policy none = {0};
	struct policy per_process = {.max_file_size = 1 << 20, .max_open_files = 64};
	struct limits l;
	struct error err;

	assert_int_equal(limits_prepare(&none, "b", &l, &err), 0);
	assert_string_equal(limits_describe(&l), "none");
	assert_null(l.cgroup);
	limits_release(&l);

	assert_int_equal(limits_prepare(&per_process, "b", &l, &err), 0);
	assert_string_equal(
	    limits_describe(&l),
	    "max-file-size 1 MiB by RLIMIT_FSIZE, max-open-files 64 by RLIMIT_NOFILE");
	limits_release(&l);
}

static void cpus_fall_back_to_affinity_rounded_up(void **state)
{
	struct policy half = {.cpus_milli = 500}, many = {.cpus_milli = 4096000};
	struct limits l;
	struct error err;
	cpu_set_t all;
	char expected[128];

	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	assert_int_equal(limits_prepare_at(&many, "b", NULL, "no cgroup v2", &l, &err), 0);
	assert_int_equal(l.cpus, LIMIT_NONE);
	assert_non_null(strstr(limits_describe(&l), "cpus 4096: no limit needed"));
	limits_release(&l);

	if (CPU_COUNT(&all) < 2)
		skip(); /* 0.5 CPU rounds up to the only CPU there is: nothing to test */
	assert_int_equal(limits_prepare_at(&half, "b", NULL, "no cgroup v2", &l, &err), 0);
	assert_int_equal(l.cpus, LIMIT_AFFINITY);
	assert_int_equal(CPU_COUNT(&l.cpuset), 1);
	snprintf(expected, sizeof(expected), "cpus 0.5 by CPU affinity to 1 of %d CPUs (advisory)",
		 CPU_COUNT(&all));
	assert_non_null(strstr(limits_describe(&l), expected));
	limits_release(&l);
}

/* In a child: attach and apply the limits, report what is in force through the exit status. */
static void the_child_gets_its_rlimits_and_cpus(void **state)
{
	struct policy p = {
	    .max_file_size = 4096, .max_open_files = 32, .pids = 7, .cpus_milli = 500};
	char path[] = "/var/tmp/hutch-test-fsize.XXXXXX";
	int fd = mkstemp(path), status;
	struct limits l;
	struct error err;
	pid_t pid;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(limits_prepare_at(&p, "b", NULL, "no cgroup v2", &l, &err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit fsize, nofile, nproc;
		static char block[8192];
		cpu_set_t now;
		struct error e;
		/* As in a box: PID 1 pinned by the host side, the program inheriting it. */
		if (limits_attach(&l, getpid(), &e) < 0)
			_exit(7);
		limits_apply_child(&p, &l);
		if (getrlimit(RLIMIT_FSIZE, &fsize) || fsize.rlim_cur != 4096 ||
		    fsize.rlim_max != 4096)
			_exit(1);
		if (getrlimit(RLIMIT_NOFILE, &nofile) || nofile.rlim_cur != 32 ||
		    nofile.rlim_max != 32)
			_exit(2);
		getrlimit(RLIMIT_NPROC, &nproc);
		if (l.pids == LIMIT_RLIMIT && (nproc.rlim_cur != 9 || nproc.rlim_max != 9))
			_exit(3);
		sched_getaffinity(0, sizeof(now), &now);
		if (l.cpus == LIMIT_AFFINITY && !CPU_EQUAL(&now, &l.cpuset))
			_exit(4);
		/* A write is cut at the limit; one past it raises SIGXFSZ (exit 128 + 25 = 153). */
		if (write(fd, block, sizeof(block)) != 4096)
			_exit(5);
		(void)!write(fd, block, 1);
		_exit(6);
	}
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		fail_msg("the child exited with %d", WEXITSTATUS(status));
	assert_int_equal(WTERMSIG(status), SIGXFSZ);
	limits_release(&l);
}

/*
 * RLIMIT_NPROC set in a user namespace counts the tasks of that uid in
 * that namespace only (Linux >= 5.14, ucounts): the host's processes of
 * the same user do not count, so --pids N means N for the box. Tasks whose
 * real uid is global root are exempt (copy_process()), which is why root's
 * boxes get the watchdog instead.
 */
static void rlimit_nproc_counts_only_the_box(void **state)
{
	pid_t pid, helpers[4];
	int status, made = -1, pipefd[2];

	/* Processes of ours outside the namespace: more than the limit, and not counted. */
	for (int i = 0; i < 4; i++) {
		helpers[i] = fork();
		assert_true(helpers[i] >= 0);
		if (helpers[i] == 0) {
			pause();
			_exit(0);
		}
	}
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit r = {3, 3};
		pid_t kids[3];
		int n = 0;
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(100);
		if (setrlimit(RLIMIT_NPROC, &r) < 0)
			_exit(101);
		/* This process is one of the 3: two more may exist, not three. */
		for (; n < 3; n++) {
			kids[n] = fork();
			if (kids[n] == 0) {
				pause();
				_exit(0);
			}
			if (kids[n] < 0)
				break;
		}
		(void)!write(pipefd[1], &n, sizeof(n));
		for (int i = 0; i < n; i++)
			kill(kids[i], SIGKILL);
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &made, sizeof(made)) != sizeof(made))
		made = -1;
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (int i = 0; i < 4; i++) {
		kill(helpers[i], SIGKILL);
		waitpid(helpers[i], NULL, 0);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 100)
		skip(); /* no user namespaces here */
	assert_int_equal(made, getuid() == 0 ? 3 : 2);
}

/* --- the watchdog's measures --- */

static void proc_scan_sums_anonymous_memory_and_threads(void **state)
{
	struct fixture *fx = *state;
	char path[256];
	uint64_t bytes, tasks;

	snprintf(path, sizeof(path), "%s/proc/1", fx->dir);
	assert_int_equal(mkdir_p(path, 0755, &(struct error){0}), 0);
	fx_put(path, "status",
	    "Name:\tinit\nUmask:\t0022\nState:\tS (sleeping)\nVmRSS:\t    9000 kB\n"
	    "RssAnon:\t     100 kB\nRssFile:\t    8880 kB\nRssShmem:\t      20 kB\nThreads:\t3\n");
	snprintf(path, sizeof(path), "%s/proc/22", fx->dir);
	assert_int_equal(mkdir_p(path, 0755, &(struct error){0}), 0);
	fx_put(path, "status",
	    "Name:\tpython3\nRssAnon:\t    1000 kB\nRssShmem:\t       0 kB\nThreads:\t1\n");
	/* A zombie: no memory lines. */
	snprintf(path, sizeof(path), "%s/proc/23", fx->dir);
	assert_int_equal(mkdir_p(path, 0755, &(struct error){0}), 0);
	fx_put(path, "status", "Name:\tdefunct\nState:\tZ (zombie)\nThreads:\t1\n");
	/* Gone between readdir and open; and entries that are not processes. */
	snprintf(path, sizeof(path), "%s/proc/33", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/proc/sys", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	fx_put(path, "status", "RssAnon:\t 99999 kB\n");

	snprintf(path, sizeof(path), "%s/proc", fx->dir);
	limits_proc_scan(path, &bytes, &tasks);
	assert_int_equal(bytes, (100 + 20 + 1000) * 1024);
	assert_int_equal(tasks, 3 + 1 + 1);
}

static void *sleeper(void *arg)
{
	pause();
	return NULL;
}

static void the_measures_are_sane_for_this_process(void **state)
{
	struct fixture *fx = *state;
	size_t size = 16 << 20;
	char *mem = malloc(size), path[256], link[64];
	uint64_t bytes, tasks;
	pthread_t threads[2];

	assert_non_null(mem);
	memset(mem, 1, size); /* resident now */
	/* A /proc that shows only this process, as the box's shows only the box. */
	snprintf(path, sizeof(path), "%s/proc", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/proc/%d", fx->dir, (int)getpid());
	snprintf(link, sizeof(link), "/proc/%d", (int)getpid());
	assert_int_equal(symlink(link, path), 0);
	snprintf(path, sizeof(path), "%s/proc", fx->dir);

	limits_proc_scan(path, &bytes, &tasks);
	assert_true(bytes >= size);
	assert_true(bytes < size + (256 << 20));
	assert_int_equal(tasks, 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, sleeper, NULL), 0);
	limits_proc_scan(path, &bytes, &tasks);
	assert_int_equal(tasks, 3);
	for (int i = 0; i < 2; i++) {
		pthread_cancel(threads[i]);
		pthread_join(threads[i], NULL);
	}

	/* The real /proc (the whole host here): at least this process. */
	limits_proc_scan("/proc", &bytes, &tasks);
	assert_true(bytes >= size);
	assert_true(tasks >= 1);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(the_cgroup_gets_every_limit_and_pid_1, setup, teardown),
	    cmocka_unit_test_setup_teardown(cgroup_events_explain_how_the_box_ended, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(missing_controllers_fall_back_one_by_one, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_cgroup_that_cannot_delegate_is_not_used, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(a_cgroup_in_use_is_not_taken, setup, teardown),
	    cmocka_unit_test(without_cgroup_v2_the_reason_is_given),
	    cmocka_unit_test(describe_says_none_or_the_rlimits),
	    cmocka_unit_test(cpus_fall_back_to_affinity_rounded_up),
	    cmocka_unit_test(the_child_gets_its_rlimits_and_cpus),
	    cmocka_unit_test(rlimit_nproc_counts_only_the_box),
	    cmocka_unit_test_setup_teardown(proc_scan_sums_anonymous_memory_and_threads, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(the_measures_are_sane_for_this_process, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
