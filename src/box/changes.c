#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "box/beneath.h"
#include "box/changes.h"
#include "box/store.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/* Deeper than PATH_MAX allows for names of one character: a loop, not a tree. */
#define WALK_DEPTH_MAX 2048

const char *change_type_name(enum change_type type)
{
	static const char *const names[] = {"added", "modified", "deleted"};
	return names[type];
}

const char *change_kind_name(enum change_kind kind)
{
	static const char *const names[] = {"file", "dir", "symlink", "other"};
	return names[kind];
}

const char *change_flag_name(enum change_flags flag)
{
	switch (flag) {
	case CHANGE_SETUID:
		return "setuid";
	case CHANGE_SETGID:
		return "setgid";
	default:
		return "caps";
	}
}

#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif

/* getxattrat(2)'s argument (Linux 6.13; glibc 2.36 has no header for it). */
struct xattr_at_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

/*
 * Whether the file dirfd/name (upper/rel) carries security.capability.
 * A box's setcap, in its user namespace, stores v3 caps whose rootid is the
 * user's own uid: not in force on the host, but a root commit would make
 * them so elsewhere, and they are the box's to ask for, not to give.
 * getxattrat on the directory fd where the kernel has it, else the path.
 */
static bool has_caps(int dirfd, const char *name, const char *upper, const char *rel)
{
	static bool no_getxattrat;
	struct xattr_at_args args = {0};
	_cleanup_free_ char *what = NULL;
	ssize_t n;

	if (!no_getxattrat) {
		n = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, "security.capability",
			    &args, sizeof(args));
		if (n >= 0)
			return true;
		if (errno != ENOSYS && errno != EINVAL)
			return false;
		no_getxattrat = true;
	}
	what = xasprintf("%s/%s", upper, rel);
	return lgetxattr(what, "security.capability", NULL, 0) >= 0;
}

static enum change_kind kind_of(mode_t mode)
{
	if (S_ISREG(mode))
		return KIND_FILE;
	if (S_ISDIR(mode))
		return KIND_DIR;
	if (S_ISLNK(mode))
		return KIND_SYMLINK;
	return KIND_OTHER;
}

static bool is_whiteout(const struct statx *stx)
{
	return S_ISCHR(stx->stx_mode) && stx->stx_rdev_major == 0 && stx->stx_rdev_minor == 0;
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct walker {
	struct changes *ch;
	size_t cap, stale_cap;
	size_t layer;
	struct error *err;
};

/* The names in the directory dirfd (which stays open), sorted bytewise. */
static int list_dir(int dirfd, char ***names_out, size_t *n_out, const char *what,
		    struct error *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (fd < 0)
		return error_set(err, errno, "cannot read '%s'", what);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return error_set(err, errno, "cannot read '%s'", what);
	}
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	if (errno) {
		int e2 = errno;
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return error_set(err, e2, "cannot read '%s'", what);
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), strcmp_ptr);
	*names_out = names;
	*n_out = n;
	return 0;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static char *join(const char *dir, const char *name)
{
	return *dir ? xasprintf("%s/%s", dir, name) : xstrdup(name);
}

static struct change *add_change(struct walker *w, const char *rel, enum change_type type,
				 bool stale)
{
	struct changes *ch = w->ch;
	const struct change_layer *layer = &ch->layers[w->layer];
	struct change *c;

	if (stale) {
		if (ch->nstale == w->stale_cap) {
			w->stale_cap = w->stale_cap ? 2 * w->stale_cap : 16;
			ch->stale = xrealloc(ch->stale, w->stale_cap * sizeof(*c));
		}
		c = &ch->stale[ch->nstale++];
	} else {
		if (ch->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 64;
			ch->v = xrealloc(ch->v, w->cap * sizeof(*c));
		}
		c = &ch->v[ch->n++];
	}
	*c = (struct change){
	    .path = xasprintf("%s/%s", layer->path, rel),
	    .rel = xstrdup(rel),
	    .layer = w->layer,
	    .type = type,
	};
	return c;
}

static struct timespec taken_time(const struct statx *stx)
{
	const struct statx_timestamp *t =
	    (stx->stx_mask & STATX_BTIME) ? &stx->stx_btime : &stx->stx_ctime;
	return (struct timespec){.tv_sec = t->tv_sec, .tv_nsec = t->tv_nsec};
}

