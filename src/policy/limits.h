/*
 * Resource limits of a box: --memory, --cpus, --pids (for the whole box),
 * --max-file-size and --max-open-files (for each process).
 *
 * How each is enforced depends on the machine, decided by limits_prepare():
 *
 *   cgroup v2     where the caller's own cgroup (0::/PATH in /proc/self/cgroup,
 *                 under the cgroup2 mount in /proc/self/mountinfo) is
 *                 writable and has the controller in cgroup.controllers and
 *                 in cgroup.subtree_control (enabled there if it may be):
 *                 a child cgroup hutch-BOX-PID gets memory.max (and
 *                 memory.swap.max 0), pids.max, cpu.max "QUOTA 100000", and
 *                 the box's PID 1 is moved into it. Per controller: a
 *                 machine with only the pids controller delegated still
 *                 gets --pids from the cgroup.
 *   fallbacks     --memory: PID 1 kills the box when the memory
 *                 limits_proc_scan() counts exceeds it (no RLIMIT_AS: it limits address space, which
 *                 JITs and sanitizers reserve by the terabyte);
 *                 --pids: RLIMIT_NPROC in each program, which since Linux
 *                 5.14 counts the tasks of one uid in one user namespace,
 *                 i.e. exactly this box's (the kernel exempts global uid 0,
 *                 so when hutch runs as root PID 1 watches
 *                 the tasks limits_proc_scan() counts instead);
 *                 --cpus N: CPU affinity to ceil(N) CPUs (a program may
 *                 widen its own affinity again: advisory).
 *   always        --max-file-size: RLIMIT_FSIZE (a write past it raises
 *                 SIGXFSZ: exit 153); --max-open-files: RLIMIT_NOFILE.
 *
 * --pids N counts tasks (threads too, as pids.max and RLIMIT_NPROC do) of
 * the box's programs: hutch's own tasks come on top (limits_hutch_tasks()).
 */
#ifndef HUTCH_POLICY_LIMITS_H
#define HUTCH_POLICY_LIMITS_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "policy/policy.h"

/*
 * Tasks of hutch's own in the box, which pids.max, RLIMIT_NPROC and the
 * watchdog count with the programs': PID 1, and under a syscall filter
 * its supervisor thread (policy/seccomp.h), alive while programs run.
 */
static inline uint64_t limits_hutch_tasks(const struct policy *p)
{
	return p->seccomp == FILTER_OFF ? 1 : 2;
}

enum limit_how {
	LIMIT_NONE,	/* not asked for, or nothing to do (--cpus above the CPUs here) */
	LIMIT_CGROUP,	/* by the kernel, through the run's cgroup */
	LIMIT_RLIMIT,	/* setrlimit(2) in each program */
	LIMIT_AFFINITY, /* sched_setaffinity(2) of PID 1 and each program */
	LIMIT_WATCHDOG, /* PID 1 measures the box and kills it past the limit */
};

struct limits {
	enum limit_how memory, pids, cpus;
	uint64_t memory_max; /* --memory, bytes */
	uint64_t pids_max;   /* --pids */
	uint64_t tasks_max;  /* --pids + limits_hutch_tasks(): for pids.max, RLIMIT_NPROC, watchdog */
	uint32_t cpus_milli; /* --cpus */
	cpu_set_t cpuset;    /* LIMIT_AFFINITY: the CPUs the box runs on */
	uint64_t max_file_size;	 /* RLIMIT_FSIZE, 0: none */
	uint64_t max_open_files; /* RLIMIT_NOFILE, 0: none */
	char *cgroup;		 /* the cgroup made for this run, or NULL */
	int cgroup_fd;		 /* open on it (O_DIRECTORY), or -1; usable with clone3's
				    CLONE_INTO_CGROUP */
	char fallback[384];	 /* why cgroup v2 does not enforce all of --memory/--pids/--cpus */
	char described[1024];	 /* limits_describe() */
};

/*
 * Host side, before the box's PID 1 exists: decide how the policy's limits
 * are enforced, and make the cgroup if one is used. Falls back rather than
 * fails; fails only when hutch cannot work at all. l is always releasable.
 */
int limits_prepare(const struct policy *p, const char *box_name, struct limits *l,
		   struct error *err);

/*
 * Host side, once PID 1 (pid) exists and before it starts anything: move it
 * into the cgroup, pin it to the CPUs. Note: PID 1's cgroup namespace has
 * its root where PID 1 was created; cloned into the cgroup (clone3 with
 * CLONE_INTO_CGROUP and l->cgroup_fd), that root is the limited cgroup and
 * the box cannot move itself out of it.
 */
int limits_attach(struct limits *l, pid_t pid, struct error *err);

/*
 * In each program's process just before exec (after fork from PID 1): the
 * rlimits and CPU affinity. Only syscalls: no allocation, no stdio. A limit
 * is never raised above the hard limit already in force (nothing to
 * enforce then). l may be NULL (a box not started by this hutch): p alone.
 */
void limits_apply_child(const struct policy *p, const struct limits *l);

/* One line for `hutch run -v`: how the limits are enforced here and why. */
const char *limits_describe(const struct limits *l);

/*
 * After a program of the box ended with exit_code: whether a limit
 * explains it, in a short reason (e.g. "memory limit of 64 MiB reached: the
 * kernel killed a process of the box"). Returns 1 if a limit was hit.
 * Knows the cgroup's memory.events oom_kill and pids.events max, and exit
 * 153 (SIGXFSZ) under --max-file-size. The watchdog's kills are PID 1's to
 * report, and RLIMIT_NPROC leaves no trace to find.
 */
int limits_explain(struct limits *l, int exit_code, char *why, size_t len);

/* Close the cgroup and remove it (waiting briefly for the box's last tasks to go). */
void limits_release(struct limits *l);

/* True when the kernel (a cgroup) enforces --memory: PID 1 need not watch it. */
bool limits_enforce_memory(const struct limits *l);

/*
 * For PID 1's watchdog: the task count (limits_proc_scan()) above which it must kill
 * the box because nothing else enforces --pids (hutch run as root without
 * a cgroup), or 0.
 */
uint64_t limits_watch_tasks(const struct limits *l);

/*
 * For PID 1's watchdog, called inside the box (whose /proc shows only the
 * box), in one pass over the /proc at proc. *bytes: the sum over every
 * process of its RssAnon + RssShmem (/proc/PID/status): the memory the
 * box's processes hold, without file-backed pages (program text,
 * libraries, file cache), which the kernel can drop and which would count
 * once per process. Shared memory mapped by several processes counts once
 * per process; pages of a file in the box's /dev/shm that no process maps,
 * and kernel memory (pipe buffers, sockets), do not count. *tasks: the sum
 * of the processes' Threads:, PID 1 included. Both skip processes that
 * exit while being read.
 */
void limits_proc_scan(const char *proc, uint64_t *bytes, uint64_t *tasks);

/* Internals, for tests. */
/* limits_prepare() with the caller's cgroup v2 folder given (NULL: none, because why). */
int limits_prepare_at(const struct policy *p, const char *box_name, const char *cgroup_dir,
		      const char *why, struct limits *l, struct error *err);

#endif
