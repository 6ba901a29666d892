/*
 * Limits where no cgroup holds them (limits.h): a CPU mask for --cpus,
 * rlimits in each program, and the /proc scan by which PID 1's watchdog
 * measures the box's memory and tasks.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/mountinfo.h"
#include "common/util.h"
#include "policy/limits.h"
#include "policy/limits_internal.h"
#include "common/banned.h"

/* --cpus by affinity: the first ceil(N) of the CPUs this process may use. */
enum limit_how limits_plan_affinity(struct limits *l)
{
	cpu_set_t all;
	int need = (int)((l->cpus_milli + 999) / 1000), have, taken = 0;

	if (sched_getaffinity(0, sizeof(all), &all) < 0)
		return LIMIT_NONE;
	have = CPU_COUNT(&all);
	if (need >= have)
		return LIMIT_NONE;
	CPU_ZERO(&l->cpuset);
	for (int cpu = 0; cpu < CPU_SETSIZE && taken < need; cpu++)
		if (CPU_ISSET(cpu, &all)) {
			CPU_SET(cpu, &l->cpuset);
			taken++;
		}
	return LIMIT_AFFINITY;
}

/* Lower soft and hard limit to v; never above the hard limit in force. */
static void lower_rlimit(int resource, uint64_t v)
{
	struct rlimit r;

	if (getrlimit(resource, &r) < 0)
		return;
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < v)
		v = r.rlim_max;
	r.rlim_cur = r.rlim_max = (rlim_t)v;
	setrlimit(resource, &r);
}

void limits_apply_child(const struct policy *p, const struct limits *l)
{
	uint64_t fsize = l ? l->max_file_size : p->max_file_size;
	uint64_t nofile = l ? l->max_open_files : p->max_open_files;

	if (fsize)
		lower_rlimit(RLIMIT_FSIZE, fsize);
	if (nofile)
		lower_rlimit(RLIMIT_NOFILE, nofile);
	if (!l)
		return;
	if (l->pids == LIMIT_RLIMIT)
		lower_rlimit(RLIMIT_NPROC, l->tasks_max);
	/*
	 * --cpus by affinity needs nothing here: PID 1 was pinned in
	 * limits_attach() and every program inherits its mask; the box's
	 * filter refuses sched_setaffinity so none can widen it again.
	 */
}

/* The number in kB after "\nName:" in a /proc/PID/status text, in bytes; 0 if absent. */
static uint64_t status_kb(const char *text, const char *name)
{
	const char *s = strstr(text, name);

	return s ? strtoull(s + strlen(name), NULL, 10) * 1024 : 0;
}

void limits_proc_scan(const char *proc, uint64_t *bytes, uint64_t *tasks)
{
	_cleanup_closedir_ DIR *d = opendir(proc);
	struct dirent *e;
	char text[4096];

	*bytes = 0;
	*tasks = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300];
		const char *t;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "%s/status", e->d_name);
		/* Gone since readdir(): it holds nothing any more. */
		if (limits_read_at(dirfd(d), path, text, sizeof(text)) <= 0)
			continue;
		*bytes += status_kb(text, "\nRssAnon:") + status_kb(text, "\nRssShmem:");
		t = strstr(text, "\nThreads:");
		*tasks += t ? strtoull(t + 9, NULL, 10) : 1;
	}
}
