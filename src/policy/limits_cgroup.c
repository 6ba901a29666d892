/*
 * Limits by cgroup v2 (limits.h): this process's cgroup folder, a cgroup
 * of the run's own below it, its interface files, and the sweep of those
 * that dead runs left behind.
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

#define CPU_PERIOD_US 100000
/* pids.max takes at most PID_MAX_LIMIT (2^22); above that it is "max". */
#define PIDS_MAX_LIMIT 4194304
/* A leftover cgroup of a dead run is swept only once this old (s): not one being set up. */
#define STALE_AGE_S 60

static const char *const ctl_names[CTL_COUNT] = {"memory", "pids", "cpu"};

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
ssize_t limits_read_at(int dirfd, const char *name, char *buf, size_t size)
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
int cgroup_write(int dirfd, const char *name, const char *value)
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
unsigned long long cgroup_event_count(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
		if (!strncmp(s, key, n) && s[n] == ' ')
			return strtoull(s + n + 1, NULL, 10);
	return 0;
}

/*
 * Remove leftover hutch-*-PID cgroups of runs whose hutch is gone (a crash,
 * or a box whose last task outlived limits_release()). rmdir(2) removes
 * only an empty cgroup, so a live box is never touched.
 */
void cgroup_sweep_stale(int dfd)
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
void cgroup_make(struct limits *l, const char *dir, const char *box_name,
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
	if (limits_read_at(dfd, "cgroup.controllers", controllers, sizeof(controllers)) < 0) {
		snprintf(l->fallback, sizeof(l->fallback), "cannot read %s/cgroup.controllers: %s",
			 dir, strerror(errno));
		return;
	}
	if (limits_read_at(dfd, "cgroup.subtree_control", subtree, sizeof(subtree)) < 0)
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
		    cgroup_write(dfd, "cgroup.subtree_control", value) == 0)
			enabled[c] = true;
		else if (!enable_errno)
			enable_errno = errno;
	}
	/* "memory", "memory and cpu", "memory, pids and cpu" */
	for (int c = 0, listed = 0; c < CTL_COUNT; c++)
		if (want[c] && !word_in(controllers, ctl_names[c]))
			limits_appendf(missing, sizeof(missing), "%s%s",
				!listed++	     ? ""
				: listed == nmissing ? " and "
						     : ", ",
				ctl_names[c]);
	if (nmissing)
		limits_appendf(l->fallback, sizeof(l->fallback),
			"cgroup v2 at %s lacks the %s controller%s", dir, missing,
			nmissing > 1 ? "s" : "");
	if (enable_errno)
		limits_appendf(l->fallback, sizeof(l->fallback),
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
	cgroup_sweep_stale(dfd);
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
	if (existed && limits_read_at(cfd, "cgroup.procs", value, sizeof(value)) != 0) {
		snprintf(l->fallback, sizeof(l->fallback), "cgroup %s/%s exists and is in use", dir,
			 name);
		close(cfd);
		return;
	}

	if (want[CTL_MEMORY] && enabled[CTL_MEMORY]) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)l->memory_max);
		if (cgroup_write(cfd, "memory.max", value) < 0)
			failed_file = "memory.max";
		/* Without swap accounting there is no such file, and nothing to do. */
		else if (faccessat(cfd, "memory.swap.max", F_OK, 0) == 0 &&
			 cgroup_write(cfd, "memory.swap.max", "0") < 0)
			failed_file = "memory.swap.max";
	}
	if (!failed_file && want[CTL_PIDS] && enabled[CTL_PIDS]) {
		if (l->tasks_max > PIDS_MAX_LIMIT)
			snprintf(value, sizeof(value), "max");
		else
			snprintf(value, sizeof(value), "%llu", (unsigned long long)l->tasks_max);
		if (cgroup_write(cfd, "pids.max", value) < 0)
			failed_file = "pids.max";
	}
	if (!failed_file && want[CTL_CPU] && enabled[CTL_CPU]) {
		snprintf(value, sizeof(value), "%llu %d",
			 (unsigned long long)l->cpus_milli * CPU_PERIOD_US / 1000, CPU_PERIOD_US);
		if (cgroup_write(cfd, "cpu.max", value) < 0)
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
char *cgroup_own_dir(char *why, size_t len)
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
