#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "box/control.h"
#include "box/store.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static char *default_home(struct error *err)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		return xasprintf("%s/hutch", xdg);
	if (home && home[0] == '/')
		return xasprintf("%s/.local/share/hutch", home);
	error_set(err, 0, "cannot find the box store: set HUTCH_HOME or HOME to an absolute path");
	return NULL;
}

int store_init(struct store *store, struct error *err)
{
	const char *env = getenv("HUTCH_HOME");

	store->home = NULL;
	if (env && *env) {
		if (env[0] != '/')
			return error_set(err, 0, "HUTCH_HOME must be an absolute path, not '%s'", env);
		store->home = xstrdup(env);
	} else if (!(store->home = default_home(err))) {
		return -1;
	}
	return 0;
}

int store_create(struct store *store, struct error *err)
{
	_cleanup_free_ char *boxes = xasprintf("%s/boxes", store->home);
	char *real;

	if (mkdir_p(boxes, 0700, err) < 0)
		return error_prefix(err, "cannot create the box store");
	/* Boxes hide the store by its real path, so resolve symlinks once here. */
	real = realpath(store->home, NULL);
	if (!real)
		return error_set(err, errno, "cannot resolve the box store '%s'", store->home);
	free(store->home);
	store->home = real;
	return 0;
}

void store_release(struct store *store)
{
	free(store->home);
	store->home = NULL;
}

int store_check_fs(const struct store *store, struct error *err)
{
	_cleanup_free_ char *dir = xstrdup(store->home);
	_cleanup_free_ char *probe = NULL;
	struct stat st;
	int r, e;

	/* Probe where the store is or would be created, creating nothing that stays. */
	while (stat(dir, &st) < 0) {
		char *slash = strrchr(dir, '/');
		if (errno != ENOENT || !slash)
			return error_set(err, errno, "cannot use the box store '%s'", store->home);
		slash[slash == dir] = '\0';
	}
	probe = xasprintf("%s/.hutch-probe-XXXXXX", strcmp(dir, "/") ? dir : "");
	if (!mkdtemp(probe))
		return error_set(err, errno, "cannot write to the box store '%s'", store->home);
	r = setxattr(probe, "user.hutch.probe", "1", 1, 0);
	e = errno;
	rmdir(probe);
	if (r < 0 && (e == ENOTSUP || e == EOPNOTSUPP))
		return error_set(err, 0,
				 "the box store '%s' is on a filesystem without user extended "
				 "attributes, which overlayfs needs: set HUTCH_HOME to a folder on "
				 "ext4, xfs, btrfs or tmpfs",
				 store->home);
	if (r < 0)
		return error_set(err, e, "cannot set a user xattr in the box store '%s'",
				 store->home);
	return 0;
}

int box_name_check(const char *name, struct error *err)
{
	size_t len = strlen(name);

	if (len == 0)
		return error_set(err, 0, "invalid box name '': it is empty");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return error_set(err, 0, "invalid box name: it contains a control character");
	}
	if (len > BOX_NAME_MAX)
		return error_set(err, 0, "invalid box name '%.16s...': longer than %d characters",
				 name, BOX_NAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return error_set(err, 0, "invalid box name '%s': '.' and '..' are not names",
				 name);
	if (strchr(name, '/'))
		return error_set(err, 0, "invalid box name '%s': it contains '/'", name);
	if (name[0] == '.' || name[0] == '-')
		return error_set(err, 0, "invalid box name '%s': it must not start with '%c'",
				 name, name[0]);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("._+@-", c);
		if (!ok)
			return error_set(err, 0,
					 "invalid box name '%s': '%c' is not allowed (use letters, "
					 "digits and . _ + @ -)",
					 name, c);
	}
	return 0;
}

bool store_box_exists(const struct store *store, const char *name)
{
	_cleanup_free_ char *dir = store_box_dir(store, name);
	return access(dir, F_OK) == 0;
}

char *store_box_dir(const struct store *store, const char *name)
{
	return xasprintf("%s/boxes/%s", store->home, name);
}

