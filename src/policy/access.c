#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/mount.h"
#include "common/util.h"
#include "policy/access.h"
#include "policy/eventlog.h"
#include "common/banned.h"

enum rule_kind { RULE_DIRECT, RULE_READ_ONLY, RULE_HIDE };

struct rule {
	enum rule_kind kind;
	const char *path;
	size_t depth;
};

static size_t depth_of(const char *path)
{
	size_t d = 0;
	for (const char *p = path; *p; p++)
		d += *p == '/';
	return d;
}

static int cmp_rules(const void *a, const void *b)
{
	const struct rule *x = a, *y = b;
	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	return (int)x->kind - (int)y->kind;
}

/* A cover file could not be made: say so, and give back what was taken. */
static char *cover_failed(char *path, int fd, struct error *err)
{
	error_set(err, errno, "cannot create '%s'", path);
	if (fd >= 0)
		close(fd);
	free(path);
	return NULL;
}

/* An empty file no one may read or execute, to cover hidden and denied files. */
static char *blank_file(const char *box_dir, struct error *err)
{
	char *path = xasprintf("%s/blank", box_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0);

	if (fd < 0 || fchmod(fd, 0) < 0)
		return cover_failed(path, fd, err);
	close(fd);
	return path;
}

/*
 * A unix socket inode with nothing listening: open() of it fails (ENXIO)
 * for everyone, root in the box included, which a mode-0 file would not
 * stop. Hidden files are covered with it.
 */