static void set_upper(struct change *c, const struct statx *stx)
{
	c->upper_mode = stx->stx_mode;
	c->upper_uid = stx->stx_uid;
	c->upper_gid = stx->stx_gid;
	c->upper_atime = (struct timespec){stx->stx_atime.tv_sec, stx->stx_atime.tv_nsec};
	c->upper_mtime = (struct timespec){stx->stx_mtime.tv_sec, stx->stx_mtime.tv_nsec};
	c->taken = taken_time(stx);
	c->kind = kind_of(stx->stx_mode);
	c->size = S_ISDIR(stx->stx_mode) ? 0 : stx->stx_size;
}

/* Whether the host entry equals the box's non-directory in everything diff compares. */
static bool same_entry(int upper_fd, int host_fd, const char *name, const struct statx *u,
		       const struct stat *h)
{
	if ((u->stx_mode & S_IFMT) != (h->st_mode & S_IFMT) ||
	    (u->stx_mode & 07777) != (h->st_mode & 07777) || u->stx_size != (uint64_t)h->st_size ||
	    u->stx_mtime.tv_sec != h->st_mtim.tv_sec ||
	    u->stx_mtime.tv_nsec != (uint32_t)h->st_mtim.tv_nsec)
		return false;
	if (S_ISLNK(h->st_mode)) {
		char a[PATH_MAX], b[PATH_MAX];
		ssize_t na = readlinkat(upper_fd, name, a, sizeof(a));
		ssize_t nb = readlinkat(host_fd, name, b, sizeof(b));
		return na >= 0 && na == nb && !memcmp(a, b, (size_t)na);
	}
	if (S_ISCHR(h->st_mode) || S_ISBLK(h->st_mode))
		return u->stx_rdev_major == major(h->st_rdev) &&
		       u->stx_rdev_minor == minor(h->st_rdev);
	return true;
}

static bool has_opaque_xattr(int fd)
{
	char v[4];
	ssize_t n = fgetxattr(fd, "user.overlay.opaque", v, sizeof(v));
	/* "y" only: "x" (6.7+) marks a dir holding xattr whiteouts, not an opaque one. */
	return n == 1 && v[0] == 'y';
}

static int walk_dir(struct walker *w, int upper_fd, int host_fd, const char *rel,
		    const char *opaque_rel, const struct timespec *opaque_taken, int depth);

