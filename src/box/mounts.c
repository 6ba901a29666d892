#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "box/mounts.h"
#include "box/store.h"
#include "policy/access.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/* The kernel explains a refused filesystem context in its log (fs_context). */
static int fs_error(int fsfd, int errnum, struct error *err, const char *what, const char *path)
{
	char log[256] = "";
	ssize_t n = read(fsfd, log, sizeof(log) - 1);

	if (n > 2 && log[1] == ' ') {
		log[n] = '\0';
		log[strcspn(log, "\n")] = '\0';
		return error_set(err, errnum, "cannot mount %s on '%s' (%s)", what, path, log + 2);
	}
	return error_set(err, errnum, "cannot mount %s on '%s'", what, path);
}

static int mount_overlay(const char *lower, const char *layer_dir, const char *target,
			 struct error *err)
{
	_cleanup_free_ char *upper = xasprintf("%s/upper", layer_dir);
	_cleanup_free_ char *work = xasprintf("%s/work", layer_dir);
	_cleanup_close_ int fsfd = -1;
	_cleanup_close_ int mfd = -1;

	if (mkdir_p(upper, 0755, err) < 0 || mkdir_p(work, 0700, err) < 0)
		return -1;
	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return error_set(err, errno, "cannot use overlayfs");
	/* "lowerdir+" (6.8) takes one path verbatim: no ':' or ',' escaping. */
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) < 0)
		return fs_error(fsfd, errno, err, "overlay", lower);
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
		return fs_error(fsfd, errno, err, "overlay", lower);
	/* Unprivileged overlays keep whiteouts and opaque dirs in user.overlay.* (5.11). */
	if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
		return fs_error(fsfd, errno, err, "overlay", lower);
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return fs_error(fsfd, errno, err, "overlay", lower);
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return error_set(err, errno, "cannot mount overlay on '%s'", lower);
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return error_set(err, errno, "cannot attach overlay on '%s'", lower);
	return 0;
}

/* Bind src on target (recursively), optionally read-only. */
int mount_bind(const char *src, const char *target, bool read_only, struct error *err)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	_cleanup_close_ int fd =
		open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

	if (fd < 0)
		return error_set(err, errno, "cannot bind '%s'", src);
	if (read_only && mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return error_set(err, errno, "cannot make '%s' read-only", src);
	if (move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return error_set(err, errno, "cannot bind '%s'", src);
	return 0;
}

int make_target(const char *target, mode_t mode, struct error *err)
{
	if (S_ISDIR(mode)) {
		if (mkdir(target, mode & 07777) < 0 && errno != EEXIST)
			return error_set(err, errno, "cannot create '%s'", target);
		return 0;
	}
	_cleanup_close_ int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return error_set(err, errno, "cannot create '%s'", target);
	return 0;
}

static int mount_dev(const char *dev, uint64_t shm_size, struct error *err)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {
		{"ptmx", "pts/ptmx"},	    {"fd", "/proc/self/fd"},
		{"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
		{"stderr", "/proc/self/fd/2"}, {"core", "/proc/kcore"},
	};
	char path[4096];

	if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return error_set(err, errno, "cannot mount /dev");
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		_cleanup_free_ char *host = xasprintf("/dev/%s", nodes[i]);
		snprintf(path, sizeof(path), "%s/%s", dev, nodes[i]);
		if (make_target(path, S_IFREG | 0666, err) < 0 ||
		    mount_bind(host, path, false, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		snprintf(path, sizeof(path), "%s/%s", dev, links[i][0]);
		if (symlink(links[i][1], path) < 0)
			return error_set(err, errno, "cannot create '/dev/%s'", links[i][0]);
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
		return mount_bind(e->path, target, true, err);
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
	bool nested; /* this pass mounts the nested overlays */
	size_t next; /* next plan index to take, atomically */
	int failed;
	struct error err;
};

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
		_cleanup_free_ char *layer_dir = xasprintf("%s/fs/%s", w->root->box_dir, layer);
		if (mount_overlay(e->path, layer_dir, target, &err) < 0 &&
		    !__atomic_exchange_n(&w->failed, 1, __ATOMIC_RELAXED))
			w->err = err;
	}
}

/*
 * Overlay set-up is most of a box's start (about 0.3 ms each on ext4: the
 * kernel probes the work dir with a tmpfile, xattrs and a whiteout rename),
 * and the overlays are independent, so they are mounted on parallel threads.
 */
static int mount_overlays(const struct box_root *root, const struct fsplan *plan, bool nested,
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

int box_root_mount(const struct box_root *root, const struct fsplan *plan, struct error *err)
{
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	_cleanup_free_ char *hide = NULL;
	struct stat st;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return error_set(err, errno, "cannot make mounts private");
	if (mount("tmpfs", root->newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return error_set(err, errno, "cannot mount the box root on '%s'", root->newroot);
	/* Everything but the overlays, parents first; then the overlays' mount points exist. */
	for (size_t i = 0; i < plan->n; i++) {
		_cleanup_free_ char *target = xasprintf("%s%s", root->newroot, plan->v[i].path);
		int r = 0;
		if (plan->v[i].kind != PLAN_OVERLAY)
			r = mount_entry(root, &plan->v[i], target, err);
		else if (!plan->v[i].nested)
			r = make_target(target, S_IFDIR | 0755, err);
		if (r < 0)
			return -1;
	}
	/* Nested overlays go on top of the outer ones, on their existing dirs. */
	if (mount_overlays(root, plan, false, err) < 0 || mount_overlays(root, plan, true, err) < 0)
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

int net_loopback_up(struct error *err)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return error_set(err, errno, "cannot open a socket");
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return error_set(err, errno, "cannot read the loopback interface");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return error_set(err, errno, "cannot bring up the loopback interface");
	return 0;
}
