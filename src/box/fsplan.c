#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "box/fsplan.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/* Deeper than this, a rebuilt directory is bound read-only as a whole. */
#define PLAN_MAX_DEPTH 16

bool fstype_is_pseudo(const char *fstype)
{
	static const char *const real[] = {
		"ext2",  "ext3", "ext4",     "xfs",  "btrfs", "tmpfs", "vfat",    "exfat",
		"ntfs",  "ntfs3", "f2fs",    "jfs",  "reiserfs", "zfs", "bcachefs", "ramfs",
		"squashfs", "iso9660", "erofs", "nfs", "nfs4", "cifs", "smb3", "overlay",
		"9p", "virtiofs", "ceph", "hfsplus", "udf",
	};

	if (str_has_prefix(fstype, "fuse.") || !strcmp(fstype, "fuse") ||
	    !strcmp(fstype, "fuseblk"))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(real); i++)
		if (!strcmp(fstype, real[i]))
			return false;
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Whether an unprivileged caller could change anything in the directory
 * host, whose lstat is st. It cannot in one it may not enter (/root,
 * /lost+found), nor in an empty one it may not write (/srv, /media): the
 * box would refuse the same writes, so a read-only bind serves there and
 * saves an overlay, which costs about half a millisecond to mount and
 * unmount. The box's user and groups are hutch's own, so access() answers
 * for it.
 */
static bool could_change(const char *host, const struct stat *st)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;

	if (access(host, X_OK) < 0)
		return false;
	if (access(host, W_OK) == 0)
		return true;
	/* More links than "." and "..": it has subdirectories (on most filesystems). */
	if (st->st_nlink > 2)
		return true;
	d = opendir(host);
	if (!d)
		return true;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			return true;
	return false;
}

static void plan_add(struct fsplan *plan, enum fsplan_kind kind, const char *path,
		     const char *target, mode_t mode);

/*
 * Copy-up of a directory in an unprivileged overlay gives the copy the
 * original's owner, which fails (EOVERFLOW) when that owner is not mapped in
 * the box: writing into /var/tmp (root's, mode 1777) would fail in a box
 * although the user may write there. The root of a layer is never copied
 * up, so such a writable directory below a layer gets a layer of its own,
 * mounted over the outer one. Every directory looked at costs start-up
 * time, so islands are looked for where systems keep them: /var and /run
 * two levels down (/var/tmp, /run/lock, /run/user/UID), /opt, /srv, /media,
 * /mnt and /tmp one level down (/tmp/.X11-unix, another user's shared
 * folder); not in /usr or /etc, whose hundreds of entries are root's. The
 * working directory is looked at too (fsplan_add_cwd).
 */
static int island_depth(const char *layer)
{
	static const struct {
		const char *path;
		int depth;
	} where[] = {{"/var", 2}, {"/run", 2}, {"/opt", 1}, {"/srv", 1}, {"/media", 1}, {"/mnt", 1},
		     {"/tmp", 1}};

	for (size_t i = 0; i < ARRAY_SIZE(where); i++)
		if (!strcmp(layer, where[i].path))
			return where[i].depth;
	return 0;
}

static bool plan_has(const struct fsplan *plan, const char *path)
{
	for (size_t i = 0; i < plan->n; i++)
		if (!strcmp(plan->v[i].path, path))
			return true;
	return false;
}

/* Whether the box (unprivileged: only the caller's uid and gid mapped) can copy st up. */
static bool owner_mapped(const struct stat *st)
{
	return st->st_uid == getuid() && st->st_gid == getgid();
}

