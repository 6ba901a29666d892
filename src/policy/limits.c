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
#include "common/mountinfo.h"
#include "common/util.h"
#include "policy/limits.h"
#include "common/banned.h"

#define CPU_PERIOD_US 100000
/* pids.max takes at most PID_MAX_LIMIT (2^22); above that it is "max". */
#define PIDS_MAX_LIMIT 4194304
/* A leftover cgroup of a dead run is swept only once this old (s): not one being set up. */
#define STALE_AGE_S 60

enum ctl { CTL_MEMORY, CTL_PIDS, CTL_CPU, CTL_COUNT };
static const char *const ctl_names[CTL_COUNT] = {"memory", "pids", "cpu"};

/* --- small helpers --- */

static void appendf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t size, const char *fmt, ...)
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

/* Is word one of the blank-separated words of list ("cpu io memory pids")? */
static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *s = list; s && *s;) {
		while (isspace((unsigned char)*s))
			s++;
		const char *e = s;
		while (*e && !isspace((unsigned char)*e))
			e++;
		if ((size_t)(e - s) == n && !strncmp(s, word, n))
			return true;
		s = e;
	}
	return false;
}

/* A small cgroup or proc file below dirfd, NUL-terminated, in buf; -1 on error. */
static ssize_t read_at(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read_all(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Write value to a cgroup interface file in one write(2), as the kernel wants. */
static int cg_write(int dirfd, const char *name, const char *value)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return -1;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n != len) {
		n = -1;
		errno = EIO;
	}
	if (n < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

/* The number after "key " in a flat-keyed file such as memory.events; 0 if absent. */
static unsigned long long event_count(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
		if (!strncmp(s, key, n) && s[n] == ' ')
			return strtoull(s + n + 1, NULL, 10);
	return 0;
}

/* --- the cgroup --- */

/*
 * Remove leftover hutch-*-PID cgroups of runs whose hutch is gone (a crash,
 * or a box whose last task outlived limits_release()). rmdir(2) removes
 * only an empty cgroup, so a live box is never touched.
 */
static void sweep_stale(int dfd)
{
	_cleanup_closedir_ DIR *d = NULL;
	int fd = dup(dfd);
	struct dirent *e;
	time_t now = time(NULL);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		const char *dash = strrchr(e->d_name, '-');
		struct stat st;
		char *end;
		long pid;

		if (!str_has_prefix(e->d_name, "hutch-") || !dash)
			continue;
		pid = strtol(dash + 1, &end, 10);
		if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
		    now - st.st_mtime > STALE_AGE_S)
			unlinkat(dfd, e->d_name, AT_REMOVEDIR);
	}
}

/*
 * Make the run's cgroup below dir for the controllers in want; sets use[]
 * to those it enforces, and says in l->fallback why any other is not.
 */