/* Host entries of an opaque dir that the box's copy lacks: all deleted. */
static int hidden_host_entries(struct walker *w, int host_fd, const char *rel, char **upper_names,
			       size_t n_upper, const char *opaque_rel,
			       const struct timespec *opaque_taken)
{
	_cleanup_free_ char *what = xasprintf("%s/%s", w->ch->layers[w->layer].host, rel);
	char **names;
	size_t n;

	if (list_dir(host_fd, &names, &n, what, w->err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		struct change *c;
		_cleanup_free_ char *crel = NULL;

		if (commit_is_temp_name(names[i]) ||
		    bsearch(&names[i], upper_names, n_upper, sizeof(char *), strcmp_ptr))
			continue;
		if (fstatat(host_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			free_names(names, n);
			return error_set(w->err, errno, "cannot stat '%s/%s'", what, names[i]);
		}
		crel = join(rel, names[i]);
		c = add_change(w, crel, CHANGE_DELETED, false);
		c->kind = kind_of(st.st_mode);
		c->size = S_ISDIR(st.st_mode) ? 0 : (unsigned long long)st.st_size;
		c->host_mode = st.st_mode;
		c->taken = *opaque_taken;
		c->opaque_rel = xstrdup(opaque_rel);
	}
	free_names(names, n);
	return 0;
}

/* One entry of an upper dir, against the host entry of the same name. */
static int walk_entry(struct walker *w, int upper_fd, int host_fd, const char *rel,
		      const char *name, const char *opaque_rel, const struct timespec *opaque_taken,
		      int depth)
{
	_cleanup_free_ char *crel = join(rel, name);
	_cleanup_close_ int child_upper = -1;
	_cleanup_close_ int child_host = -1;
	struct statx stx;
	struct stat hst;
	bool host_exists = false;
	struct change *c;

	if (statx(upper_fd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &stx) < 0) {
		if (errno == ENOENT) /* a running box removed it meanwhile */
			return 0;
		return error_set(w->err, errno, "cannot stat '%s/%s'",
				 w->ch->layers[w->layer].upper, crel);
	}
	if (host_fd >= 0) {
		if (fstatat(host_fd, name, &hst, AT_SYMLINK_NOFOLLOW) == 0)
			host_exists = true;
		else if (errno != ENOENT)
			return error_set(w->err, errno, "cannot stat '%s/%s'",
					 w->ch->layers[w->layer].host, crel);
	}

	if (is_whiteout(&stx)) {
		c = add_change(w, crel, CHANGE_DELETED, !host_exists);
		c->taken = taken_time(&stx);
		if (host_exists) {
			c->kind = kind_of(hst.st_mode);
			c->size = S_ISDIR(hst.st_mode) ? 0 : (unsigned long long)hst.st_size;
			c->host_mode = hst.st_mode;
		}
		return 0;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		bool same = host_exists && same_entry(upper_fd, host_fd, name, &stx, &hst);
		c = add_change(w, crel, host_exists ? CHANGE_MODIFIED : CHANGE_ADDED, same);
		set_upper(c, &stx);
		c->host_mode = host_exists ? hst.st_mode : 0;
		if (S_ISREG(stx.stx_mode)) {
			mode_t had = host_exists && S_ISREG(hst.st_mode) ? hst.st_mode : 0;
			if ((stx.stx_mode & S_ISUID) && !(had & S_ISUID))
				c->flags |= CHANGE_SETUID;
			if ((stx.stx_mode & S_ISGID) && !(had & S_ISGID))
				c->flags |= CHANGE_SETGID;
			if (has_caps(upper_fd, name, w->ch->layers[w->layer].upper, crel))
				c->flags |= CHANGE_CAPS;
		}
		return 0;
	}

	child_upper = openat(upper_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (child_upper < 0 && errno == ENOENT)
		return 0;
	if (child_upper < 0)
		return error_set(w->err, errno, "cannot open '%s/%s'",
				 w->ch->layers[w->layer].upper, crel);
	bool opaque = has_opaque_xattr(child_upper);
	if (!host_exists || !S_ISDIR(hst.st_mode)) {
		c = add_change(w, crel, host_exists ? CHANGE_MODIFIED : CHANGE_ADDED, false);
		set_upper(c, &stx);
		c->host_mode = host_exists ? hst.st_mode : 0;
		c->opaque = opaque;
		return walk_dir(w, child_upper, -1, crel, NULL, NULL, depth + 1);
	}
	child_host = openat(host_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (child_host < 0)
		return error_set(w->err, errno, "cannot open '%s/%s'", w->ch->layers[w->layer].host,
				 crel);
	if ((stx.stx_mode & 07777) != (hst.st_mode & 07777)) {
		c = add_change(w, crel, CHANGE_MODIFIED, false);
		set_upper(c, &stx);
		c->host_mode = hst.st_mode;
		c->opaque = opaque;
	}
	/*
	 * Below an opaque dir overlayfs looks nothing up in the host, so its
	 * subdirs hide their host counterparts' entries too, marked or not.
	 */
	if (opaque) {
		struct timespec t = taken_time(&stx);
		return walk_dir(w, child_upper, child_host, crel, crel, &t, depth + 1);
	}
	return walk_dir(w, child_upper, child_host, crel, opaque_rel, opaque_taken, depth + 1);
}

/*
 * Compare the upper dir upper_fd with the host dir host_fd (O_PATH, or -1
 * where the host has none). rel is their path below the layer root; below
 * an opaque dir, opaque_rel names it and opaque_taken is its birth time.
 */
static int walk_dir(struct walker *w, int upper_fd, int host_fd, const char *rel,
		    const char *opaque_rel, const struct timespec *opaque_taken, int depth)
{
	_cleanup_free_ char *what = xasprintf("%s/%s", w->ch->layers[w->layer].upper, rel);
	char **names;
	size_t n;
	int r = 0;

	if (depth > WALK_DEPTH_MAX)
		return error_set(w->err, ELOOP, "cannot walk '%s'", what);
	if (list_dir(upper_fd, &names, &n, what, w->err) < 0)
		return -1;
	if (opaque_rel && host_fd >= 0)
		r = hidden_host_entries(w, host_fd, rel, names, n, opaque_rel, opaque_taken);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = walk_entry(w, upper_fd, host_fd, rel, names[i], opaque_rel, opaque_taken,
			       depth);
	free_names(names, n);
	return r;
}

static int walk_layer(struct walker *w)
{
	const struct change_layer *layer = &w->ch->layers[w->layer];
	_cleanup_close_ int upper_fd = open(layer->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int host_fd = -1;

	if (upper_fd < 0) {
		if (errno == ENOENT) /* a layer whose overlay was never mounted */
			return 0;
		return error_set(w->err, errno, "cannot open '%s'", layer->upper);
	}
	/*
	 * A host root that is gone, or is no directory any more, or is reached
	 * through a symlink now, holds none of the box's entries: all added.
	 * Commit refuses to write there.
	 */
	host_fd = beneath_open(AT_FDCWD, layer->host, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
	if (host_fd < 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
		return error_set(w->err, errno, "cannot open '%s'", layer->host);
	return walk_dir(w, upper_fd, host_fd, "", NULL, NULL, 0);
}

static int change_cmp(const void *a, const void *b)
{
	return strcmp(((const struct change *)a)->path, ((const struct change *)b)->path);
}

int changes_collect(struct changes *ch, const char *box_dir, const char *host_root,
		    struct error *err)
{
	_cleanup_free_ char *fs = xasprintf("%s/fs", box_dir);
	_cleanup_close_ int fs_fd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct walker w = {.ch = ch, .err = err};
	char **names = NULL;
	size_t n = 0;

	*ch = (struct changes){0};
	if (fs_fd < 0 && errno != ENOENT)
		return error_set(err, errno, "cannot open '%s'", fs);
	if (fs_fd >= 0 && list_dir(fs_fd, &names, &n, fs, err) < 0)
		return -1;
	ch->layers = xcalloc(n, sizeof(*ch->layers));
	for (size_t i = 0; i < n; i++) {
		char *path = layer_path_from_name(names[i]);
		if (!path) {
			warn("ignoring '%s/%s': not a layer name", fs, names[i]);
			continue;
		}
		ch->layers[ch->nlayers++] = (struct change_layer){
		    .path = path,
		    .host = xasprintf("%s%s", host_root, path),
		    .upper = xasprintf("%s/%s/upper", fs, names[i]),
		};
	}
	free_names(names, n);
	for (w.layer = 0; w.layer < ch->nlayers; w.layer++) {
		if (walk_layer(&w) < 0) {
			changes_release(ch);
			return -1;
		}
	}
	if (ch->n > 1)
		qsort(ch->v, ch->n, sizeof(*ch->v), change_cmp);
	return 0;
}

static void change_release(struct change *c)
{
	free(c->path);
	free(c->rel);
	free(c->opaque_rel);
}

void changes_release(struct changes *ch)
{
	for (size_t i = 0; i < ch->n; i++)
		change_release(&ch->v[i]);
	for (size_t i = 0; i < ch->nstale; i++)
		change_release(&ch->stale[i]);
	for (size_t i = 0; i < ch->nlayers; i++) {
		free(ch->layers[i].path);
		free(ch->layers[i].host);
		free(ch->layers[i].upper);
	}
	free(ch->v);
	free(ch->stale);
	free(ch->layers);
	*ch = (struct changes){0};
}

ssize_t changes_find(const struct changes *ch, const char *path)
{
	size_t lo = 0, hi = ch->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(path, ch->v[mid].path);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

int changes_select(const struct changes *ch, char *const *paths, size_t n, bool *selected,
		   const char *box, struct error *err)
{
	for (size_t i = 0; i < ch->n; i++)
		selected[i] = n == 0;
	for (size_t p = 0; p < n; p++) {
		bool any = false;
		for (size_t i = 0; i < ch->n; i++) {
			if (path_is_within(ch->v[i].path, paths[p])) {
				selected[i] = true;
				any = true;
			}
		}
		if (!any)
			return error_set(err, 0, "'%s' is not among box '%s''s changes", paths[p],
					 box);
	}
	return 0;
}

char *path_normalize(const char *cwd, const char *path)
{
	_cleanup_free_ char *full = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", cwd, path);
	char *out = xmalloc(strlen(full) + 2);
	size_t len = 0;
	char *p = full;

	/* Component by component; ".." drops the last one (never above "/"). */
	while (*p) {
		char *start, *end;
		size_t clen;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		start = p;
		end = strchr(start, '/');
		if (!end)
			end = start + strlen(start);
		clen = (size_t)(end - start);
		p = end;
		if (clen == 1 && start[0] == '.')
			continue;
		if (clen == 2 && start[0] == '.' && start[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, start, clen);
		len += clen;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

bool commit_is_temp_name(const char *name)
{
	size_t n = sizeof(COMMIT_TEMP_PREFIX) - 1;

	if (strncmp(name, COMMIT_TEMP_PREFIX, n) || strlen(name) != n + COMMIT_TEMP_RANDOM)
		return false;
	for (const char *p = name + n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}