static void add_islands(struct fsplan *plan, const char *root, const char *path, int depth,
			bool blocked, unsigned level)
{
	_cleanup_free_ char *host = xasprintf("%s%s", root, path);
	_cleanup_closedir_ DIR *d = opendir(host);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		_cleanup_free_ char *child = xasprintf("%s/%s", path, e->d_name);
		_cleanup_free_ char *child_host = xasprintf("%s%s", root, child);
		struct stat st;
		/* One call for the common case, a directory the user cannot write. */
		if (access(child_host, W_OK) == 0) {
			if (lstat(child_host, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			if ((blocked || !owner_mapped(&st)) && !plan_has(plan, child)) {
				plan_add(plan, PLAN_OVERLAY, child, NULL, st.st_mode);
				plan->v[plan->n - 1].nested = level;
			}
		} else if (depth > 1 && lstat(child_host, &st) == 0) {
			add_islands(plan, root, child, depth - 1, blocked || !owner_mapped(&st),
				    level);
		}
	}
}

static void plan_add(struct fsplan *plan, enum fsplan_kind kind, const char *path,
		     const char *target, mode_t mode)
{
	struct fsplan_entry *e;

	plan->v = xrealloc(plan->v, (plan->n + 1) * sizeof(*plan->v));
	e = &plan->v[plan->n++];
	e->kind = kind;
	e->path = xstrdup(path);
	e->target = target ? xstrdup(target) : NULL;
	e->mode = mode;
	e->nested = 0;
	e->cow = false;
}

/*
 * The names in d but "." and "..", sorted, so that plans (and their layers)
 * are the same from run to run; *n of them, each and the array to free.
 */
static char **sorted_names(DIR *d, size_t *n)
{
	struct dirent *e;
	char **names = NULL;

	*n = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		names = xrealloc(names, (*n + 1) * sizeof(*names));
		names[(*n)++] = xstrdup(e->d_name);
	}
	if (*n)
		qsort(names, *n, sizeof(*names), cmp_names);
	return names;
}

static int plan_path(struct fsplan *plan, const char *root, const struct mount_table *mt,
		     const char *path, int depth, struct error *err);

static int plan_children(struct fsplan *plan, const char *root, const struct mount_table *mt,
			 const char *path, int depth, struct error *err)
{
	_cleanup_free_ char *host = xasprintf("%s%s", root, path);
	_cleanup_closedir_ DIR *d = opendir(host);
	char **names = NULL;
	size_t n = 0;
	int r = 0;

	if (!d)
		return -1;
	names = sorted_names(d, &n);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *child =
			xasprintf("%s/%s", strcmp(path, "/") ? path : "", names[i]);
		if (r == 0)
			r = plan_path(plan, root, mt, child, depth + 1, err);
		free(names[i]);
	}
	free(names);
	return r;
}

static int plan_path(struct fsplan *plan, const char *root, const struct mount_table *mt,
		     const char *path, int depth, struct error *err)
{
	_cleanup_free_ char *host = xasprintf("%s%s", root, path);
	const struct mount_entry *m = mount_table_find(mt, path);
	struct stat st;

	if (lstat(host, &st) < 0) {
		if (errno == ENOENT)
			return 0; /* vanished while we looked */
		return error_set(err, errno, "cannot inspect '%s'", path);
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(host, target, sizeof(target) - 1);
		if (n < 0)
			return error_set(err, errno, "cannot read link '%s'", path);
		target[n] = '\0';
		plan_add(plan, PLAN_SYMLINK, path, target, st.st_mode);
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || (m && fstype_is_pseudo(m->fstype))) {
		plan_add(plan, PLAN_BIND_RO, path, NULL, st.st_mode);
		return 0;
	}
	if (!mount_table_has_below(mt, path)) {
		bool cow = plan->privileged || could_change(host, &st);
		plan_add(plan, cow ? PLAN_OVERLAY : PLAN_BIND_RO, path, NULL, st.st_mode);
		if (cow && !plan->privileged && island_depth(path))
			add_islands(plan, root, path, island_depth(path), false, 1);
		return 0;
	}
	if (depth >= PLAN_MAX_DEPTH) {
		plan_add(plan, PLAN_BIND_RO, path, NULL, st.st_mode);
		return 0;
	}
	plan_add(plan, PLAN_DIR, path, NULL, st.st_mode);
	/* A scratch folder everyone writes in (1777: /tmp, /var/tmp) must take new files. */
	plan->v[plan->n - 1].cow = (st.st_mode & (S_ISVTX | S_IWOTH)) == (S_ISVTX | S_IWOTH);
	if (plan_children(plan, root, mt, path, depth, err) < 0) {
		if (errno != EACCES && errno != EPERM)
			return error_set(err, errno, "cannot list '%s'", path);
		/* Unreadable: the box gets it as it is, read-only. */
		plan->v[plan->n - 1].kind = PLAN_BIND_RO;
	}
	return 0;
}

