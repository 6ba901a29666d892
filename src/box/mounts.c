#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "box/mounts.h"
#include "box/overlay.h"
#include "box/store.h"
#include "policy/access.h"
#include "common/cleanup.h"
#include "common/mount.h"
#include "common/util.h"
#include "common/banned.h"

/*
 * At every mount overlayfs removes the work dir's "work" subdirectory left
 * by the last mount and makes a new one. On ext4 mounted with "discard" the
 * removal waits for the device to discard the directory's block. A rename
 * into the box's trash costs no such wait; the trash is emptied after the
 * box has stopped (box_trash_empty), when nobody waits for it.
 */
static void trash_old_work(const char *box_dir, const char *layer, const char *work)
{
	_cleanup_free_ char *old = xasprintf("%s/work", work);
	uint64_t nonce = 0;

	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		nonce = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	_cleanup_free_ char *dest = xasprintf("%s/" BOX_TRASH "/%s.%016llx", box_dir, layer,
					      (unsigned long long)nonce);
	/* ENOENT: a first mount, or a trash not yet made. Else overlayfs removes it. */
	(void)rename(old, dest);
}

static int mount_overlay(const char *lower, const char *box_dir, const char *layer,
			 const char *target, struct error *err)
{
	_cleanup_free_ char *upper = xasprintf("%s/fs/%s/upper", box_dir, layer);
	_cleanup_free_ char *work = xasprintf("%s/fs/%s/work", box_dir, layer);

	/* After a box's first run both exist: one call each, not one per component. */
	if ((mkdir(upper, 0755) < 0 && errno != EEXIST && mkdir_p(upper, 0755, err) < 0) ||
	    (mkdir(work, 0700) < 0 && errno != EEXIST && mkdir_p(work, 0700, err) < 0))
		return -1;
	trash_old_work(box_dir, layer, work);
	return overlay_mount(lower, upper, work, target, err);
}

/*
 * Whether a mount of host path failed (with err) because path is gone: the
 * plan was made a moment before, and a busy folder (/tmp) changes under it.
 * What is gone is left out of the box, as if it had gone a moment earlier.
 */
static bool vanished(const char *path, const struct error *err)
{
	return err->errnum == ENOENT && access(path, F_OK) < 0 && errno == ENOENT;
}

/* Bind src on target (recursively), optionally read-only. */
/* What a box's /dev holds (mount_dev): device nodes bound from the host, and symlinks. */
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *const dev_links[][2] = {
	{"ptmx", "pts/ptmx"},	       {"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},  {"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"},
};

static bool dev_made_it(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++)
		if (!strcmp(name, dev_nodes[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++)
		if (!strcmp(name, dev_links[i][0]))
			return true;
	return !strcmp(name, "pts") || !strcmp(name, "shm");
}

/*
 * Remove what is in dfd/dir (on the filesystem of dir itself), but the
 * names keep() keeps (NULL: none).
 */
static int empty_but(int dfd, const char *dir, bool (*keep)(const char *name))
{
	int fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	struct stat st;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fstat(dirfd(d), &st) < 0)
		return -1;
	while ((errno = 0, e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    !(keep && keep(e->d_name)) &&
		    remove_tree_at(dirfd(d), e->d_name, st.st_dev) < 0)
			return -1;
	return errno ? -1 : 0;
}

int box_dev_reset(void)
{
	/* Owned by the box's user: its programs may change their modes. */
	if (chmod("/dev", 0755) < 0 || chmod("/dev/shm", 01777) < 0 ||
	    empty_but(AT_FDCWD, "/dev/shm", NULL) < 0 || empty_but(AT_FDCWD, "/dev", dev_made_it) < 0)
		return -1;
	/* Its own names, pointing elsewhere now: made again. */
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++) {
		_cleanup_free_ char *path = xasprintf("/dev/%s", dev_links[i][0]);
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n >= 0 && (target[n] = '\0', !strcmp(target, dev_links[i][1])))
			continue;
		if (((unlink(path) < 0 && rmdir(path) < 0 && errno != ENOENT) ||
		     symlink(dev_links[i][1], path) < 0))
			return -1;
	}
	return 0;
}