static void cgroup_make(struct limits *l, const char *dir, const char *box_name,
			const bool want[CTL_COUNT], bool use[CTL_COUNT])
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *name = NULL;
	char controllers[1024], subtree[1024], missing[64] = "", value[64];
	bool enabled[CTL_COUNT] = {false};
	int cfd, enable_errno = 0, nmissing = 0, any = 0;
	bool existed;
	const char *failed_file = NULL;

	if (dfd < 0) {
		snprintf(l->fallback, sizeof(l->fallback), "cannot open cgroup v2 at %s: %s", dir,
			 strerror(errno));
		return;
	}
	if (read_at(dfd, "cgroup.controllers", controllers, sizeof(controllers)) < 0) {
		snprintf(l->fallback, sizeof(l->fallback), "cannot read %s/cgroup.controllers: %s",
			 dir, strerror(errno));
		return;
	}
	if (read_at(dfd, "cgroup.subtree_control", subtree, sizeof(subtree)) < 0)
		subtree[0] = '\0';
	for (int c = 0; c < CTL_COUNT; c++) {
		if (!want[c])
			continue;
		if (!word_in(controllers, ctl_names[c])) {
			nmissing++;
			continue;
		}
		/*
		 * A child cgroup has a controller only if its parent enables it
		 * for children. A cgroup other than the root that holds
		 * processes cannot (EBUSY: cgroup v2's "no internal processes").
		 */
		snprintf(value, sizeof(value), "+%s", ctl_names[c]);
		if (word_in(subtree, ctl_names[c]) ||
		    cg_write(dfd, "cgroup.subtree_control", value) == 0)
			enabled[c] = true;
		else if (!enable_errno)
			enable_errno = errno;
	}
	/* "memory", "memory and cpu", "memory, pids and cpu" */
	for (int c = 0, listed = 0; c < CTL_COUNT; c++)
		if (want[c] && !word_in(controllers, ctl_names[c]))
			appendf(missing, sizeof(missing), "%s%s",
				!listed++	     ? ""
				: listed == nmissing ? " and "
						     : ", ",
				ctl_names[c]);
	if (nmissing)
		appendf(l->fallback, sizeof(l->fallback),
			"cgroup v2 at %s lacks the %s controller%s", dir, missing,
			nmissing > 1 ? "s" : "");
	if (enable_errno)
		appendf(l->fallback, sizeof(l->fallback),
			"%scannot enable controllers for child cgroups of %s: %s",
			l->fallback[0] ? "; " : "", dir, strerror(enable_errno));
	for (int c = 0; c < CTL_COUNT; c++)
		any |= enabled[c];
	if (!any)
		return;

	/* Moving PID 1 from our cgroup into a child needs write access to our cgroup.procs. */
	if (faccessat(dfd, ".", W_OK | X_OK, AT_EACCESS) < 0 ||
	    faccessat(dfd, "cgroup.procs", W_OK, AT_EACCESS) < 0) {
		snprintf(l->fallback, sizeof(l->fallback),
			 "cgroup v2 at %s is not writable here: %s", dir, strerror(errno));
		return;
	}
	sweep_stale(dfd);
	name = xasprintf("hutch-%s-%d", box_name, (int)getpid());
	existed = mkdirat(dfd, name, 0755) < 0;
	if ((existed && errno != EEXIST) ||
	    (cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(l->fallback, sizeof(l->fallback), "cannot create cgroup %s/%s: %s", dir,
			 name, strerror(errno));
		if (!existed)
			unlinkat(dfd, name, AT_REMOVEDIR);
		return;
	}
	/* A leftover of an earlier run whose pid ours reuses: fine if empty. */
	if (existed && read_at(cfd, "cgroup.procs", value, sizeof(value)) != 0) {
		snprintf(l->fallback, sizeof(l->fallback), "cgroup %s/%s exists and is in use", dir,
			 name);
		close(cfd);
		return;
	}

	if (want[CTL_MEMORY] && enabled[CTL_MEMORY]) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)l->memory_max);
		if (cg_write(cfd, "memory.max", value) < 0)
			failed_file = "memory.max";
		/* Without swap accounting there is no such file, and nothing to do. */
		else if (faccessat(cfd, "memory.swap.max", F_OK, 0) == 0 &&
			 cg_write(cfd, "memory.swap.max", "0") < 0)
			failed_file = "memory.swap.max";
	}
	if (!failed_file && want[CTL_PIDS] && enabled[CTL_PIDS]) {
		if (l->tasks_max > PIDS_MAX_LIMIT)
			snprintf(value, sizeof(value), "max");
		else
			snprintf(value, sizeof(value), "%llu", (unsigned long long)l->tasks_max);
		if (cg_write(cfd, "pids.max", value) < 0)
			failed_file = "pids.max";
	}
	if (!failed_file && want[CTL_CPU] && enabled[CTL_CPU]) {
		snprintf(value, sizeof(value), "%llu %d",
			 (unsigned long long)l->cpus_milli * CPU_PERIOD_US / 1000, CPU_PERIOD_US);
		if (cg_write(cfd, "cpu.max", value) < 0)
			failed_file = "cpu.max";
	}
	if (failed_file) {
		snprintf(l->fallback, sizeof(l->fallback), "cannot write %s/%s/%s: %s", dir, name,
			 failed_file, strerror(errno));
		close(cfd);
		unlinkat(dfd, name, AT_REMOVEDIR);
		return;
	}
	for (int c = 0; c < CTL_COUNT; c++)
		use[c] = want[c] && enabled[c];
	l->cgroup = xasprintf("%s/%s", dir, name);
	l->cgroup_fd = cfd;
}

/*
 * This process's cgroup v2 folder: its path from /proc/self/cgroup's
 * "0::/PATH" line, under the cgroup2 mount whose root holds it. NULL, with
 * the reason in why, when there is none.
 */
static char *own_cgroup_dir(char *why, size_t len)
{
	_cleanup_free_ char *cg = NULL;
	struct mount_table mt;
	struct error ignored;
	const char *path = NULL;
	char *dir = NULL;
	bool mounted = false;

	cg = read_file("/proc/self/cgroup", 65536, &ignored);
	for (char *s = cg; s && *s;) {
		char *nl = strchr(s, '\n');
		if (nl)
			*nl = '\0';
		if (str_has_prefix(s, "0::/"))
			path = s + 3;
		s = nl ? nl + 1 : NULL;
	}
	if (!path) {
		snprintf(why, len,
			 "this process is in no cgroup v2 (no 0:: line in /proc/self/cgroup)");
		return NULL;
	}
	if (mount_table_read(&mt, &ignored) < 0)
		mt = (struct mount_table){0}; /* said as "not mounted", below */
	for (size_t i = 0; i < mt.n; i++) {
		const struct mount_entry *m = &mt.v[i];

		if (strcmp(m->fstype, "cgroup2"))
			continue;
		mounted = true;
		if (!strcmp(m->root, "/"))
			dir = strcmp(path, "/") ? xasprintf("%s%s", m->path, path) : xstrdup(m->path);
		else if (path_is_within(path, m->root))
			dir = xasprintf("%s%s", m->path, path + strlen(m->root));
		if (dir)
			break;
	}
	mount_table_release(&mt);
	if (dir)
		return dir;
	if (mounted)
		snprintf(why, len, "this process's cgroup %s is outside the cgroup v2 mounts",
			 path);
	else
		snprintf(why, len, "cgroup v2 is not mounted");
	return NULL;
}