int fsplan_build(struct fsplan *plan, const char *root, const struct mount_table *mt,
		 enum fsplan_flags flags, struct error *err)
{
	static const struct {
		const char *path;
		enum fsplan_kind kind;
	} special[] = {
		{"/proc", PLAN_PROC},
		{"/sys", PLAN_SYS},
		{"/dev", PLAN_DEV},
		{"/tmp", PLAN_TMP}, /* last: without FSPLAN_PRIVATE_TMP, only where the host has none */
	};
	/* The host's /tmp is planned as any other directory: copy-on-write. */
	size_t nspecial = ARRAY_SIZE(special) - !(flags & FSPLAN_PRIVATE_TMP);
	_cleanup_closedir_ DIR *d = NULL;
	char **names = NULL;
	size_t n = 0;
	int r = 0;

	plan->v = NULL;
	plan->n = 0;
	plan->privileged = flags & FSPLAN_PRIVILEGED;
	d = opendir(*root ? root : "/");
	if (!d)
		return error_set(err, errno, "cannot list '/'");
	names = sorted_names(d, &n);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = xasprintf("/%s", names[i]);
		bool done = false;

		free(names[i]);
		if (r < 0)
			continue;
		for (size_t s = 0; s < nspecial; s++) {
			if (!strcmp(path, special[s].path)) {
				plan_add(plan, special[s].kind, path, NULL, S_IFDIR | 0755);
				done = true;
			}
		}
		if (!done)
			r = plan_path(plan, root, mt, path, 1, err);
	}
	free(names);
	/* A box always has these, even on a host that lacks one. */
	for (size_t s = 0; s < ARRAY_SIZE(special) && r == 0; s++) {
		bool have = false;
		for (size_t i = 0; i < plan->n; i++)
			have |= !strcmp(plan->v[i].path, special[s].path);
		if (!have)
			plan_add(plan, special[s].kind, special[s].path, NULL, S_IFDIR | 0755);
	}
	if (r < 0)
		fsplan_release(plan);
	return r;
}

size_t fsplan_unmapped_files(const char *dir, char **first, struct stat *st)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	size_t n = 0, seen = 0;

	*first = NULL;
	if (getuid() == 0 || !(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)) && seen++ < 4096) {
		struct stat est;
		if (e->d_type == DT_DIR || e->d_type == DT_LNK || !strcmp(e->d_name, ".") ||
		    !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &est, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(est.st_mode) || owner_mapped(&est) ||
		    faccessat(dirfd(d), e->d_name, W_OK, 0) < 0)
			continue;
		if (!n++) {
			*first = xstrdup(e->d_name);
			*st = est;
		}
	}
	return n;
}

const struct fsplan_entry *fsplan_layer_of(const struct fsplan *plan, const char *path)
{
	const struct fsplan_entry *best = NULL;

	for (size_t i = 0; i < plan->n; i++) {
		const struct fsplan_entry *e = &plan->v[i];
		if ((e->kind == PLAN_OVERLAY || (e->kind == PLAN_DIR && e->cow)) &&
		    path_is_within(path, e->path) &&
		    (!best || strlen(e->path) > strlen(best->path)))
			best = e;
	}
	return best;
}

