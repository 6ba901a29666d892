/*
 * commit: where it reads and writes (box/beneath.h lookups below each
 * layer, see commit_internal.h for why), and comparing a box copy with the
 * host's.
 */
#include "box/beneath.h"
#include "box/commit_internal.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

void commit_ctx_init(struct ctx *x, const struct changes *ch, const struct commit_opts *opts)
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

void commit_ctx_release(struct ctx *x)
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

int commit_host_root(struct ctx *x, size_t layer)
{
	if (x->host_root[layer] < 0)
		x->host_root[layer] =
		    beneath_open(AT_FDCWD, x->ch->layers[layer].host, O_PATH | O_DIRECTORY,
				 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	return x->host_root[layer];
}

int commit_upper_root(struct ctx *x, size_t layer)
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

char *commit_parent_path(const char *path)
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
	pc->fd = beneath_open(root, parent, O_PATH | O_DIRECTORY, resolve);
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

int commit_host_parent(struct ctx *x, const struct change *c, const char **name)
{
	return cached_parent(&x->host_dir, commit_host_root(x, c->layer), c->layer, c->rel, name,
			     HOST_RESOLVE);
}

int commit_upper_parent(struct ctx *x, const struct change *c, const char **name)
{
	return cached_parent(&x->upper_dir, commit_upper_root(x, c->layer), c->layer, c->rel, name,
			     UPPER_RESOLVE);
}

bool commit_ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

bool commit_creates_dir(const struct change *c)
{
	return c->kind == KIND_DIR && c->type != CHANGE_DELETED &&
	       (c->host_mode == 0 || !S_ISDIR(c->host_mode));
}

int commit_open_upper_file(struct ctx *x, const struct change *c)
{
	const char *name;
	int dfd = commit_upper_parent(x, c, &name);
	int fd, e;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0 || errno != EACCES || c->upper_uid != x->euid)
		return fd;
	if (beneath_chmod(dfd, name, (c->upper_mode & 07777) | S_IRUSR) < 0)
		return errno = EACCES, -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	e = errno;
	beneath_chmod(dfd, name, c->upper_mode & 07777);
	errno = e;
	return fd;
}

bool commit_upper_readable(struct ctx *x, const struct change *c)
{
	const char *name;
	int dfd = commit_upper_parent(x, c, &name);

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

bool commit_read_link(int dfd, const char *name, char *buf, size_t size, size_t *len)
{
	ssize_t n = readlinkat(dfd, name, buf, size);
	if (n < 0 || (size_t)n >= size)
		return false;
	*len = (size_t)n;
	return true;
}

bool commit_content_equal(struct ctx *x, const struct change *c, int hdfd, const char *name,
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
		u = commit_open_upper_file(x, c);
		h = openat(hdfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		return u >= 0 && h >= 0 && fds_equal(u, h);
	}
	if (c->kind == KIND_SYMLINK) {
		char a[4096], b[4096];
		size_t na, nb;
		const char *uname;
		int udfd = commit_upper_parent(x, c, &uname);
		return udfd >= 0 && commit_read_link(udfd, uname, a, sizeof(a), &na) &&
		       commit_read_link(hdfd, name, b, sizeof(b), &nb) && na == nb &&
		       !memcmp(a, b, na);
	}
	return true;
}