/* --- deciding --- */

/* --cpus by affinity: the first ceil(N) of the CPUs this process may use. */
static enum limit_how plan_affinity(struct limits *l)
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

static void describe(struct limits *l)
{
	char *d = l->described, v[64];
	size_t size = sizeof(l->described);
	const char *sep = "";
	cpu_set_t all;

	d[0] = '\0';
	if (l->fallback[0] &&
	    (l->memory > LIMIT_CGROUP || l->pids > LIMIT_CGROUP || l->cpus > LIMIT_CGROUP))
		appendf(d, size, "%s: ", l->fallback);
	if (l->memory) {
		format_size(v, sizeof(v), l->memory_max);
		appendf(d, size, "memory %s by %s", v,
			l->memory == LIMIT_CGROUP ? "cgroup" : "PID 1's watchdog");
		sep = ", ";
	}
	if (l->pids) {
		appendf(d, size, "%spids %llu by %s", sep,
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
			appendf(d, size, "%scpus %s by cgroup", sep, v);
		else if (l->cpus == LIMIT_AFFINITY)
			appendf(d, size, "%scpus %s by CPU affinity to %d of %d CPUs (advisory)",
				sep, v, CPU_COUNT(&l->cpuset),
				sched_getaffinity(0, sizeof(all), &all) == 0 ? CPU_COUNT(&all) : 0);
		else
			appendf(d, size, "%scpus %s: no limit needed (no more CPUs here)", sep, v);
		sep = ", ";
	}
	if (l->cgroup)
		appendf(d, size, " (cgroup %s)", l->cgroup);
	if (l->max_file_size) {
		format_size(v, sizeof(v), l->max_file_size);
		appendf(d, size, "%smax-file-size %s by RLIMIT_FSIZE", *sep ? "; " : "", v);
		sep = ", ";
	}
	if (l->max_open_files)
		appendf(d, size, "%smax-open-files %llu by RLIMIT_NOFILE", *sep ? ", " : "",
			(unsigned long long)l->max_open_files);
	if (!d[0])
		appendf(d, size, "none");
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
	l->cpus = use[CTL_CPU] ? LIMIT_CGROUP : want[CTL_CPU] ? plan_affinity(l) : LIMIT_NONE;
	describe(l);
	return 0;
}

int limits_prepare(const struct policy *p, const char *box_name, struct limits *l,
		   struct error *err)
{
	_cleanup_free_ char *dir = NULL;
	char why[256] = "";

	if (p->memory || p->pids || p->cpus_milli)
		dir = own_cgroup_dir(why, sizeof(why));
	return limits_prepare_at(p, box_name, dir, why, l, err);
}

int limits_attach(struct limits *l, pid_t pid, struct error *err)
{
	char buf[32];

	if (l->cgroup_fd >= 0) {
		snprintf(buf, sizeof(buf), "%d", (int)pid);
		if (cg_write(l->cgroup_fd, "cgroup.procs", buf) < 0)
			return error_set(err, errno, "cannot move the box into cgroup '%s'",
					 l->cgroup);
	}
	if (l->cpus == LIMIT_AFFINITY && sched_setaffinity(pid, sizeof(l->cpuset), &l->cpuset) < 0)
		return error_set(err, errno, "cannot pin the box to its CPUs");
	return 0;
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

const char *limits_describe(const struct limits *l)
{
	return l->described;
}

int limits_explain(struct limits *l, int exit_code, char *why, size_t len)
{
	char text[1024], v[64];

	if (l->cgroup_fd >= 0 && l->memory == LIMIT_CGROUP &&
	    read_at(l->cgroup_fd, "memory.events", text, sizeof(text)) >= 0 &&
	    event_count(text, "oom_kill") > 0) {
		format_size(v, sizeof(v), l->memory_max);
		snprintf(why, len,
			 "memory limit of %s reached: the kernel killed a process of the box", v);
		return 1;
	}
	if (l->cgroup_fd >= 0 && l->pids == LIMIT_CGROUP &&
	    read_at(l->cgroup_fd, "pids.events", text, sizeof(text)) >= 0 &&
	    event_count(text, "max") > 0) {
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
		/* The box's last tasks may still be exiting: up to 1 s, then sweep_stale()'s. */
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

/* --- measuring the box from inside --- */

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
		if (read_at(dirfd(d), path, text, sizeof(text)) <= 0)
			continue;
		*bytes += status_kb(text, "\nRssAnon:") + status_kb(text, "\nRssShmem:");
		t = strstr(text, "\nThreads:");
		*tasks += t ? strtoull(t + 9, NULL, 10) : 1;
	}
}

uint64_t box_memory_bytes(void)
{
	uint64_t bytes, tasks;

	limits_proc_scan("/proc", &bytes, &tasks);
	return bytes;
}

uint64_t box_process_count(void)
{
	uint64_t bytes, tasks;

	limits_proc_scan("/proc", &bytes, &tasks);
	return tasks;
}
