/* After a commit: the box forgets what the host now has, and keeps what changed meanwhile. */
#include "box/commit_internal.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/*
 * Whether a stale entry of the box (see struct changes) is still no change:
 * a whiteout whose host entry is gone, or a copy whose host entry has the
 * same type, mode, size, mtime and content. Its removal then changes
 * nothing the box sees (unless an opaque dir above hides the host's entry).
 */
static bool still_same(struct ctx *x, const struct change *c)
{
	const char *name;
	int dfd = commit_host_parent(x, c, &name);
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
	return commit_content_equal(x, c, dfd, name, &hst);
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

void commit_forget_committed(struct ctx *x, const bool *committed)
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
		    (pfd = commit_upper_parent(x, &probe, &name)) < 0)
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
		if ((pfd = commit_upper_parent(x, c, &name)) >= 0)
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
		if ((pfd = commit_upper_parent(x, &probe, &name)) >= 0)
			unlink_upper(x, pfd, name, AT_REMOVEDIR); /* fails where entries remain */
	}
	for (size_t i = 0; i < nkept; i++)
		free(kept[i].rel);
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i].rel);
	free(kept);
	free(dirs);
}