/* cwd's leading part that ends one component below its parent dir (NULL: all of cwd). */
static char *component_below(const char *cwd, const char *dir)
{
	size_t n = dir ? strlen(dir) + 1 : strlen(cwd);

	while (cwd[n] && cwd[n] != '/')
		n++;
	return xasprintf("%.*s", (int)n, cwd);
}

size_t fsplan_add_cwd(struct fsplan *plan, const char *root, const char *cwd)
{
	const struct fsplan_entry *layer;
	size_t before = plan->n, len;
	unsigned level;
	struct stat st;

	if (plan->privileged || !cwd || cwd[0] != '/' || !(layer = fsplan_layer_of(plan, cwd)))
		return 0;
	level = layer->nested + 1;
	len = strlen(layer->path);
	/*
	 * A copy-up in cwd copies its parents up to the layer first, and fails
	 * at the first foreign one. The layer goes just below the deepest of
	 * them (at cwd, if cwd is one), so cwd's parents of the user's own up
	 * to there (a test's scratch folder around its work folder) take new
	 * files too.
	 */
	_cleanup_free_ char *dir = xstrdup(cwd);
	_cleanup_free_ char *island = NULL;
	while (strlen(dir) > len && !island) {
		_cleanup_free_ char *host = xasprintf("%s%s", root, dir);
		if (lstat(host, &st) == 0 && S_ISDIR(st.st_mode) && !owner_mapped(&st))
			island = component_below(cwd, strlen(dir) == strlen(cwd) ? NULL : dir);
		*strrchr(dir, '/') = '\0';
	}
	_cleanup_free_ char *cwd_host = xasprintf("%s%s", root, cwd);
	_cleanup_free_ char *island_host = island ? xasprintf("%s%s", root, island) : NULL;
	if (island && (access(island_host, W_OK) == 0 || access(cwd_host, W_OK) == 0) &&
	    lstat(island_host, &st) == 0 && S_ISDIR(st.st_mode) && !plan_has(plan, island)) {
		plan_add(plan, PLAN_OVERLAY, island, NULL, st.st_mode);
		plan->v[plan->n - 1].nested = level++;
	}
	/* Its own folders of a foreign owner or group, writable: layers too (a build's obj/). */
	add_islands(plan, root, cwd, 1, false, level);
	return plan->n - before;
}

void fsplan_release(struct fsplan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->v[i].path);
		free(plan->v[i].target);
	}
	free(plan->v);
	plan->v = NULL;
	plan->n = 0;
}

uint64_t fsplan_hash(const struct fsplan *plan)
{
	uint64_t h = HASH_SEED;

	for (size_t i = 0; i < plan->n; i++) {
		const struct fsplan_entry *e = &plan->v[i];
		uint64_t what[5] = {e->kind, e->mode, e->nested | (uint64_t)e->cow << 32};
		struct stat st;
		if (e->kind == PLAN_BIND_RO && lstat(e->path, &st) == 0) {
			what[3] = st.st_dev;
			what[4] = st.st_ino;
		}
		h = hash_bytes(h, what, sizeof(what));
		h = hash_bytes(h, e->path, strlen(e->path) + 1);
		if (e->target)
			h = hash_bytes(h, e->target, strlen(e->target) + 1);
	}
	return h;
}

uint64_t fsplan_hash_host(enum fsplan_flags flags, const char *cwd)
{
	struct mount_table mt;
	struct fsplan plan;
	struct error err;
	uint64_t h = 0;

	if (mount_table_read(&mt, &err) < 0)
		return 0;
	if (getuid() == 0)
		flags |= FSPLAN_PRIVILEGED;
	if (fsplan_build(&plan, "", &mt, flags, &err) == 0) {
		fsplan_add_cwd(&plan, "", cwd);
		h = fsplan_hash(&plan);
		fsplan_release(&plan);
	}
	mount_table_release(&mt);
	return h;
}
