/* commit_check(): every selected change checked before anything changes (commit.h). */
#include "box/commit_internal.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

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
	if (commit_ts_after(&st.st_ctim, &t->taken))
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


void commit_temp_name(char buf[sizeof(TEMP_PREFIX) + TEMP_RANDOM])
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

void commit_clean_leftovers(struct ctx *x, int dfd, const char *display)
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

void commit_sync_dir(int dfd)
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

const char *commit_host_open_reason(int errnum)
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

void commit_conflict_msg(struct ctx *x, const struct change *c, struct commit_problems *p,
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

bool commit_is_conflict(struct ctx *x, const struct change *c, int hdfd, const char *name,
			const struct stat *hst)
{
	bool newer = commit_ts_after(&hst->st_ctim, &c->taken);

	if (!newer && S_ISDIR(hst->st_mode) && (c->type == CHANGE_DELETED || c->kind != KIND_DIR)) {
		struct tree_scan t = {.taken = c->taken};
		tree_scan(hdfd, name, name, hst->st_dev, &t, 0);
		free(t.where);
		newer = t.newer || t.errnum;
	}
	return newer && !commit_content_equal(x, c, hdfd, name, hst);
}

/* Every check that can be made before anything changes, for one change. */
static void check_one(struct ctx *x, const struct change *c, bool parent_planned,
		      struct commit_problems *p)
{
	_cleanup_free_ char *parent = commit_parent_path(c->path);
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
	if (c->type != CHANGE_DELETED && c->kind == KIND_FILE && !commit_upper_readable(x, c)) {
		_cleanup_close_ int fd = commit_open_upper_file(x, c);
		if (fd < 0) {
			add_problem(p, "cannot commit '%s': cannot read the box's copy: %s",
				    c->path, strerror(errno));
			return;
		}
	}
	if (parent_planned) /* made by this commit: nothing on the host to check */
		return;
	hdfd = commit_host_parent(x, c, &name);
	if (hdfd < 0) {
		add_problem(p, "cannot commit '%s': cannot open '%s': %s", c->path, parent,
			    commit_host_open_reason(errno));
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
	if (exists && !x->opts->force && commit_is_conflict(x, c, hdfd, name, &hst))
		commit_conflict_msg(x, c, p, NULL);
}

/* Whether the parent of c is a directory that this commit creates. */
static bool parent_planned(const struct changes *ch, const bool *selected, const struct change *c)
{
	_cleanup_free_ char *parent = commit_parent_path(c->path);
	ssize_t i = changes_find(ch, parent);

	return i >= 0 && selected[i] && commit_creates_dir(&ch->v[i]);
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
		p = commit_parent_path(ch->v[i].path);
		while (path_is_within(p, ch->layers[ch->v[i].layer].path) &&
		       strcmp(p, ch->layers[ch->v[i].layer].path)) {
			ssize_t j = changes_find(ch, p);
			char *up;
			if (j >= 0 && commit_creates_dir(&ch->v[j]))
				selected[j] = true;
			up = commit_parent_path(p);
			free(p);
			p = up;
		}
	}
	commit_ctx_init(&x, ch, opts);
	for (size_t i = 0; i < ch->n; i++)
		if (selected[i])
			check_one(&x, &ch->v[i], parent_planned(ch, selected, &ch->v[i]), problems);
	commit_ctx_release(&x);
	return 0;
}
