#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box/overlay.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

char *overlay_escape(const char *path)
{
	size_t n = 0;

	for (const char *p = path; *p; p++)
		n += strchr("\\:,", *p) ? 2 : 1;
	char *out = xmalloc(n + 1), *d = out;
	for (const char *p = path; *p; p++) {
		if (strchr("\\:,", *p))
			*d++ = '\\';
		*d++ = *p;
	}
	*d = '\0';
	return out;
}

/* mount(2) copies at most one page of data; 4096 bytes is the smallest page. */
#define MOUNT_DATA_MAX 4096

char *overlay_legacy_options(const char *lower, const char *upper, const char *work,
			     struct error *err)
{
	_cleanup_free_ char *l = overlay_escape(lower);
	_cleanup_free_ char *u = overlay_escape(upper);
	_cleanup_free_ char *w = overlay_escape(work);
	char *data = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", l, u, w);

	if (strlen(data) >= MOUNT_DATA_MAX) {
		free(data);
		error_set(err, ENAMETOOLONG, "cannot mount overlay on '%s': its options are too long",
			  lower);
		return NULL;
	}
	return data;
}

static bool legacy;
static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;

static bool probe_legacy(void)
{
	const char *force = getenv("HUTCH_TEST_LEGACY_OVERLAY");
	_cleanup_close_ int fd = -1;

	if (force && !strcmp(force, "1"))
		return true;
	fd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fd < 0)
		return false; /* the mount itself will say why */
	/* 6.5 to 6.7: overlayfs parses its options, and knows no "lowerdir+". */
	if (fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", "/", 0) < 0)
		return errno == EINVAL;
	/*
	 * Before 6.5 the VFS's legacy context takes any key and hands the
	 * lot to overlayfs at FSCONFIG_CMD_CREATE, which refuses "lowerdir+"
	 * there. A key no kernel knows tells that context from overlayfs's.
	 */
	return fsconfig(fd, FSCONFIG_SET_STRING, "hutch-probe", "1", 0) == 0;
}

static void decide_legacy(void)
{
	legacy = probe_legacy();
}

bool overlay_legacy(void)
{
	pthread_once(&legacy_once, decide_legacy);
	return legacy;
}

int overlay_legacy_probe_detached(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			_exit(2);
		_exit(probe_legacy() ? 1 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
		return -1;
	return WEXITSTATUS(status);
}

/* The kernel explains a refused filesystem context in its log (fs_context). */
static int fs_error(int fsfd, int errnum, struct error *err, const char *path)
{
	char log[256] = "";
	ssize_t n = read(fsfd, log, sizeof(log) - 1);

	if (n > 2 && log[1] == ' ') {
		log[n] = '\0';
		log[strcspn(log, "\n")] = '\0';
		return error_set(err, errnum, "cannot mount overlay on '%s' (%s)", path, log + 2);
	}
	return error_set(err, errnum, "cannot mount overlay on '%s'", path);
}

static int mount_legacy(const char *lower, const char *upper, const char *work,
			const char *target, struct error *err)
{
	_cleanup_free_ char *data = overlay_legacy_options(lower, upper, work, err);

	if (!data)
		return -1;
	if (mount("overlay", target, "overlay", 0, data) < 0)
		return error_set(err, errno, "cannot mount overlay on '%s'", lower);
	return 0;
}

int overlay_mount(const char *lower, const char *upper, const char *work, const char *target,
		  struct error *err)
{
	_cleanup_free_ char *u = NULL;
	_cleanup_free_ char *w = NULL;
	_cleanup_close_ int fsfd = -1;
	_cleanup_close_ int mfd = -1;

	if (overlay_legacy())
		return mount_legacy(lower, upper, work, target, err);
	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return error_set(err, errno, "cannot use overlayfs");
	/* "lowerdir+" takes one path verbatim; upperdir and workdir are unescaped. */
	u = overlay_escape(upper);
	w = overlay_escape(work);
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", u, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", w, 0) < 0)
		return fs_error(fsfd, errno, err, lower);
	/* Unprivileged overlays keep whiteouts and opaque dirs in user.overlay.* (5.11). */
	if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
		return fs_error(fsfd, errno, err, lower);
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return fs_error(fsfd, errno, err, lower);
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return error_set(err, errno, "cannot mount overlay on '%s'", lower);
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return error_set(err, errno, "cannot attach overlay on '%s'", lower);
	return 0;
}