static char *unopenable_file(const char *box_dir, struct error *err)
{
	char *path = xasprintf("%s/hidden", box_dir);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		return path;
	unlink(path);
	/* sun_path is short; the box's dir is not: bind through /proc/self/fd. */
	_cleanup_close_ int dirfd = open(box_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/hidden", dirfd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (dirfd < 0 || fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return cover_failed(path, fd, err);
	close(fd);
	return path;
}

static int hide(const char *target, const char *box_dir, const char *path, struct error *err)
{
	struct stat st;

	if (lstat(target, &st) < 0)
		return 0; /* nothing there to hide */
	if (S_ISLNK(st.st_mode))
		return 0; /* what it points to is hidden, or not, on its own */
	if (S_ISDIR(st.st_mode)) {
		/* Empty; unlistable but for root in the box, who sees it empty. */
		if (mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=000,size=4k") < 0)
			return error_set(err, errno, "cannot hide '%s'", path);
		return 0;
	}
	_cleanup_free_ char *cover = unopenable_file(box_dir, err);
	if (!cover || mount_bind(cover, target, true, err) < 0)
		return error_prefix(err, "cannot hide '%s'", path);
	return 0;
}

static int deny_exec(const char *newroot, const char *blank, const char *pattern, int log_fd,
		     struct error *err)
{
	const char *path_env = getenv("PATH");
	_cleanup_free_ char *dirs = xstrdup(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
	glob_t g = {0};
	int r = 0;

	if (strchr(pattern, '/')) {
		_cleanup_free_ char *full = xasprintf("%s%s", newroot, pattern);
		glob(full, GLOB_NOSORT, NULL, &g);
	} else {
		char *save = NULL;
		for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
			_cleanup_free_ char *full = xasprintf("%s%s/%s", newroot, d, pattern);
			if (d[0] == '/')
				glob(full, GLOB_NOSORT | (g.gl_pathc ? GLOB_APPEND : 0), NULL, &g);
		}
	}
	for (size_t i = 0; i < g.gl_pathc && r == 0; i++) {
		struct stat st;
		if (lstat(g.gl_pathv[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		const char *path = g.gl_pathv[i] + strlen(newroot);
		if (mount_bind(blank, g.gl_pathv[i], true, err) < 0) {
			r = error_prefix(err, "cannot deny '%s'", path);
			break;
		}
		_cleanup_free_ char *qpath = json_quote(path);
		_cleanup_free_ char *qpat = json_quote(pattern);
		_cleanup_free_ char *args = xasprintf("{\"path\":%s,\"pattern\":%s}", qpath, qpat);
		_cleanup_free_ char *why = xasprintf("'%s' is covered by --deny-exec '%s'", path,
						     pattern);
		eventlog_write(log_fd, 1, "deny-exec", args, "denied", why);
	}
	globfree(&g);
	return r;
}

int access_apply(const char *newroot, const char *box_dir, const struct policy *p, int log_fd,
		 struct error *err)
{
	size_t n = p->hide.n + p->read_only.n + p->direct.n, k = 0;
	_cleanup_free_ struct rule *rules = xcalloc(n, sizeof(*rules));
	_cleanup_free_ char *blank = NULL;

	if (n == 0 && p->deny_exec.n == 0)
		return 0;
	blank = blank_file(box_dir, err);
	if (!blank)
		return -1;
	for (size_t i = 0; i < p->direct.n; i++)
		rules[k++] = (struct rule){RULE_DIRECT, p->direct.v[i], depth_of(p->direct.v[i])};
	for (size_t i = 0; i < p->read_only.n; i++)
		rules[k++] = (struct rule){RULE_READ_ONLY, p->read_only.v[i],
					   depth_of(p->read_only.v[i])};
	for (size_t i = 0; i < p->hide.n; i++)
		rules[k++] = (struct rule){RULE_HIDE, p->hide.v[i], depth_of(p->hide.v[i])};
	qsort(rules, n, sizeof(*rules), cmp_rules);

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *target = xasprintf("%s%s", newroot, rules[i].path);
		struct stat st;

		switch (rules[i].kind) {
		case RULE_DIRECT:
			if (lstat(rules[i].path, &st) < 0)
				return error_set(err, errno, "cannot use --direct '%s'", rules[i].path);
			/* The box may have deleted its view of it: make the mount point again. */
			struct stat in_box;
			if (lstat(target, &in_box) < 0 && make_target(target, st.st_mode, err) < 0)
				return error_prefix(err, "cannot use --direct '%s'", rules[i].path);
			if (mount_bind(rules[i].path, target, false, err) < 0)
				return error_prefix(err, "cannot use --direct '%s'", rules[i].path);
			break;
		case RULE_READ_ONLY:
			if (lstat(target, &st) < 0)
				break; /* nothing to write to; creating it needs its parent writable */
			if (mount_bind(target, target, true, err) < 0)
				return error_prefix(err, "cannot use --read-only '%s'", rules[i].path);
			break;
		case RULE_HIDE:
			if (hide(target, box_dir, rules[i].path, err) < 0)
				return -1;
			break;
		}
	}
	for (size_t i = 0; i < p->deny_exec.n; i++)
		if (deny_exec(newroot, blank, p->deny_exec.v[i], log_fd, err) < 0)
			return -1;
	return 0;
}

void access_default_hides(const char *home, struct strlist *out)
{
	static const char *const secrets[] = {
		".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube",
		".docker/config.json", ".netrc", ".git-credentials", ".password-store",
		/* Browser profiles: cookies, saved passwords, session tokens. */
		".mozilla", ".config/google-chrome", ".config/chromium",
		".config/BraveSoftware", ".config/microsoft-edge", ".var/app/org.mozilla.firefox",
		".var/app/com.google.Chrome", ".local/share/keyrings",
	};

	access_default_tmp_hides("/tmp", out);
	if (!home || home[0] != '/')
		return;
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", strcmp(home, "/") ? home : "", secrets[i]);
		strlist_add(out, p);
	}
}

void access_default_tmp_hides(const char *tmp, struct strlist *out)
{
	static const char *const patterns[] = {"krb5cc_*", "ssh-*"};
	const char *cc = getenv("KRB5CCNAME");
	glob_t g = {0};

	for (size_t i = 0; i < ARRAY_SIZE(patterns); i++) {
		_cleanup_free_ char *pat = xasprintf("%s/%s", tmp, patterns[i]);
		glob(pat, GLOB_NOSORT | GLOB_NOESCAPE | (g.gl_pathc ? GLOB_APPEND : 0), NULL, &g);
	}
	/* Another user's are unreadable anyway: a mount each would only cost start-up time. */
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (access(g.gl_pathv[i], R_OK) == 0)
			strlist_add(out, g.gl_pathv[i]);
	globfree(&g);
	/* "FILE:/path", "DIR:/path" or a bare path: wherever it is, it is a credential. */
	if (cc && (str_has_prefix(cc, "FILE:") || str_has_prefix(cc, "DIR:")))
		cc = strchr(cc, ':') + 1;
	if (cc && cc[0] == '/' && access(cc, F_OK) == 0)
		strlist_add(out, cc);
}