static int mount_dev(const char *dev, uint64_t shm_size, struct error *err)
{
	char path[4096];

	if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return error_set(err, errno, "cannot mount /dev");
	for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
		_cleanup_free_ char *host = xasprintf("/dev/%s", dev_nodes[i]);
		snprintf(path, sizeof(path), "%s/%s", dev, dev_nodes[i]);
		if (make_target(path, S_IFREG | 0666, err) < 0 ||
		    mount_bind(host, path, false, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dev_links); i++) {
		snprintf(path, sizeof(path), "%s/%s", dev, dev_links[i][0]);
		if (symlink(dev_links[i][1], path) < 0)
			return error_set(err, errno, "cannot create '/dev/%s'", dev_links[i][0]);
	}
	snprintf(path, sizeof(path), "%s/pts", dev);
	if (mkdir(path, 0755) < 0 ||
	    mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") < 0)
		return error_set(err, errno, "cannot mount /dev/pts");
	snprintf(path, sizeof(path), "%s/shm", dev);
	/* Files in /dev/shm are memory no process's RSS shows: cap them at --memory. */
	char opts[64] = "mode=1777";
	if (shm_size)
		snprintf(opts, sizeof(opts), "mode=1777,size=%llu", (unsigned long long)shm_size);
	if (mkdir(path, 01777) < 0 || mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return error_set(err, errno, "cannot mount /dev/shm");
	return 0;
}

static int mount_entry(const struct box_root *root, const struct fsplan_entry *e,
		       const char *target, struct error *err)
{
	switch (e->kind) {
	case PLAN_SYMLINK:
		if (symlink(e->target, target) < 0)
			return error_set(err, errno, "cannot create symlink '%s'", e->path);
		return 0;
	case PLAN_DIR:
		return make_target(target, e->mode, err);
	case PLAN_OVERLAY:
		break; /* mount_overlays() */
	case PLAN_BIND_RO:
		if (make_target(target, e->mode, err) < 0)
			return -1;
		if (mount_bind(e->path, target, true, err) < 0 && !vanished(e->path, err))
			return -1;
		return 0;
	case PLAN_PROC:
		if (make_target(target, S_IFDIR | 0555, err) < 0)
			return -1;
		if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return error_set(err, errno, "cannot mount /proc");
		return 0;
	case PLAN_SYS:
		if (make_target(target, S_IFDIR | 0555, err) < 0)
			return -1;
		/* A fresh sysfs shows our own network namespace; older hosts refuse it. */
		if (mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) == 0)
			return 0;
		return mount_bind("/sys", target, true, err);
	case PLAN_DEV:
		if (make_target(target, S_IFDIR | 0755, err) < 0)
			return -1;
		return mount_dev(target, root->policy ? root->policy->memory : 0, err);
	case PLAN_TMP: {
		_cleanup_free_ char *tmp = xasprintf("%s/tmp", root->box_dir);
		if (mkdir(tmp, 01777) < 0 && errno != EEXIST)
			return error_set(err, errno, "cannot create '%s'", tmp);
		if (make_target(target, S_IFDIR | 01777, err) < 0)
			return -1;
		return mount_bind(tmp, target, false, err);
	}
	}
	return error_set(err, EINVAL, "bad plan entry for '%s'", e->path);
}

struct overlay_work {
	const struct box_root *root;
	const struct fsplan *plan;
	unsigned nested; /* this pass mounts the overlays on this many others */
	size_t next; /* next plan index to take, atomically */
	int failed;
	struct error err;
};

/*
 * The root of an overlay shows its upper dir's mode, not the host dir's: a
 * box would see /tmp as 0755 without its sticky bit, and programs that
 * check /tmp (or make files there for other users of the box) go wrong.
 * The upper dir takes the host dir's permission bits; its owner stays the
 * store's (the caller), as the box may not map the host dir's.
 */
static int layer_root_mode(const char *box_dir, const char *layer, mode_t mode,
			   struct error *err)
{
	_cleanup_free_ char *upper = xasprintf("%s/fs/%s/upper", box_dir, layer);
	struct stat st;

	if (stat(upper, &st) < 0) {
		if (errno != ENOENT || mkdir_p(upper, 0755, err) < 0 || stat(upper, &st) < 0)
			return error_set(err, errno, "cannot create '%s'", upper);
	}
	if ((st.st_mode & 07777) != (mode & 07777) && chmod(upper, mode & 07777) < 0)
		return error_set(err, errno, "cannot set the mode of '%s'", upper);
	return 0;
}

static void *overlay_worker(void *arg)
{
	struct overlay_work *w = arg;
	struct error err;

	for (;;) {
		size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		if (i >= w->plan->n || __atomic_load_n(&w->failed, __ATOMIC_RELAXED))
			return NULL;
		const struct fsplan_entry *e = &w->plan->v[i];
		if (e->kind != PLAN_OVERLAY || e->nested != w->nested)
			continue;
		_cleanup_free_ char *target = xasprintf("%s%s", w->root->newroot, e->path);
		_cleanup_free_ char *layer = layer_name_from_path(e->path);
		if ((layer_root_mode(w->root->box_dir, layer, e->mode, &err) < 0 ||
		     mount_overlay(e->path, w->root->box_dir, layer, target, &err) < 0) &&
		    !vanished(e->path, &err) &&
		    !__atomic_exchange_n(&w->failed, 1, __ATOMIC_RELAXED))
			w->err = err;
	}
}

/*
 * Overlay set-up is most of a box's start (about 0.3 ms each on ext4: the
 * kernel probes the work dir with a tmpfile, xattrs and a whiteout rename),
 * and the overlays are independent, so they are mounted on parallel threads.
 */
static int mount_overlays(const struct box_root *root, const struct fsplan *plan, unsigned nested,
			  struct error *err)
{
	struct overlay_work w = {.root = root, .plan = plan, .nested = nested};
	pthread_t threads[3];
	size_t nthreads = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	for (size_t i = 0; i + 1 < (size_t)(cpus > 0 ? cpus : 1) && i < ARRAY_SIZE(threads); i++)
		if (pthread_create(&threads[nthreads], NULL, overlay_worker, &w) == 0)
			nthreads++;
	overlay_worker(&w);
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	if (w.failed) {
		*err = w.err;
		return -1;
	}
	return 0;
}

static bool plan_kind_special(enum fsplan_kind kind)
{
	return kind == PLAN_PROC || kind == PLAN_SYS || kind == PLAN_DEV;
}

int box_root_prepare(const struct box_root *root, struct error *err)
{
	static const struct fsplan_entry special[] = {
		{.kind = PLAN_DEV, .path = "/dev"},
		{.kind = PLAN_PROC, .path = "/proc"},
	};
	_cleanup_free_ char *trash = xasprintf("%s/" BOX_TRASH, root->box_dir);

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return error_set(err, errno, "cannot make mounts private");
	if (mount("tmpfs", root->newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return error_set(err, errno, "cannot mount the box root on '%s'", root->newroot);
	if (mkdir(trash, 0700) < 0 && errno != EEXIST)
		return error_set(err, errno, "cannot create '%s'", trash);
	for (size_t i = 0; i < ARRAY_SIZE(special); i++) {
		_cleanup_free_ char *target = xasprintf("%s%s", root->newroot, special[i].path);
		if (mount_entry(root, &special[i], target, err) < 0)
			return -1;
	}
	return 0;
}

int box_root_sys(const struct box_root *root, struct error *err)
{
	static const struct fsplan_entry sys = {.kind = PLAN_SYS, .path = "/sys"};
	_cleanup_free_ char *target = xasprintf("%s/sys", root->newroot);

	return mount_entry(root, &sys, target, err);
}

/* Whether plan entry e lies below a PLAN_DIR with cow (see fsplan.h). */
static bool below_cow(const struct fsplan *plan, const struct fsplan_entry *e)
{
	for (size_t i = 0; i < plan->n; i++)
		if (plan->v[i].cow && strcmp(e->path, plan->v[i].path) &&
		    path_is_within(e->path, plan->v[i].path))
			return true;
	return false;
}

int box_root_mount(const struct box_root *root, const struct fsplan *plan, struct error *err)
{
	/* Everything but the overlays, parents first; then the overlays' mount points exist. */
	for (size_t i = 0; i < plan->n; i++) {
		const struct fsplan_entry *e = &plan->v[i];
		_cleanup_free_ char *target = xasprintf("%s%s", root->newroot, e->path);
		int r = 0;
		if (plan_kind_special(e->kind))
			continue; /* box_root_prepare() */
		if (e->kind == PLAN_BIND_RO && below_cow(plan, e))
			r = make_target(target, e->mode, err); /* bound in box_root_finish() */
		else if (e->kind != PLAN_OVERLAY)
			r = mount_entry(root, e, target, err);
		else if (!e->nested)
			r = make_target(target, S_IFDIR | 0755, err);
		if (r < 0)
			return -1;
	}
	return 0;
}

/*
 * The overlays over the skeletons of PLAN_DIRs with cow (fsplan.h), then
 * the read-only binds below them, which box_root_mount() left unmounted:
 * on the overlay they show through it, while new entries land in its upper
 * dir. Every mount point is in the skeleton, the overlay's lower layer, so
 * mounting on them copies nothing up.
 */
static int mount_cow_dirs(const struct box_root *root, const struct fsplan *plan,
			  struct error *err)
{
	for (size_t i = 0; i < plan->n; i++) {
		const struct fsplan_entry *e = &plan->v[i];
		if (!e->cow)
			continue;
		_cleanup_free_ char *target = xasprintf("%s%s", root->newroot, e->path);
		_cleanup_free_ char *layer = layer_name_from_path(e->path);
		if (layer_root_mode(root->box_dir, layer, e->mode, err) < 0 ||
		    mount_overlay(target, root->box_dir, layer, target, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < plan->n; i++) {
		const struct fsplan_entry *e = &plan->v[i];
		if (e->kind != PLAN_BIND_RO || !below_cow(plan, e))
			continue;
		_cleanup_free_ char *target = xasprintf("%s%s", root->newroot, e->path);
		if (mount_bind(e->path, target, true, err) < 0 && !vanished(e->path, err))
			return -1;
	}
	return 0;
}

int box_root_finish(const struct box_root *root, const struct fsplan *plan, struct error *err)
{
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	_cleanup_free_ char *hide = NULL;
	struct stat st;

	unsigned levels = 0;

	for (size_t i = 0; i < plan->n; i++)
		if (plan->v[i].kind == PLAN_OVERLAY && plan->v[i].nested > levels)
			levels = plan->v[i].nested;
	if (mount_cow_dirs(root, plan, err) < 0)
		return -1;
	/* Nested overlays go on top of the outer ones, on their existing dirs. */
	for (unsigned level = 0; level <= levels; level++)
		if (mount_overlays(root, plan, level, err) < 0)
			return -1;
	if (root->policy && access_apply(root->newroot, root->box_dir, root->policy, root->log_fd, err) < 0)
		return -1;
	/* The store (every box's) is an empty, read-only folder inside. */
	hide = xasprintf("%s%s", root->newroot, root->store_home);
	if (stat(hide, &st) == 0 && S_ISDIR(st.st_mode) &&
	    mount("tmpfs", hide, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=4k") < 0)
		return error_set(err, errno, "cannot hide the box store");
	if (chdir(root->newroot) < 0)
		return error_set(err, errno, "cannot enter '%s'", root->newroot);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return error_set(err, errno, "cannot pivot into the box root");
	if (umount2(".", MNT_DETACH) < 0)
		return error_set(err, errno, "cannot detach the host root");
	if (chdir("/") < 0)
		return error_set(err, errno, "cannot enter the box root");
	/* New top-level entries would live in a tmpfs the store never sees. */
	if (mount_setattr(AT_FDCWD, "/", 0, &ro, sizeof(ro)) < 0)
		return error_set(err, errno, "cannot make the box root read-only");
	return 0;
}

struct detach_work {
	char *const *paths;
	size_t n;
	size_t next; /* next path to take, atomically */
};

static void *detach_worker(void *arg)
{
	struct detach_work *w = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		if (i >= w->n)
			return NULL;
		/*
		 * The last reference goes here, so this thread runs the
		 * overlay's shutdown (its sync of the upper filesystem) on
		 * its way back from the call.
		 */
		(void)umount2(w->paths[i], MNT_DETACH);
	}
}

static void detach_parallel(char *const *paths, size_t n)
{
	struct detach_work w = {.paths = paths, .n = n};
	pthread_t threads[DETACH_THREADS];
	size_t nthreads = 0;

	for (size_t i = 0; i + 1 < n && i < ARRAY_SIZE(threads); i++)
		if (pthread_create(&threads[nthreads], NULL, detach_worker, &w) == 0)
			nthreads++;
	detach_worker(&w);
	for (size_t i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
}

/* Whether mount i of mt is an overlay on top of (below the path of) another. */
static bool overlay_on_overlay(const struct mount_table *mt, size_t i)
{
	for (size_t j = 0; j < mt->n; j++)
		if (j != i && !strcmp(mt->v[j].fstype, "overlay") &&
		    strcmp(mt->v[i].path, mt->v[j].path) && path_is_within(mt->v[i].path, mt->v[j].path))
			return true;
	return false;
}

int box_root_detach(int userns_fd, int mntns_fd)
{
	/* The box's own /proc is of its pid namespace, which this process is not in. */
	_cleanup_close_ int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ char **paths = NULL;
	struct mount_table mt;
	struct error err;
	size_t n = 0;

	if (proc < 0 || setns(userns_fd, CLONE_NEWUSER) < 0 || setns(mntns_fd, CLONE_NEWNS) < 0)
		return -1;
	text = read_file_at(proc, "thread-self/mountinfo", 64 << 20, &err);
	if (!text || mount_table_parse(&mt, text, &err) < 0)
		return -1;
	/*
	 * All at once: most of a detach is waiting (for the device to flush,
	 * for an RCU grace period), which the threads share. Inner overlays
	 * are taken first: an outer detach takes along an inner one that is
	 * still attached, whose shutdown then waits on the same thread.
	 */
	paths = xcalloc(mt.n + 1, sizeof(*paths));
	for (int inner = 1; inner >= 0; inner--)
		for (size_t i = 0; i < mt.n; i++)
			if (!strcmp(mt.v[i].fstype, "overlay") && overlay_on_overlay(&mt, i) == inner)
				paths[n++] = mt.v[i].path;
	detach_parallel(paths, n);
	mount_table_release(&mt);
	return 0;
}

int box_root_refresh(int userns_fd, int mntns_fd)
{
	_cleanup_close_ int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int status;
	pid_t pid;

	if (proc < 0 || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		_cleanup_free_ char *text = NULL;
		struct mount_table mt;
		struct error err;
		int failed = 0;
		if (setns(userns_fd, CLONE_NEWUSER) < 0 || setns(mntns_fd, CLONE_NEWNS) < 0)
			_exit(1);
		text = read_file_at(proc, "thread-self/mountinfo", 64 << 20, &err);
		if (!text || mount_table_parse(&mt, text, &err) < 0)
			_exit(1);
		for (size_t i = 0; i < mt.n; i++) {
			if (strcmp(mt.v[i].fstype, "overlay"))
				continue;
			/* Reconfiguring a superblock prunes its unused dentries. */
			int fd = fspick(AT_FDCWD, mt.v[i].path,
					FSPICK_CLOEXEC | FSPICK_SYMLINK_NOFOLLOW | FSPICK_NO_AUTOMOUNT);
			if (fd < 0 || fsconfig(fd, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0)
				failed = 1;
			if (fd >= 0)
				close(fd);
		}
		_exit(failed);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void box_trash_empty(int box_dirfd)
{
	/* Another box run may add to it meanwhile, or empty it too: both are fine. */
	(void)empty_but(box_dirfd, BOX_TRASH, NULL);
}

void box_work_release(int box_dirfd)
{
	int fd = openat(box_dirfd, "fs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	_cleanup_close_ int trash =
	    openat(box_dirfd, BOX_TRASH, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		char name[300];
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(name, sizeof(name), "%s/work", e->d_name);
		_cleanup_close_ int work =
		    openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (work < 0 || fstatat(work, "work", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		/* The owner may chmod it whatever its mode; moving a directory needs u+w on it. */
		if ((st.st_mode & 07777) != 0700 && fchmodat(work, "work", 0700, 0) < 0)
			continue;
		snprintf(name, sizeof(name), "%s.rest", e->d_name);
		if (trash >= 0)
			(void)renameat(work, "work", trash, name); /* else it stays, readable */
	}
}
