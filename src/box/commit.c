#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "box/commit.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/*
 * Why commit cannot be made to write where it should not.
 *
 * The threats: the box is untrusted, so any entry in its upper dir may be a
 * symlink pointing anywhere (/etc, ../..); and while commit runs, anyone
 * who may write in a host directory on the way may swap an entry for a
 * symlink (the CVE-2021-26910 kind of race that ended firejail's overlay).
 * A path string resolved twice is therefore never trusted:
 *  - the box's copy is read through an fd opened with RESOLVE_BENEATH |
 *    RESOLVE_NO_SYMLINKS from its upper dir, final name O_NOFOLLOW; a box
 *    symlink is read with readlinkat() and recreated with symlinkat(): its
 *    text is copied, never resolved;
 *  - each layer's host dir is opened with RESOLVE_NO_SYMLINKS, and the
 *    parent of each target, afresh for each change, with HOST_RESOLVE below
 *    it: a symlink anywhere on the way fails the lookup (ELOOP) instead of
 *    being followed, ".." cannot climb out, a new mount is not entered;
 *  - on that parent fd, only the final name is acted on, by calls that do
 *    not follow it: new entries are made under a fresh name (O_CREAT|O_EXCL,
 *    symlinkat, mknodat, mkdirat all fail on an existing name, symlink or
 *    not) and renamed over the target, and rename(2) replaces the target
 *    entry itself, whatever it is; unlinkat, fchownat and chmod_at do not
 *    follow either;
 *  - a tree is removed through fds: fstatat without following, openat with
 *    O_NOFOLLOW | O_DIRECTORY, never across a mount (remove_tree_at).
 * An entry swapped in at the last moment is thus replaced or removed, never
 * written through. The checks (conflicts, permissions) run before anything
 * changes, and conflicts again just before each change; a change that still
 * fails then stops the commit, each file being entirely old or new.
 */

#define TEMP_PREFIX ".hutch-commit-"
#define TEMP_RANDOM 12
#define TREE_DEPTH_MAX 2048
#define COPY_CHUNK (1 << 20)

/*
 * Below a layer's host dir: no symlink of any kind (one planted by the box
 * in its copy is recreated as a symlink, never followed; one swapped into
 * the host tree during the commit makes the lookup fail), no escape by
 * ".." and no other mount (the box's layer covered one filesystem when it
 * ran: a mount that appeared below since is not what the box changed).
 */
#define HOST_RESOLVE                                                                               \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
/* Below an upper dir in the store: the box's symlinks are data, not paths. */
#define UPPER_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/*
 * The directory opened last on one side, kept for the next change: changes
 * come sorted by path, so thousands of files in one folder open it once.
 * The fd stays the directory that was checked when opened (a later swap of
 * its path for a symlink does not redirect it), as a fresh open would be.
 */
struct parent_cache {
	size_t layer;
	char *rel; /* NULL: empty */
	int fd;
	int move_ok; /* may_move_*() of this dir: -1 not asked yet, else 0 or 1 */
};

struct ctx {
	const struct changes *ch;
	const struct commit_opts *opts;
	int *host_root; /* per layer: fd, or -1 before the first use */
	int *upper_root;
	struct parent_cache host_dir, upper_dir;
	char **cleaned; /* host dirs whose leftovers are gone */
	size_t ncleaned;
	uid_t euid;
	bool tmpfile_ok; /* O_TMPFILE files can be linked in (/proc is there) */
	signed char *same_fs; /* per layer: upper and host dir on one filesystem; -1 unknown */
};

/* openat2(2); glibc 2.36 has no wrapper. EAGAIN: a concurrent rename raced "..". */
static int open_how(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve};
	int fd, tries = 0;

	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 16);
	return fd;
}

static void ctx_init(struct ctx *x, const struct changes *ch, const struct commit_opts *opts)
{
	*x = (struct ctx){.ch = ch, .opts = opts, .euid = geteuid()};
	x->host_dir.fd = x->upper_dir.fd = -1;
	x->tmpfile_ok = x->euid == 0 || access("/proc/self/fd", X_OK) == 0;
	x->same_fs = xmalloc(ch->nlayers + 1);
	memset(x->same_fs, -1, ch->nlayers + 1);
	x->host_root = xmalloc((ch->nlayers + 1) * sizeof(int));
	x->upper_root = xmalloc((ch->nlayers + 1) * sizeof(int));
	for (size_t i = 0; i < ch->nlayers; i++)
		x->host_root[i] = x->upper_root[i] = -1;
}

static void cache_drop(struct parent_cache *pc)
{
	if (pc->fd >= 0)
		close(pc->fd);
	free(pc->rel);
	pc->fd = -1;
	pc->rel = NULL;
	pc->move_ok = -1;
}

