#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "policy/limits.h"
#include "policy/limits_internal.h"
#include "common/banned.h"

/* --- small helpers --- */

void limits_appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strnlen(buf, size);
	va_list ap;

	if (used + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* 1500 -> "1.5", 2000 -> "2", 10 -> "0.01". */
static void format_cpus(char *buf, size_t len, uint32_t milli)
{
	unsigned frac = milli % 1000;
	int digits = 3;

	if (!frac) {
		snprintf(buf, len, "%u", milli / 1000);
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, len, "%u.%0*u", milli / 1000, digits, frac);
}

/* --- deciding --- */

static void describe(struct limits *l)
{
	char *d = l->described, v[64];
	size_t size = sizeof(l->described);
	const char *sep = "";
	cpu_set_t all;

	d[0] = '\0';
	if (l->fallback[0] &&
	    (l->memory > LIMIT_CGROUP || l->pids > LIMIT_CGROUP || l->cpus > LIMIT_CGROUP))
		limits_appendf(d, size, "%s: ", l->fallback);
	if (l->memory) {
		format_size(v, sizeof(v), l->memory_max);
		limits_appendf(d, size, "memory %s by %s", v,
			l->memory == LIMIT_CGROUP ? "cgroup" : "PID 1's watchdog");
		sep = ", ";
	}
	if (l->pids) {
		limits_appendf(d, size, "%spids %llu by %s", sep,
			(unsigned long long)l->pids_max,
			l->pids == LIMIT_CGROUP ? "cgroup"
			: l->pids == LIMIT_RLIMIT
			    ? "RLIMIT_NPROC (counts this box's tasks only)"
			    : "PID 1's watchdog (RLIMIT_NPROC does not bind root)");
		sep = ", ";
	}
	if (l->cpus_milli) {
		format_cpus(v, sizeof(v), l->cpus_milli);
		if (l->cpus == LIMIT_CGROUP)
			limits_appendf(d, size, "%scpus %s by cgroup", sep, v);
		else if (l->cpus == LIMIT_AFFINITY)
			limits_appendf(d, size, "%scpus %s by CPU affinity to %d of %d CPUs (advisory)",
				sep, v, CPU_COUNT(&l->cpuset),
				sched_getaffinity(0, sizeof(all), &all) == 0 ? CPU_COUNT(&all) : 0);
		else
			limits_appendf(d, size, "%scpus %s: no limit needed (no more CPUs here)", sep, v);
		sep = ", ";
	}
	if (l->cgroup)
		limits_appendf(d, size, " (cgroup %s)", l->cgroup);
	if (l->max_file_size) {
		format_size(v, sizeof(v), l->max_file_size);
		limits_appendf(d, size, "%smax-file-size %s by RLIMIT_FSIZE", *sep ? "; " : "", v);
		sep = ", ";
	}
	if (l->max_open_files)
		limits_appendf(d, size, "%smax-open-files %llu by RLIMIT_NOFILE", *sep ? ", " : "",
			(unsigned long long)l->max_open_files);
	if (!d[0])
		limits_appendf(d, size, "none");
}

int limits_prepare_at(const struct policy *p, const char *box_name, const char *cgroup_dir,
		      const char *why, struct limits *l, struct error *err)
{
	bool want[CTL_COUNT] = {p->memory != 0, p->pids != 0, p->cpus_milli != 0};
	bool use[CTL_COUNT] = {false};

	memset(l, 0, sizeof(*l));
	l->cgroup_fd = -1;
	l->memory_max = p->memory;
	l->pids_max = p->pids;
	l->tasks_max = p->pids > UINT64_MAX - limits_hutch_tasks(p) ? UINT64_MAX
								 : p->pids + limits_hutch_tasks(p);
	l->cpus_milli = p->cpus_milli;
	l->max_file_size = p->max_file_size;
	l->max_open_files = p->max_open_files;
	if (!p->pids)
		l->tasks_max = 0;

	if (want[CTL_MEMORY] || want[CTL_PIDS] || want[CTL_CPU]) {
		if (cgroup_dir)
			cgroup_make(l, cgroup_dir, box_name, want, use);
		else
			snprintf(l->fallback, sizeof(l->fallback), "%s",
				 why ? why : "no cgroup v2");
	}
	l->memory = use[CTL_MEMORY] ? LIMIT_CGROUP : want[CTL_MEMORY] ? LIMIT_WATCHDOG : LIMIT_NONE;
	/* copy_process() exempts tasks whose real uid is global root from RLIMIT_NPROC. */
	l->pids = use[CTL_PIDS]	    ? LIMIT_CGROUP
		  : !want[CTL_PIDS] ? LIMIT_NONE
		  : getuid() == 0   ? LIMIT_WATCHDOG
				    : LIMIT_RLIMIT;
	l->cpus = use[CTL_CPU] ? LIMIT_CGROUP : want[CTL_CPU] ? limits_plan_affinity(l) : LIMIT_NONE;
	describe(l);
	return 0;
}

int limits_prepare(const struct policy *p, const char *box_name, struct limits *l,
		   struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	char why[256] = "";

	if (p->memory || p->pids || p->cpus_milli)
		dir = cgroup_own_dir(why, sizeof(why));
	return limits_prepare_at(p, box_name, dir, why, l, err);
}

int limits_attach(struct limits *l, pid_t pid, struct error *err)
{
	char buf[32];

	if (l->cgroup_fd >= 0) {
		snprintf(buf, sizeof(buf), "%d", (int)pid);
		if (cgroup_write(l->cgroup_fd, "cgroup.procs", buf) < 0)
			return error_set(err, errno, "cannot move the box into cgroup '%s'",
					 l->cgroup);
	}
	if (l->cpus == LIMIT_AFFINITY && sched_setaffinity(pid, sizeof(l->cpuset), &l->cpuset) < 0)
		return error_set(err, errno, "cannot pin the box to its CPUs");
	return 0;
}

const char *limits_describe(const struct limits *l)
{
	return l->described;
}

int limits_explain(struct limits *l, int exit_code, char *why, size_t len)
{
	char text[1024], v[64];

	if (l->cgroup_fd >= 0 && l->memory == LIMIT_CGROUP &&
	    limits_read_at(l->cgroup_fd, "memory.events", text, sizeof(text)) >= 0 &&
	    cgroup_event_count(text, "oom_kill") > 0) {
		format_size(v, sizeof(v), l->memory_max);
		snprintf(why, len,
			 "memory limit of %s reached: the kernel killed a process of the box", v);
		return 1;
	}
	if (l->cgroup_fd >= 0 && l->pids == LIMIT_CGROUP &&
	    limits_read_at(l->cgroup_fd, "pids.events", text, sizeof(text)) >= 0 &&
	    cgroup_event_count(text, "max") > 0) {
		snprintf(why, len, "process limit of %llu reached: the box could not start more",
			 (unsigned long long)l->pids_max);
		return 1;
	}
	if (exit_code == 128 + SIGXFSZ && l->max_file_size) {
		format_size(v, sizeof(v), l->max_file_size);
		snprintf(why, len, "file size limit of %s reached: a write past it was refused", v);
		return 1;
	}
	return 0;
}

void limits_release(struct limits *l)
{
	if (l->cgroup_fd >= 0)
		close(l->cgroup_fd);
	l->cgroup_fd = -1;
	if (l->cgroup) {
		/* The box's last tasks may still be exiting: up to 1 s, then cgroup_sweep_stale()'s. */
		for (int i = 0; i < 100; i++) {
			struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
			if (rmdir(l->cgroup) == 0 || errno != EBUSY)
				break;
			nanosleep(&ts, NULL);
		}
		free(l->cgroup);
		l->cgroup = NULL;
	}
}

bool limits_enforce_memory(const struct limits *l)
{
	return l && l->memory == LIMIT_CGROUP;
}

uint64_t limits_watch_tasks(const struct limits *l)
{
	return l && l->pids == LIMIT_WATCHDOG ? l->tasks_max : 0;
}