char *layer_name_from_path(const char *host_path)
{
	size_t len = strlen(host_path);
	char *out = xmalloc(3 * len + 1), *o = out;

	while (*host_path == '/')
		host_path++;
	for (const char *p = host_path; *p; p++) {
		if (*p == '%' || *p == '/') {
			*o++ = '%';
			*o++ = '2';
			*o++ = *p == '%' ? '5' : 'F';
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

char *layer_path_from_name(const char *layer)
{
	size_t len = strlen(layer);
	char *out = xmalloc(len + 2), *o = out;

	if (len == 0 || !strcmp(layer, ".") || !strcmp(layer, "..")) {
		free(out);
		return NULL;
	}
	*o++ = '/';
	for (const char *p = layer; *p; p++) {
		if (*p == '/') {
			free(out);
			return NULL;
		}
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		if (!strncmp(p, "%25", 3)) {
			*o++ = '%';
		} else if (!strncmp(p, "%2F", 3)) {
			*o++ = '/';
		} else {
			free(out);
			return NULL;
		}
		p += 2;
	}
	*o = '\0';
	return out;
}

static const char *const lock_names[] = {"running", "mounted", "setup", "refresh"};

int box_lock_open_at(int box_dirfd, enum box_lock which)
{
	return openat(box_dirfd, lock_names[which], O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);
}

int box_lock(const char *box_dir, enum box_lock which, enum box_lock_mode mode, int timeout_ms,
	     struct error *err)
{
	int op = (mode == BOX_LOCK_SHARED ? LOCK_SH : LOCK_EX) | LOCK_NB;
	_cleanup_free_ char *path = xasprintf("%s/%s", box_dir, lock_names[which]);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct timespec pause = {.tv_nsec = 100 * 1000};
	long waited_ns = 0;

	if (fd < 0)
		return error_set(err, errno, "cannot open the lock '%s'", path);
	/* Polled, not blocking: a stuck holder must not hang hutch for ever. */
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || (timeout_ms >= 0 && waited_ns >= (long)timeout_ms * 1000000))
			return error_set(err, errno, "cannot lock '%s'", path);
		nanosleep(&pause, NULL);
		waited_ns += pause.tv_nsec;
		if (pause.tv_nsec < 10 * 1000 * 1000)
			pause.tv_nsec *= 2;
	}
	return steal_fd(&fd);
}

int box_lock_idle(const char *box_dir, const char *name, struct box_idle_lock *lock,
		  struct error *err)
{
	lock->running = box_lock(box_dir, BOX_LOCK_RUNNING, BOX_LOCK_EXCLUSIVE, 0, err);
	lock->mounted = -1;
	if (lock->running < 0) {
		if (err->errnum == EWOULDBLOCK)
			error_set(err, 0, "box '%s' is running: stop its programs first", name);
		return -1;
	}
	/* No run holds the box: if it lingers after its last program, end it now. */
	control_end_idle(box_dir);
	lock->mounted = box_lock(box_dir, BOX_LOCK_MOUNTED, BOX_LOCK_EXCLUSIVE, 10000, err);
	if (lock->mounted < 0) {
		box_unlock_idle(lock);
		if (err->errnum == EWOULDBLOCK)
			error_set(err, 0, "box '%s' is still being unmounted after 10 s", name);
		return -1;
	}
	return 0;
}

void box_unlock_idle(struct box_idle_lock *lock)
{
	if (lock->running >= 0)
		close(lock->running);
	if (lock->mounted >= 0)
		close(lock->mounted);
	lock->running = lock->mounted = -1;
}

/* The profile the box was made with, remembered in its directory. */
char *store_box_profile(const struct store *store, const char *name)
{
	_cleanup_free_ char *dir = store_box_dir(store, name);
	_cleanup_free_ char *path = xasprintf("%s/profile", dir);
	struct error ignored;
	char *s = read_file(path, 256, &ignored);

	if (s)
		s[strcspn(s, "\n")] = '\0';
	if (s && !*s) {
		free(s);
		s = NULL;
	}
	return s;
}

void store_box_remember_profile(const struct store *store, const char *name, const char *profile)
{
	_cleanup_free_ char *dir = store_box_dir(store, name);
	_cleanup_free_ char *path = xasprintf("%s/profile", dir);
	_cleanup_free_ char *tmp = xasprintf("%s/.profile.tmp", dir);
	_cleanup_free_ char *line = xasprintf("%s\n", profile);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return;
	if (write_all(fd, line, strlen(line)) == 0 && fsync(fd) == 0)
		rename(tmp, path);
	close(fd);
}