static void ctx_release(struct ctx *x)
{
	cache_drop(&x->host_dir);
	cache_drop(&x->upper_dir);
	for (size_t i = 0; i < x->ch->nlayers; i++) {
		if (x->host_root[i] >= 0)
			close(x->host_root[i]);
		if (x->upper_root[i] >= 0)
			close(x->upper_root[i]);
	}
	for (size_t i = 0; i < x->ncleaned; i++)
		free(x->cleaned[i]);
	free(x->cleaned);
	free(x->host_root);
	free(x->upper_root);
	free(x->same_fs);
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/*
 * chmod of dfd/name that never follows a symlink: fchmodat2 (Linux 6.6),
 * else glibc's emulation (through an O_PATH fd and /proc/self/fd).
 */
static int chmod_at(int dfd, const char *name, mode_t mode)
{
	if (syscall(SYS_fchmodat2, dfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	return fchmodat(dfd, name, mode, AT_SYMLINK_NOFOLLOW);
}

/* The layer's host dir, reached without following any symlink. */
static int host_root(struct ctx *x, size_t layer)
{
	if (x->host_root[layer] < 0)
		x->host_root[layer] =
		    open_how(AT_FDCWD, x->ch->layers[layer].host, O_PATH | O_DIRECTORY,
			     RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	return x->host_root[layer];
}

/* The store is the user's own and the box is locked: its path is trusted. */
static int upper_root(struct ctx *x, size_t layer)
{
	if (x->upper_root[layer] < 0)
		x->upper_root[layer] =
		    open(x->ch->layers[layer].upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return x->upper_root[layer];
}

/* "a/b/c" -> parent "a/b", name "c"; "c" -> ".", "c". */
static char *split_rel(const char *rel, const char **name)
{
	const char *slash = strrchr(rel, '/');

	*name = slash ? slash + 1 : rel;
	return slash ? xasprintf("%.*s", (int)(slash - rel), rel) : xstrdup(".");
}

static char *parent_path(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash == path ? xstrdup("/") : xasprintf("%.*s", (int)(slash - path), path);
}

/* The directory rel's parent below root, from the cache or opened with resolve. */
static int cached_parent(struct parent_cache *pc, int root, size_t layer, const char *rel,
			 const char **name, uint64_t resolve)
{
	char *parent = split_rel(rel, name);

	if (pc->rel && pc->layer == layer && !strcmp(pc->rel, parent)) {
		free(parent);
		return pc->fd;
	}
	cache_drop(pc);
	if (root < 0) {
		free(parent);
		return -1;
	}
	pc->fd = open_how(root, parent, O_PATH | O_DIRECTORY, resolve);
	if (pc->fd < 0) {
		int e = errno;
		free(parent);
		errno = e;
		return -1;
	}
	pc->layer = layer;
	pc->rel = parent;
	pc->move_ok = -1;
	return pc->fd;
}

/*
 * The host directory holding c, as an O_PATH fd owned by x (valid until
 * the next host_parent call); -1 with errno.
 */
static int host_parent(struct ctx *x, const struct change *c, const char **name)
{
	return cached_parent(&x->host_dir, host_root(x, c->layer), c->layer, c->rel, name,
			     HOST_RESOLVE);
}

/* The same in the box's upper dir, from a cache of its own. */
static int upper_parent(struct ctx *x, const struct change *c, const char **name)
{
	return cached_parent(&x->upper_dir, upper_root(x, c->layer), c->layer, c->rel, name,
			     UPPER_RESOLVE);
}

static bool ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* The change makes a directory where the host has none (or a non-directory). */
static bool creates_dir(const struct change *c)
{
	return c->kind == KIND_DIR && c->type != CHANGE_DELETED &&
	       (c->host_mode == 0 || !S_ISDIR(c->host_mode));
}

/*
 * Open the box's copy of a file for reading. A box may leave a file of its
 * own unreadable (chmod 000): its owner may grant itself read access for
 * the moment, as the box is locked; the mode is put back at once.
 */
static int open_upper_file(struct ctx *x, const struct change *c)
{
	const char *name;
	int dfd = upper_parent(x, c, &name);
	int fd, e;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES || c->upper_uid != x->euid)
		return fd;
	if (chmod_at(dfd, name, (c->upper_mode & 07777) | S_IRUSR) < 0)
		return errno = EACCES, -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	e = errno;
	chmod_at(dfd, name, c->upper_mode & 07777);
	errno = e;
	return fd;
}

/* Whether the box's copy of c can be read as it is: no open needed to know. */
static bool upper_readable(struct ctx *x, const struct change *c)
{
	const char *name;
	int dfd = upper_parent(x, c, &name);

	return dfd >= 0 && faccessat(dfd, name, R_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) == 0;
}

static bool fds_equal(int a, int b)
{
	_cleanup_free_ char *ba = xmalloc(65536);
	_cleanup_free_ char *bb = xmalloc(65536);

	for (;;) {
		ssize_t na = read_all(a, ba, 65536), nb = read_all(b, bb, 65536);
		if (na < 0 || na != nb || memcmp(ba, bb, (size_t)na))
			return false;
		if (na == 0)
			return true;
	}
}

static bool read_link(int dfd, const char *name, char *buf, size_t size, size_t *len)
{
	ssize_t n = readlinkat(dfd, name, buf, size);
	if (n < 0 || (size_t)n >= size)
		return false;
	*len = (size_t)n;
	return true;
}

/*
 * Whether the host entry hst (name in the host dir hdfd) already holds what
 * the box has: then overwriting it loses nothing. Directories count as
 * equal (a directory's entries are changes of their own). So a directory's
 * mode is committed without a conflict check: its ctime moves with every
 * entry added or removed in it (by this very commit too, which would make
 * a commit killed half-way conflict with itself), so it cannot tell a host
 * chmod from a busy directory.
 */
static bool content_equal(struct ctx *x, const struct change *c, int hdfd, const char *name,
			  const struct stat *hst)
{
	if (c->type == CHANGE_DELETED)
		return false;
	if ((hst->st_mode & S_IFMT) != (c->upper_mode & S_IFMT))
		return false;
	if (c->kind == KIND_FILE) {
		_cleanup_close_ int u = -1;
		_cleanup_close_ int h = -1;
		if ((unsigned long long)hst->st_size != c->size)
			return false;
		u = open_upper_file(x, c);
		h = openat(hdfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		return u >= 0 && h >= 0 && fds_equal(u, h);
	}
	if (c->kind == KIND_SYMLINK) {
		char a[4096], b[4096];
		size_t na, nb;
		const char *uname;
		int udfd = upper_parent(x, c, &uname);
		return udfd >= 0 && read_link(udfd, uname, a, sizeof(a), &na) &&
		       read_link(hdfd, name, b, sizeof(b), &nb) && na == nb && !memcmp(a, b, na);
	}
	return true;
}

/* What a host tree about to be removed holds that matters. */
struct tree_scan {
	struct timespec taken;
	bool newer;  /* some entry changed after the box took its copy */
	int errnum;  /* the first reason it cannot be removed, 0 if none */
	char *where; /* ... and where, relative to the tree's parent */
};

static void tree_note(struct tree_scan *t, int errnum, const char *rel)
{
	if (t->errnum)
		return;
	t->errnum = errnum;
	t->where = xstrdup(rel);
}

static void tree_scan(int dfd, const char *name, const char *rel, dev_t dev, struct tree_scan *t,
		      int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	struct stat st;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			tree_note(t, errno, rel);
		return;
	}
	if (ts_after(&st.st_ctim, &t->taken))
		t->newer = true;
	if (!S_ISDIR(st.st_mode))
		return;
	if (st.st_dev != dev) /* a mount point: hutch never removes across one */
		return tree_note(t, EBUSY, rel);
	if (depth > TREE_DEPTH_MAX)
		return tree_note(t, ELOOP, rel);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return tree_note(t, errno, rel);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return tree_note(t, errno, rel);
	}
	if (faccessat(dirfd(d), ".", W_OK | X_OK, AT_EACCESS) < 0)
		tree_note(t, errno, rel);
	while ((e = readdir(d))) {
		_cleanup_free_ char *crel = NULL;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		crel = xasprintf("%s/%s", rel, e->d_name);
		tree_scan(dirfd(d), e->d_name, crel, dev, t, depth + 1);
	}
}


static void temp_name(char buf[sizeof(TEMP_PREFIX) + TEMP_RANDOM])
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[TEMP_RANDOM];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)random();
	memcpy(buf, TEMP_PREFIX, sizeof(TEMP_PREFIX) - 1);
	for (size_t i = 0; i < TEMP_RANDOM; i++)
		buf[sizeof(TEMP_PREFIX) - 1 + i] = chars[rnd[i] % (sizeof(chars) - 1)];
	buf[sizeof(TEMP_PREFIX) - 1 + TEMP_RANDOM] = '\0';
}

bool commit_is_temp_name(const char *name)
{
	size_t n = sizeof(TEMP_PREFIX) - 1;

	if (strncmp(name, TEMP_PREFIX, n) || strlen(name) != n + TEMP_RANDOM)
		return false;
	for (const char *p = name + n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

/*
 * Remove what killed commits left in the host dir dfd: a temporary file is
 * removed only if no commit holds its lock (one being written right now by
 * a concurrent commit stays); a renamed-away tree was to be removed anyway.
 */
static void clean_leftovers(struct ctx *x, int dfd, const char *display)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	struct stat st;
	int fd;

	for (size_t i = 0; i < x->ncleaned; i++)
		if (!strcmp(x->cleaned[i], display))
			return;
	x->cleaned = xrealloc(x->cleaned, (x->ncleaned + 1) * sizeof(*x->cleaned));
	x->cleaned[x->ncleaned++] = xstrdup(display);

	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return; /* a dir we may write but not list keeps its leftovers */
	}
	while ((e = readdir(d))) {
		struct stat est;
		if (!commit_is_temp_name(e->d_name) ||
		    fstatat(dirfd(d), e->d_name, &est, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(est.st_mode)) {
			_cleanup_close_ int f = openat(
			    dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (f >= 0 && flock(f, LOCK_EX | LOCK_NB) == 0)
				unlinkat(dirfd(d), e->d_name, 0);
		} else if (S_ISDIR(est.st_mode)) {
			remove_tree_at(dirfd(d), e->d_name, st.st_dev);
		} else {
			unlinkat(dirfd(d), e->d_name, 0);
		}
	}
}

/* Make the renames in the host dir dfd durable; a dir we cannot read stays unsynced. */
static void sync_dir(int dfd)
{
	_cleanup_close_ int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		fsync(fd);
}

static int add_problem(struct commit_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_problem(struct commit_problems *p, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		abort();
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n++] = s;
	return 0;
}

void commit_problems_release(struct commit_problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	*p = (struct commit_problems){0};
}

static const char *host_open_reason(int errnum)
{
	switch (errnum) {
	case ELOOP:
		return "it is a symlink on the host, or lies below one";
	case EXDEV:
		return "it lies on another filesystem than the box's layer";
	case ENOENT:
	case ENOTDIR:
		return "it is gone from the host";
	default:
		return strerror(errnum);
	}
}

static void conflict_msg(struct ctx *x, const struct change *c, struct commit_problems *p,
			 struct error *err)
{
	static const char fmt[] =
	    "conflict: '%s' changed on the host after box '%s' copied it (use --force to "
	    "overwrite)";
	if (p)
		add_problem(p, fmt, c->path, x->opts->box);
	else
		error_set(err, 0, fmt, c->path, x->opts->box);
}

/*
 * Whether committing c would overwrite a host change the box never saw: the
 * host entry (or, for a tree about to be removed, any entry in it) changed
 * after the box took its copy, and does not already hold the box's content.
 * The latter makes a commit that was killed half-way safe to run again.
 */
static bool is_conflict(struct ctx *x, const struct change *c, int hdfd, const char *name,
			const struct stat *hst)
{
	bool newer = ts_after(&hst->st_ctim, &c->taken);

	if (!newer && S_ISDIR(hst->st_mode) && (c->type == CHANGE_DELETED || c->kind != KIND_DIR)) {
		struct tree_scan t = {.taken = c->taken};
		tree_scan(hdfd, name, name, hst->st_dev, &t, 0);
		free(t.where);
		newer = t.newer || t.errnum;
	}
	return newer && !content_equal(x, c, hdfd, name, hst);
}

/* Every check that can be made before anything changes, for one change. */
static void check_one(struct ctx *x, const struct change *c, bool parent_planned,
		      struct commit_problems *p)
{
	_cleanup_free_ char *parent = parent_path(c->path);
	int hdfd = -1;
	const char *name;
	struct stat hst, pst;
	bool exists;

	/*
	 * Fifos are committed (mkfifo is anyone's); a socket is only a name for
	 * a server that is gone; a device node no box can make (mknod needs
	 * CAP_MKNOD on the host), so one in the store was put there from outside.
	 */
	if (c->type != CHANGE_DELETED && c->kind == KIND_OTHER && !S_ISFIFO(c->upper_mode)) {
		add_problem(p, "cannot commit '%s': it is a %s, and hutch commits none (name the "
			    "other PATHs to commit them, or reset the box)",
			    c->path, S_ISSOCK(c->upper_mode) ? "socket" : "device node");
		return;
	}
	if (c->type != CHANGE_DELETED && c->flags && !x->opts->allow_setuid) {
		char what[64];
		snprintf(what, sizeof(what), "%s%s%s%s%s",
			 c->flags & CHANGE_SETUID ? "setuid" : "",
			 (c->flags & CHANGE_SETUID) && (c->flags & CHANGE_SETGID) ? " and " : "",
			 c->flags & CHANGE_SETGID ? "setgid" : "",
			 (c->flags & (CHANGE_SETUID | CHANGE_SETGID)) && (c->flags & CHANGE_CAPS)
			     ? ", with "
			     : "",
			 c->flags & CHANGE_CAPS ? "file capabilities" : "");
		add_problem(p,
			    "cannot commit '%s': the box made it %s%s (commit it with "
			    "--allow-setuid if you trust it)",
			    c->path, c->flags & (CHANGE_SETUID | CHANGE_SETGID) ? "" : "carry ", what);
		return;
	}
	if (c->type != CHANGE_DELETED && (c->flags & CHANGE_CAPS) && x->euid != 0) {
		add_problem(p, "cannot commit '%s': it carries file capabilities, which only root "
			    "can give on the host", c->path);
		return;
	}
	if (c->type != CHANGE_DELETED && c->kind == KIND_FILE && !upper_readable(x, c)) {
		_cleanup_close_ int fd = open_upper_file(x, c);
		if (fd < 0) {
			add_problem(p, "cannot commit '%s': cannot read the box's copy: %s",
				    c->path, strerror(errno));
			return;
		}
	}
	if (parent_planned) /* made by this commit: nothing on the host to check */
		return;
	hdfd = host_parent(x, c, &name);
	if (hdfd < 0) {
		add_problem(p, "cannot commit '%s': cannot open '%s': %s", c->path, parent,
			    host_open_reason(errno));
		return;
	}
	if (fstat(hdfd, &pst) < 0) {
		add_problem(p, "cannot commit '%s': cannot stat '%s': %s", c->path, parent,
			    strerror(errno));
		return;
	}
	exists = fstatat(hdfd, name, &hst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!exists && errno != ENOENT) {
		add_problem(p, "cannot commit '%s': %s", c->path, strerror(errno));
		return;
	}
	if (!exists && c->type == CHANGE_DELETED)
		return; /* gone already */

	if (exists && S_ISDIR(hst.st_mode) && c->kind == KIND_DIR && c->type != CHANGE_DELETED) {
		/* Only the mode changes: that needs the directory's owner. */
		if (x->euid != 0 && hst.st_uid != x->euid) {
			add_problem(p,
				    "cannot commit '%s': cannot change the mode of a directory "
				    "owned by uid %u: %s",
				    c->path, (unsigned)hst.st_uid, strerror(EPERM));
			return;
		}
	} else {
		/* Checked as the caller (AT_EACCESS): hutch may not write for anyone else. */
		if (faccessat(hdfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
			add_problem(p, "cannot commit '%s': cannot write to '%s': %s", c->path,
				    parent, strerror(errno));
			return;
		}
		/* In a sticky dir (/tmp), only an entry's owner may replace or remove it. */
		if (exists && (pst.st_mode & S_ISVTX) && x->euid != 0 && hst.st_uid != x->euid &&
		    pst.st_uid != x->euid) {
			add_problem(p,
				    "cannot commit '%s': it belongs to uid %u in the sticky "
				    "directory '%s': %s",
				    c->path, (unsigned)hst.st_uid, parent, strerror(EPERM));
			return;
		}
	}
	if (exists && S_ISDIR(hst.st_mode) && (c->type == CHANGE_DELETED || c->kind != KIND_DIR)) {
		struct tree_scan t = {.taken = c->taken};
		tree_scan(hdfd, name, name, pst.st_dev, &t, 0);
		if (t.errnum) {
			add_problem(p, "cannot commit '%s': cannot remove '%s/%s': %s", c->path,
				    strcmp(parent, "/") ? parent : "", t.where, strerror(t.errnum));
			free(t.where);
			return;
		}
		free(t.where);
	}
	if (exists && !x->opts->force && is_conflict(x, c, hdfd, name, &hst))
		conflict_msg(x, c, p, NULL);
}

/* Whether the parent of c is a directory that this commit creates. */
static bool parent_planned(const struct changes *ch, const bool *selected, const struct change *c)
{
	_cleanup_free_ char *parent = parent_path(c->path);
	ssize_t i = changes_find(ch, parent);

	return i >= 0 && selected[i] && creates_dir(&ch->v[i]);
}

int commit_check(const struct changes *ch, bool *selected, const struct commit_opts *opts,
		 struct commit_problems *problems, struct error *err)
{
	struct ctx x;

	*problems = (struct commit_problems){0};
	/*
	 * A change below a directory the host lacks needs that directory: it
	 * is committed too (mkdir -p), whatever the PATH arguments say.
	 */
	for (size_t i = 0; i < ch->n; i++) {
		_cleanup_free_ char *p = NULL;
		if (!selected[i])
			continue;
		p = parent_path(ch->v[i].path);
		while (path_is_within(p, ch->layers[ch->v[i].layer].path) &&
		       strcmp(p, ch->layers[ch->v[i].layer].path)) {
			ssize_t j = changes_find(ch, p);
			char *up;
			if (j >= 0 && creates_dir(&ch->v[j]))
				selected[j] = true;
			up = parent_path(p);
			free(p);
			p = up;
		}
	}
	ctx_init(&x, ch, opts);
	for (size_t i = 0; i < ch->n; i++)
		if (selected[i])
			check_one(&x, &ch->v[i], parent_planned(ch, selected, &ch->v[i]), problems);
	ctx_release(&x);
	return 0;
}

/* Put the new entry tmp in place of name; a directory there goes first. */
static int place_from(int from, const char *tmp, int dfd, const char *name, bool target_is_dir)
{
	char aside[sizeof(TEMP_PREFIX) + TEMP_RANDOM];
	struct stat st;

	if (!target_is_dir)
		return renameat(from, tmp, dfd, name);
	/*
	 * rename(2) cannot replace a directory with a file: move the tree aside
	 * under a temporary name (atomic), put the new entry in, then remove the
	 * tree. Killed in between, the target is missing, not half-removed, and
	 * the tree is a leftover the next commit removes.
	 */
	temp_name(aside);
	if (fstat(dfd, &st) < 0 || renameat(dfd, name, dfd, aside) < 0 ||
	    renameat(from, tmp, dfd, name) < 0)
		return -1;
	return remove_tree_at(dfd, aside, st.st_dev);
}

static int place(int dfd, const char *tmp, const char *name, bool target_is_dir)
{
	return place_from(dfd, tmp, dfd, name, target_is_dir);
}

/* Copy from in to out, in the kernel where it can. */
static int copy_fd(int in, int out)
{
	_cleanup_free_ char *buf = NULL;
	ssize_t n;

	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP || errno == EBADF)
				break;
			return -1;
		}
	}
	buf = xmalloc(COPY_CHUNK);
	for (;;) {
		n = read(in, buf, COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
	}
}

/*
 * The box's extended attributes of a file that the host keeps for a user:
 * user.* (but overlayfs's own user.overlay.*) and the POSIX ACL. Not
 * security.* (labels and file capabilities are the host's to give: caps
 * only with --allow-setuid, in stage_file) nor trusted.*. Best effort: a
 * filesystem without xattrs takes the file anyway.
 */
static void copy_xattrs(int in, int out, bool caps)
{
	_cleanup_free_ char *names = NULL;
	_cleanup_free_ char *value = NULL;
	ssize_t len = flistxattr(in, NULL, 0);

	if (len <= 0)
		return;
	names = xmalloc((size_t)len + 1);
	len = flistxattr(in, names, (size_t)len);
	if (len <= 0)
		return;
	names[len] = '\0';
	value = xmalloc(65536);
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		ssize_t vlen;
		if (!(str_has_prefix(n, "user.") && !str_has_prefix(n, "user.overlay.")) &&
		    strcmp(n, "system.posix_acl_access") &&
		    !(caps && !strcmp(n, "security.capability")))
			continue;
		vlen = fgetxattr(in, n, value, 65536);
		if (vlen >= 0)
			fsetxattr(out, n, value, (size_t)vlen, 0);
	}
}

/*
 * How a commit stays as fast as a copy and still leaves each file entirely
 * old or entirely new, after a kill and after a crash (dpkg's order):
 *  1. stage: the changes, in order, each new file written whole under a
 *     temporary name in its target's directory (flock()ed and kept open
 *     until it is renamed, so a concurrent commit's leftover cleanup passes
 *     it by), symlinks and fifos made under such names, new directories
 *     made at once (later files need them);
 *  2. one syncfs(2) per filesystem puts every staged file's data and inode
 *     on disk (an fsync per file cost more than the copy itself here);
 *  3. in order, each staged entry is renamed over its target (conflicts are
 *     checked again right before), deletions are made;
 *  4. after the last batch, one more syncfs makes the renames durable, and
 *     only then does the box forget what it committed: a file is never
 *     gone from both the box and the host.
 * A batch holds at most batch_max staged files (their fds are open).
 */
struct staged {
	size_t i;     /* index into ch->v */
	int fd;	      /* the temporary file, locked; -1 if none */
	bool temp;    /* tmp names a staged entry to rename */
	bool tmpfile; /* fd is an O_TMPFILE, without a name until it is linked */
	bool move;    /* the box's own file is renamed to the host (may_move) */
	char tmp[sizeof(TEMP_PREFIX) + TEMP_RANDOM];
};

struct batch {
	struct staged *v;
	size_t n, nfiles, max;
};

static void batch_drop(struct batch *b, size_t from)
{
	for (size_t k = from; k < b->n; k++)
		if (b->v[k].fd >= 0)
			close(b->v[k].fd);
	b->n = b->nfiles = 0;
}

/* The batch's size: as many files as the fd limit allows, up to 4096. */
static size_t batch_size(void)
{
	struct rlimit rl;
	rlim_t want = 4096 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 64;
	if (rl.rlim_cur < want && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return 4096;
	return rl.rlim_cur > 128 ? (size_t)(rl.rlim_cur - 64) : 64;
}

/*
 * Put what was written on the filesystems of the fds on disk: one syncfs
 * per filesystem; where that fails, an fsync of each fd.
 */
static int sync_fds(const int *fds, size_t n)
{
	dev_t *done = xcalloc(n + 1, sizeof(dev_t));
	size_t ndone = 0;
	int r = 0;

	for (size_t k = 0; k < n; k++) {
		struct stat st;
		bool seen = false;

		if (fds[k] < 0 || fstat(fds[k], &st) < 0)
			continue;
		for (size_t j = 0; j < ndone && !seen; j++)
			seen = done[j] == st.st_dev;
		if (seen)
			continue;
		if (syncfs(fds[k]) == 0) {
			done[ndone++] = st.st_dev;
			continue;
		}
		for (size_t j = k; j < n; j++) {
			struct stat jst;
			if (fds[j] >= 0 && fstat(fds[j], &jst) == 0 && jst.st_dev == st.st_dev &&
			    fsync(fds[j]) < 0)
				r = -1;
		}
		done[ndone++] = st.st_dev;
	}
	free(done);
	return r;
}

/* A new file written whole under a temporary name in dfd; its fd stays open, locked. */
static int stage_file(struct ctx *x, const struct change *c, int dfd, struct staged *s,
		      struct error *err)
{
	_cleanup_close_ int in = open_upper_file(x, c);
	_cleanup_close_ int out = -1;
	const struct timespec times[2] = {c->upper_atime, c->upper_mtime};
	struct stat st;

	if (in < 0)
		return error_set(err, errno, "cannot read the box's copy of '%s'", c->path);
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
		return error_set(err, EINVAL, "the box's copy of '%s' changed", c->path);
	/*
	 * Where the host had nothing, a file without a name, linked in once on
	 * disk (publish_one): half the directory updates of a temporary name
	 * and a rename, and nothing left behind by a kill.
	 */
	if (x->tmpfile_ok && c->type == CHANGE_ADDED) {
		out = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		s->tmpfile = out >= 0;
	}
	while (out < 0) {
		temp_name(s->tmp);
		/* O_EXCL never follows a symlink: a name planted here fails with EEXIST. */
		out = openat(dfd, s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			     0600);
		if (out < 0 && errno != EEXIST)
			return error_set(err, errno, "cannot create a file next to '%s'", c->path);
	}
	/* Held until the rename: the next commit's leftover cleanup passes it by. */
	if (!s->tmpfile)
		flock(out, LOCK_EX);
	if (st.st_size > 0 && copy_fd(in, out) < 0)
		goto fail;
	copy_xattrs(in, out, false);
	/* chown first: it clears set-id bits that fchmod then sets. */
	if (x->euid == 0 && fchown(out, c->upper_uid, c->upper_gid) < 0)
		goto fail;
	if (fchmod(out, c->upper_mode & 07777) < 0 || futimens(out, times) < 0)
		goto fail;
	/* Asked for (--allow-setuid, checked): last, as chown and writes clear them. */
	if ((c->flags & CHANGE_CAPS) && x->opts->allow_setuid) {
		char v[64];
		ssize_t n = fgetxattr(in, "security.capability", v, sizeof(v));
		if (n < 0 || fsetxattr(out, "security.capability", v, (size_t)n, 0) < 0)
			goto fail;
	}
	s->fd = steal_fd(&out);
	s->temp = !s->tmpfile;
	return 0;
fail:
	error_set(err, errno, "cannot write '%s'", c->path);
	if (!s->tmpfile)
		unlinkat(dfd, s->tmp, 0);
	s->tmpfile = false;
	return -1;
}

/*
 * Give the O_TMPFILE fd the name name in dfd (never replacing an entry):
 * through /proc/self/fd, as linkat's AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH.
 */
static int link_tmpfile(int fd, int dfd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	return linkat(fd, "", dfd, name, AT_EMPTY_PATH);
}

/* A symlink (its target text copied, never resolved) or a fifo, made under a temporary name. */
static int stage_special(struct ctx *x, const struct change *c, int dfd, struct staged *s,
			 struct error *err)
{
	char target[4096];
	const struct timespec times[2] = {c->upper_atime, c->upper_mtime};
	size_t len = 0;
	int r;

	if (c->kind == KIND_SYMLINK) {
		const char *uname;
		int udfd = upper_parent(x, c, &uname);
		if (udfd < 0 || !read_link(udfd, uname, target, sizeof(target), &len))
			return error_set(err, errno, "cannot read the box's symlink '%s'", c->path);
		target[len] = '\0';
	}
	do {
		temp_name(s->tmp);
		r = c->kind == KIND_SYMLINK
			? symlinkat(target, dfd, s->tmp)
			: mknodat(dfd, s->tmp, S_IFIFO | (c->upper_mode & 07777), 0);
	} while (r < 0 && errno == EEXIST);
	if (r < 0)
		return error_set(err, errno, "cannot create '%s'", c->path);
	if ((x->euid == 0 &&
	     fchownat(dfd, s->tmp, c->upper_uid, c->upper_gid, AT_SYMLINK_NOFOLLOW) < 0) ||
	    (c->kind != KIND_SYMLINK && chmod_at(dfd, s->tmp, c->upper_mode & 07777) < 0) ||
	    utimensat(dfd, s->tmp, times, AT_SYMLINK_NOFOLLOW) < 0) {
		error_set(err, errno, "cannot create '%s'", c->path);
		unlinkat(dfd, s->tmp, 0);
		return -1;
	}
	s->temp = true;
	return 0;
}

/* Make the new directory c on the host (its final mode comes in finish_dirs). */
static int make_dir(struct ctx *x, const struct change *c, int dfd, const char *name,
		    bool exists, struct error *err)
{
	if (exists && unlinkat(dfd, name, 0) < 0)
		return error_set(err, errno, "cannot replace '%s'", c->path);
	/*
	 * Writable by its owner until finish_dirs: the box's mode may forbid
	 * adding the entries. Not umask's either: the box's mode is the mode.
	 */
	if (mkdirat(dfd, name, 0700) < 0 ||
	    chmod_at(dfd, name, (c->upper_mode & 07777) | S_IRWXU) < 0)
		return error_set(err, errno, "cannot create '%s'", c->path);
	if (x->euid == 0 &&
	    fchownat(dfd, name, c->upper_uid, c->upper_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return error_set(err, errno, "cannot change the owner of '%s'", c->path);
	return 0;
}

/* Whether xattr name of a file is one a copy keeps (copy_xattrs, stage_file). */
static bool xattr_kept(struct ctx *x, const char *n)
{
	return (str_has_prefix(n, "user.") && !str_has_prefix(n, "user.overlay.")) ||
	       !strcmp(n, "system.posix_acl_access") ||
	       (x->opts->allow_setuid && x->euid == 0 && !strcmp(n, "security.capability"));
}

/*
 * Whether the box's file c may become the host's file by a rename instead
 * of a copy: then commit writes no data at all. Only where the result is
 * exactly what a copy would give:
 *  - upper and host dir on one filesystem (else EXDEV);
 *  - the box's file is a regular file of one link (a box's hard link
 *    would share it with the host), the caller's own (or the caller is
 *    root), with no xattr that a copy drops (user.overlay.* of a copy-up,
 *    an LSM label the host would give anew ...);
 *  - its box dir may be written (the box may have made it read-only),
 *    and no dir above it in the box is opaque (moved out, the file would
 *    vanish from the box's view until the dir is cleared);
 *  - the host dir gives new files nothing of its own: no setgid of
 *    another group, no default ACL.
 */
static bool may_move(struct ctx *x, const struct change *c, int hdfd, int udfd, const char *name)
{
	char proc[PATH_MAX], list[256];
	struct stat st, hst, ust;
	ssize_t n;

	if (x->same_fs[c->layer] < 0) {
		int h = host_root(x, c->layer), u = upper_root(x, c->layer);
		x->same_fs[c->layer] = h >= 0 && u >= 0 && fstat(h, &hst) == 0 &&
				       fstat(u, &ust) == 0 && hst.st_dev == ust.st_dev;
	}
	if (!x->same_fs[c->layer])
		return false;
	if (x->upper_dir.move_ok < 0) {
		_cleanup_free_ char *p = xasprintf("%s/%s", x->ch->layers[c->layer].upper,
						   x->upper_dir.rel);
		char *slash;
		bool ok = faccessat(udfd, ".", W_OK | X_OK, AT_EACCESS) == 0;
		/* This dir and each above it, to the layer's root (which is no opaque dir). */
		while (ok && strcmp(x->upper_dir.rel, ".")) {
			char v[4];
			ok = getxattr(p, "user.overlay.opaque", v, sizeof(v)) < 0;
			slash = strrchr(p, '/');
			if (!slash || (size_t)(slash - p) <= strlen(x->ch->layers[c->layer].upper))
				break;
			*slash = '\0';
		}
		x->upper_dir.move_ok = ok;
	}
	if (!x->upper_dir.move_ok)
		return false;
	if (x->host_dir.move_ok < 0) {
		bool ok = fstat(hdfd, &hst) == 0;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", hdfd);
		if (ok && (hst.st_mode & S_ISGID) && hst.st_gid != getegid())
			ok = false;
		if (ok && (getxattr(proc, "system.posix_acl_default", NULL, 0) >= 0 ||
			   (errno != ENODATA && errno != EOPNOTSUPP)))
			ok = false;
		x->host_dir.move_ok = ok;
	}
	if (!x->host_dir.move_ok)
		return false;
	if (fstatat(udfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || (x->euid != 0 && st.st_uid != x->euid))
		return false;
	if (snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", udfd, name) >= (int)sizeof(proc))
		return false;
	n = llistxattr(proc, list, sizeof(list));
	if (n < 0)
		return errno == EOPNOTSUPP;
	for (char *a = list; a < list + n; a += strlen(a) + 1)
		if (!xattr_kept(x, a))
			return false;
	return true;
}

/* Stage one change (step 1): dirs are made, files and specials written aside. */
static int stage_one(struct ctx *x, const struct change *c, struct staged *s, struct error *err)
{
	_cleanup_free_ char *parent = parent_path(c->path);
	const char *name;
	struct stat hst;
	int dfd;
	bool exists;

	dfd = host_parent(x, c, &name);
	if (dfd < 0)
		return error_set(err, 0, "cannot commit '%s': cannot open '%s': %s", c->path,
				 parent, host_open_reason(errno));
	clean_leftovers(x, dfd, parent);
	if (c->type == CHANGE_DELETED)
		return 0;
	switch (c->kind) {
	case KIND_DIR:
		exists = fstatat(dfd, name, &hst, AT_SYMLINK_NOFOLLOW) == 0;
		if (!exists && errno != ENOENT)
			return error_set(err, errno, "cannot stat '%s'", c->path);
		if (exists && S_ISDIR(hst.st_mode))
			return 0; /* its mode is set once its entries are in (finish_dirs) */
		/* Checked again: the host may have changed since commit_check. */
		if (exists && !x->opts->force && is_conflict(x, c, dfd, name, &hst)) {
			conflict_msg(x, c, NULL, err);
			return -1;
		}
		return make_dir(x, c, dfd, name, exists, err);
	case KIND_FILE: {
		const char *uname;
		int udfd = x->tmpfile_ok ? upper_parent(x, c, &uname) : -1;
		/* The caches hold one dir each: dfd stays valid (host), udfd too (upper). */
		if (udfd >= 0 && may_move(x, c, dfd, udfd, uname)) {
			s->move = true;
			return 0;
		}
		return stage_file(x, c, dfd, s, err);
	}
	default:
		return stage_special(x, c, dfd, s, err);
	}
}

/* Step 3 for one change: its staged entry renamed in place, or the deletion made. */
static int publish_one(struct ctx *x, const struct change *c, struct staged *s,
		       struct error *err)
{
	_cleanup_free_ char *parent = parent_path(c->path);
	const char *name;
	struct stat hst, pst;
	bool exists, is_dir;
	int dfd;

	if (c->type != CHANGE_DELETED && !s->temp && !s->tmpfile && !s->move)
		return 0; /* a directory, made when staged */
	dfd = host_parent(x, c, &name);
	if (dfd < 0)
		return error_set(err, 0, "cannot commit '%s': cannot open '%s': %s", c->path,
				 parent, host_open_reason(errno));
	if (s->move) {
		const char *uname;
		int udfd = upper_parent(x, c, &uname);
		if (udfd < 0)
			return error_set(err, errno, "cannot read the box's copy of '%s'", c->path);
		if (renameat2(udfd, uname, dfd, name, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			return error_set(err, errno, "cannot write '%s'", c->path);
		exists = fstatat(dfd, name, &hst, AT_SYMLINK_NOFOLLOW) == 0;
		if (exists && !x->opts->force && is_conflict(x, c, dfd, name, &hst)) {
			conflict_msg(x, c, NULL, err);
			return -1;
		}
		/* is_conflict may have used the upper cache: the same dir, but look again. */
		udfd = upper_parent(x, c, &uname);
		if (udfd < 0 || place_from(udfd, uname, dfd, name, exists && S_ISDIR(hst.st_mode)) < 0)
			return error_set(err, errno, "cannot write '%s'", c->path);
		return 0;
	}
	if (s->tmpfile) {
		if (link_tmpfile(s->fd, dfd, name) == 0) {
			s->tmpfile = false;
			return 0;
		}
		if (errno != EEXIST)
			return error_set(err, errno, "cannot write '%s'", c->path);
		/* The host made an entry meanwhile: a temporary name, then as below. */
		do
			temp_name(s->tmp);
		while (link_tmpfile(s->fd, dfd, s->tmp) < 0 && errno == EEXIST);
		if (faccessat(dfd, s->tmp, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			return error_set(err, errno, "cannot write '%s'", c->path);
		s->tmpfile = false;
		s->temp = true;
	}
	/* Where the host has nothing (the common case), the rename must not replace. */
	if (s->temp && renameat2(dfd, s->tmp, dfd, name, RENAME_NOREPLACE) == 0) {
		s->temp = false;
		return 0;
	}
	if (s->temp && errno != EEXIST)
		return error_set(err, errno, "cannot write '%s'", c->path);
	if (fstat(dfd, &pst) < 0)
		return error_set(err, errno, "cannot stat '%s'", parent);
	exists = fstatat(dfd, name, &hst, AT_SYMLINK_NOFOLLOW) == 0;
	if (!exists && errno != ENOENT)
		return error_set(err, errno, "cannot stat '%s'", c->path);
	is_dir = exists && S_ISDIR(hst.st_mode);
	/* Checked again: the host may have changed since commit_check. */
	if (exists && !x->opts->force && is_conflict(x, c, dfd, name, &hst)) {
		conflict_msg(x, c, NULL, err);
		return -1;
	}
	if (c->type != CHANGE_DELETED) {
		if (place(dfd, s->tmp, name, is_dir) < 0)
			return error_set(err, errno, "cannot write '%s'", c->path);
		s->temp = false;
		return 0;
	}
	if (!exists)
		return 0;
	if (is_dir) {
		char aside[sizeof(TEMP_PREFIX) + TEMP_RANDOM];
		temp_name(aside);
		/* Aside first, so that a kill leaves no half-removed tree in place. */
		if (renameat(dfd, name, dfd, aside) < 0)
			return error_set(err, errno, "cannot remove '%s'", c->path);
		sync_dir(dfd);
		if (remove_tree_at(dfd, aside, pst.st_dev) < 0)
			return error_set(err, errno, "cannot remove '%s'", c->path);
	} else if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		return error_set(err, errno, "cannot remove '%s'", c->path);
	}
	return 0;
}

/*
 * Steps 2 and 3 for the batch: sync the staged files, then publish each
 * in order. On a failure, the rest of the batch is unstaged.
 */
static int flush_batch(struct ctx *x, struct batch *b, bool *committed,
		       void (*done)(const struct change *c, void *arg), void *arg,
		       struct error *err)
{
	int *fds = xcalloc(b->n + 1, sizeof(int));
	size_t k;
	int r = 0;

	bool moves = false;

	for (k = 0; k < b->n; k++) {
		fds[k] = b->v[k].fd;
		moves = moves || b->v[k].move;
	}
	if (b->nfiles > 0 && sync_fds(fds, b->n) < 0) {
		error_set(err, errno, "cannot write '%s'", x->ch->v[b->v[0].i].path);
		r = -1;
	}
	free(fds);
	/* The box's files to be moved: their data on disk before their new name. */
	if (r == 0 && moves) {
		for (size_t l = 0; l < x->ch->nlayers; l++) {
			int fd = x->same_fs[l] == 1
				     ? open(x->ch->layers[l].upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
				     : -1;
			if (fd >= 0 && syncfs(fd) < 0)
				sync();
			if (fd >= 0)
				close(fd);
		}
	}
	for (k = 0; r == 0 && k < b->n; k++) {
		const struct change *c = &x->ch->v[b->v[k].i];
		r = publish_one(x, c, &b->v[k], err);
		if (r < 0)
			break;
		committed[b->v[k].i] = true;
		if (done)
			done(c, arg);
	}
	for (; k < b->n; k++) {
		const char *name;
		int dfd;
		if (!b->v[k].temp)
			continue;
		dfd = host_parent(x, &x->ch->v[b->v[k].i], &name);
		if (dfd >= 0)
			unlinkat(dfd, b->v[k].tmp, 0);
	}
	batch_drop(b, 0);
	if (done)
		done(NULL, arg);
	return r;
}

/* Step 4: the renames and removals on disk, before the box forgets its copies. */
static void sync_layers(struct ctx *x, const bool *committed)
{
	bool *used = xcalloc(x->ch->nlayers + 1, sizeof(bool));
	int *fds = xcalloc(x->ch->nlayers + 1, sizeof(int));
	size_t n = 0;
	bool failed = false;

	for (size_t i = 0; i < x->ch->n; i++)
		if (committed[i])
			used[x->ch->v[i].layer] = true;
	for (size_t l = 0; l < x->ch->nlayers; l++) {
		int root = used[l] ? host_root(x, l) : -1;
		if (root < 0)
			continue;
		fds[n] = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fds[n] < 0)
			failed = true;
		else
			n++;
	}
	if (sync_fds(fds, n) < 0 || failed)
		sync(); /* a layer dir we may not read: the whole system then */
	for (size_t k = 0; k < n; k++)
		close(fds[k]);
	free(fds);
	free(used);
}

/* Give committed directories the box's mode, deepest first. */
static int finish_dirs(struct ctx *x, const bool *committed, struct error *err)
{
	for (size_t i = x->ch->n; i-- > 0;) {
		const struct change *c = &x->ch->v[i];
		int dfd = -1;
		const char *name;

		if (!committed[i] || c->kind != KIND_DIR || c->type == CHANGE_DELETED)
			continue;
		dfd = host_parent(x, c, &name);
		if (dfd < 0 || chmod_at(dfd, name, c->upper_mode & 07777) < 0)
			return error_set(err, errno, "cannot change the mode of '%s'", c->path);
	}
	return 0;
}

/*
 * Whether a stale entry of the box (see struct changes) is still no change:
 * a whiteout whose host entry is gone, or a copy whose host entry has the
 * same type, mode, size, mtime and content. Its removal then changes
 * nothing the box sees (unless an opaque dir above hides the host's entry).
 */
static bool still_same(struct ctx *x, const struct change *c)
{
	const char *name;
	int dfd = host_parent(x, c, &name);
	struct stat hst;

	if (dfd < 0)
		return false;
	if (fstatat(dfd, name, &hst, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT && c->type == CHANGE_DELETED;
	if (c->type == CHANGE_DELETED || hst.st_mode != c->upper_mode ||
	    (unsigned long long)hst.st_size != c->size ||
	    hst.st_mtim.tv_sec != c->upper_mtime.tv_sec ||
	    hst.st_mtim.tv_nsec != c->upper_mtime.tv_nsec)
		return false;
	return content_equal(x, c, dfd, name, &hst);
}

/*
 * Remove an entry from the box's upper dir pfd. A box may have made a
 * directory of its own read-only: its owner may open it up for the moment
 * (the box is locked), and the mode is put back.
 */
static void unlink_upper(struct ctx *x, int pfd, const char *name, int flags)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (unlinkat(pfd, name, flags) == 0 || errno != EACCES)
		return;
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != x->euid ||
	    fchmod(fd, (st.st_mode & 07777) | S_IWUSR | S_IXUSR) < 0)
		return;
	unlinkat(pfd, name, flags);
	fchmod(fd, st.st_mode & 07777);
}

struct upper_dir {
	size_t layer;
	char *rel;
};

static int upper_dir_cmp(const void *a, const void *b)
{
	const struct upper_dir *x = a, *y = b;

	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return strcmp(x->rel, y->rel);
}

static bool rel_within(const char *rel, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(rel, dir, n) && (rel[n] == '\0' || rel[n] == '/');
}

/* Whether rel lies at or below an opaque dir that must stay opaque. */
static bool under_kept(const struct upper_dir *kept, size_t nkept, size_t layer, const char *rel)
{
	for (size_t i = 0; i < nkept; i++)
		if (kept[i].layer == layer && rel_within(rel, kept[i].rel))
			return true;
	return false;
}

static void add_upper_dir(struct upper_dir **v, size_t *n, size_t layer, const char *rel)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct upper_dir){.layer = layer, .rel = xstrdup(rel)};
}

/* The upper dirs above rel (not the layer root). */
static void add_ancestors(struct upper_dir **v, size_t *n, size_t layer, const char *rel)
{
	_cleanup_free_ char *p = xstrdup(rel);
	char *slash;

	while ((slash = strrchr(p, '/'))) {
		*slash = '\0';
		add_upper_dir(v, n, layer, p);
	}
}

static bool in_selection(const struct commit_opts *opts, const char *path)
{
	if (opts->npaths == 0)
		return true;
	for (size_t i = 0; i < opts->npaths; i++)
		if (path_is_within(path, opts->paths[i]))
			return true;
	return false;
}

/*
 * Remove what was committed from the box. Each step keeps the box's view
 * as it is, so a kill between any two leaves a box that shows the same:
 *  1. clear user.overlay.opaque of the touched dirs whose hidden host
 *     entries were all deleted by this commit (the host now holds nothing
 *     the copy lacks, so merging shows the same);
 *  2. unlink the committed files, symlinks and whiteouts, and the stale
 *     entries in the selection (the host holds the same now) — except
 *     below a dir that stays opaque, where the host's entry would not show;
 *  3. remove the touched dirs that are now empty and are no uncommitted
 *     change, deepest first (the host's dir shows instead), again not
 *     below a dir that stays opaque.
 * A failure here leaves an entry that equals the host's: no change.
 */
static void forget_committed(struct ctx *x, const bool *committed)
{
	const struct changes *ch = x->ch;
	struct upper_dir *kept = NULL, *dirs = NULL;
	size_t nkept = 0, ndirs = 0;

	for (size_t i = 0; i < ch->n; i++) {
		const struct change *c = &ch->v[i];
		if (!committed[i] && c->opaque_rel)
			add_upper_dir(&kept, &nkept, c->layer, c->opaque_rel);
		if (!committed[i])
			continue;
		add_ancestors(&dirs, &ndirs, c->layer, c->rel);
		if (c->kind == KIND_DIR && c->type != CHANGE_DELETED)
			add_upper_dir(&dirs, &ndirs, c->layer, c->rel);
	}
	for (size_t i = 0; i < ch->nstale; i++)
		if (in_selection(x->opts, ch->stale[i].path))
			add_ancestors(&dirs, &ndirs, ch->stale[i].layer, ch->stale[i].rel);
	if (ndirs > 1)
		qsort(dirs, ndirs, sizeof(*dirs), upper_dir_cmp);

	for (size_t i = 0; i < ndirs; i++) { /* 1 */
		struct change probe = {.rel = dirs[i].rel, .layer = dirs[i].layer};
		const char *name;
		int pfd = -1;
		_cleanup_close_ int fd = -1;
		char v[4];

		if ((i > 0 && !upper_dir_cmp(&dirs[i - 1], &dirs[i])) ||
		    under_kept(kept, nkept, dirs[i].layer, dirs[i].rel) ||
		    (pfd = upper_parent(x, &probe, &name)) < 0)
			continue;
		fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && fgetxattr(fd, "user.overlay.opaque", v, sizeof(v)) > 0)
			fremovexattr(fd, "user.overlay.opaque");
	}
	for (size_t i = 0; i < ch->n + ch->nstale; i++) { /* 2 */
		bool stale = i >= ch->n;
		const struct change *c = stale ? &ch->stale[i - ch->n] : &ch->v[i];
		const char *name;
		int pfd = -1;

		if (stale ? !in_selection(x->opts, c->path) || !still_same(x, c) : !committed[i])
			continue;
		if (c->kind == KIND_DIR && c->type != CHANGE_DELETED)
			continue;
		if (c->type == CHANGE_DELETED && c->opaque_rel)
			continue; /* hidden by an opaque dir: no whiteout of its own */
		/* A whiteout's host entry is gone: it can go even below an opaque dir. */
		if (c->type != CHANGE_DELETED && under_kept(kept, nkept, c->layer, c->rel))
			continue;
		if ((pfd = upper_parent(x, c, &name)) >= 0)
			unlink_upper(x, pfd, name, 0);
	}
	for (size_t i = ndirs; i-- > 0;) { /* 3 */
		struct change probe = {.rel = dirs[i].rel, .layer = dirs[i].layer};
		_cleanup_free_ char *path =
		    xasprintf("%s/%s", ch->layers[dirs[i].layer].path, dirs[i].rel);
		ssize_t j = changes_find(ch, path);
		const char *name;
		int pfd = -1;

		if ((i + 1 < ndirs && !upper_dir_cmp(&dirs[i + 1], &dirs[i])) ||
		    (j >= 0 && !committed[j]) ||
		    under_kept(kept, nkept, dirs[i].layer, dirs[i].rel))
			continue;
		if ((pfd = upper_parent(x, &probe, &name)) >= 0)
			unlink_upper(x, pfd, name, AT_REMOVEDIR); /* fails where entries remain */
	}
	for (size_t i = 0; i < nkept; i++)
		free(kept[i].rel);
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i].rel);
	free(kept);
	free(dirs);
}

int commit_apply(const struct changes *ch, const bool *selected, const struct commit_opts *opts,
		 void (*done)(const struct change *c, void *arg), void *arg, struct error *err)
{
	_cleanup_free_ bool *committed = xcalloc(ch->n, sizeof(bool));
	struct batch b = {.max = batch_size()};
	struct ctx x;
	int r = 0;

	b.v = xcalloc(4 * b.max + 1, sizeof(*b.v));
	ctx_init(&x, ch, opts);
	for (size_t i = 0; i < ch->n && r == 0; i++) {
		struct staged *s = &b.v[b.n];

		if (!selected[i])
			continue;
		*s = (struct staged){.i = i, .fd = -1};
		r = stage_one(&x, &ch->v[i], s, err);
		if (r < 0)
			break;
		b.n++;
		if (s->fd >= 0)
			b.nfiles++;
		/* Entries without an fd count too: the batch is bounded in memory as well. */
		if (b.nfiles >= b.max || b.n >= 4 * b.max)
			r = flush_batch(&x, &b, committed, done, arg, err);
	}
	/* What was staged before a failure is committed all the same, in order. */
	if (b.n > 0) {
		struct error e2;
		if (flush_batch(&x, &b, committed, done, arg, r < 0 ? &e2 : err) < 0)
			r = -1;
	}
	free(b.v);
	/* Even after a failure: what reached the host has its final mode. */
	if (finish_dirs(&x, committed, r < 0 ? &(struct error){0} : err) < 0)
		r = -1;
	sync_layers(&x, committed);
	forget_committed(&x, committed);
	ctx_release(&x);
	return r;
}
