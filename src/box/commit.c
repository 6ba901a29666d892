/* commit_apply(): staging, one syncfs, then the renames or moves (commit.h). */
#include "box/beneath.h"
#include "box/commit_internal.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

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
	commit_temp_name(aside);
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
	_cleanup_close_ int in = commit_open_upper_file(x, c);
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
		commit_temp_name(s->tmp);
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
		int udfd = commit_upper_parent(x, c, &uname);
		if (udfd < 0 || !commit_read_link(udfd, uname, target, sizeof(target), &len))
			return error_set(err, errno, "cannot read the box's symlink '%s'", c->path);
		target[len] = '\0';
	}
	do {
		commit_temp_name(s->tmp);
		r = c->kind == KIND_SYMLINK
			? symlinkat(target, dfd, s->tmp)
			: mknodat(dfd, s->tmp, S_IFIFO | (c->upper_mode & 07777), 0);
	} while (r < 0 && errno == EEXIST);
	if (r < 0)
		return error_set(err, errno, "cannot create '%s'", c->path);
	if ((x->euid == 0 &&
	     fchownat(dfd, s->tmp, c->upper_uid, c->upper_gid, AT_SYMLINK_NOFOLLOW) < 0) ||
	    (c->kind != KIND_SYMLINK && beneath_chmod(dfd, s->tmp, c->upper_mode & 07777) < 0) ||
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
	    beneath_chmod(dfd, name, (c->upper_mode & 07777) | S_IRWXU) < 0)
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
		int h = commit_host_root(x, c->layer), u = commit_upper_root(x, c->layer);
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

/* The host dir of c's target (commit_host_parent), or -1 with err saying why not. */
static int target_dir(struct ctx *x, const struct change *c, const char *parent, const char **name,
		      struct error *err)
{
	int dfd = commit_host_parent(x, c, name);

	if (dfd < 0)
		error_set(err, 0, "cannot commit '%s': cannot open '%s': %s", c->path, parent,
			  commit_host_open_reason(errno));
	return dfd;
}

/* Stage one change (step 1): dirs are made, files and specials written aside. */
static int stage_one(struct ctx *x, const struct change *c, struct staged *s, struct error *err)
{
	_cleanup_free_ char *parent = commit_parent_path(c->path);
	const char *name;
	struct stat hst;
	int dfd;
	bool exists;

	dfd = target_dir(x, c, parent, &name, err);
	if (dfd < 0)
		return -1;
	commit_clean_leftovers(x, dfd, parent);
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
		if (exists && !x->opts->force && commit_is_conflict(x, c, dfd, name, &hst)) {
			commit_conflict_msg(x, c, NULL, err);
			return -1;
		}
		return make_dir(x, c, dfd, name, exists, err);
	case KIND_FILE: {
		const char *uname;
		int udfd = x->tmpfile_ok ? commit_upper_parent(x, c, &uname) : -1;
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
	_cleanup_free_ char *parent = commit_parent_path(c->path);
	const char *name;
	struct stat hst, pst;
	bool exists, is_dir;
	int dfd;

	if (c->type != CHANGE_DELETED && !s->temp && !s->tmpfile && !s->move)
		return 0; /* a directory, made when staged */
	dfd = target_dir(x, c, parent, &name, err);
	if (dfd < 0)
		return -1;
	if (s->move) {
		const char *uname;
		int udfd = commit_upper_parent(x, c, &uname);
		if (udfd < 0)
			return error_set(err, errno, "cannot read the box's copy of '%s'", c->path);
		if (renameat2(udfd, uname, dfd, name, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			return error_set(err, errno, "cannot write '%s'", c->path);
		exists = fstatat(dfd, name, &hst, AT_SYMLINK_NOFOLLOW) == 0;
		if (exists && !x->opts->force && commit_is_conflict(x, c, dfd, name, &hst)) {
			commit_conflict_msg(x, c, NULL, err);
			return -1;
		}
		/* is_conflict may have used the upper cache: the same dir, but look again. */
		udfd = commit_upper_parent(x, c, &uname);
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
			commit_temp_name(s->tmp);
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
	if (exists && !x->opts->force && commit_is_conflict(x, c, dfd, name, &hst)) {
		commit_conflict_msg(x, c, NULL, err);
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
		commit_temp_name(aside);
		/* Aside first, so that a kill leaves no half-removed tree in place. */
		if (renameat(dfd, name, dfd, aside) < 0)
			return error_set(err, errno, "cannot remove '%s'", c->path);
		commit_sync_dir(dfd);
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
		dfd = commit_host_parent(x, &x->ch->v[b->v[k].i], &name);
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
		int root = used[l] ? commit_host_root(x, l) : -1;
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
		dfd = commit_host_parent(x, c, &name);
		if (dfd < 0 || beneath_chmod(dfd, name, c->upper_mode & 07777) < 0)
			return error_set(err, errno, "cannot change the mode of '%s'", c->path);
	}
	return 0;
}

int commit_apply(const struct changes *ch, const bool *selected, const struct commit_opts *opts,
		 void (*done)(const struct change *c, void *arg), void *arg, struct error *err)
{
	_cleanup_free_ bool *committed = xcalloc(ch->n, sizeof(bool));
	struct batch b = {.max = batch_size()};
	struct ctx x;
	int r = 0;

	b.v = xcalloc(4 * b.max + 1, sizeof(*b.v));
	commit_ctx_init(&x, ch, opts);
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
	commit_forget_committed(&x, committed);
	commit_ctx_release(&x);
	return r;
}
