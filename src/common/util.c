#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static _Noreturn void oom(void)
{
	static const char msg[] = "hutch: out of memory\n";
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return s;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int write_file(const char *path, const char *content, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(content);
	ssize_t n;

	if (fd < 0)
		return error_set(err, errno, "cannot open '%s'", path);
	do
		n = write(fd, content, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return error_set(err, errno, "cannot write '%s'", path);
	if ((size_t)n != len)
		return error_set(err, EIO, "short write to '%s'", path);
	return 0;
}

char *read_file(const char *path, size_t max, struct error *err)
{
	return read_file_at(AT_FDCWD, path, max, err);
}

char *read_file_at(int dfd, const char *path, size_t max, struct error *err)
{
	_cleanup_close_ int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t cap = 4096, len = 0;

	if (fd < 0) {
		error_set(err, errno, "cannot open '%s'", path);
		return NULL;
	}
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;
		if (len + 1 >= cap) {
			if (cap >= max) {
				error_set(err, EFBIG, "cannot read '%s'", path);
				return NULL;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error_set(err, errno, "cannot read '%s'", path);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return steal_ptr(buf);
}

int mkdir_p(const char *path, mode_t mode, struct error *err)
{
	_cleanup_free_ char *p = xstrdup(path);
	char *s = p;

	for (;;) {
		char *slash;
		while (*s == '/')
			s++;
		slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (*p && mkdir(p, mode) < 0 && errno != EEXIST)
			return error_set(err, errno, "cannot create directory '%s'", p);
		if (!slash)
			break;
		*slash = '/';
		s = slash + 1;
	}
	return 0;
}

/* Empty and remove the directory dfd/name; never follows symlinks or crosses mounts. */
static int remove_at(int dfd, const char *name, dev_t dev, int depth)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *e;
	struct stat st;
	int fd;

	if (depth > 4096)
		return errno = ELOOP, -1;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
	if (st.st_dev != dev)
		return errno = EBUSY, -1;
	/* Overlay work dirs are created mode 0: open them up before descending. */
	if ((st.st_mode & S_IRWXU) != S_IRWXU)
		fchmodat(dfd, name, (st.st_mode & 07777) | S_IRWXU, 0);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1; /* removed meanwhile by someone else */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (remove_at(dirfd(d), e->d_name, dev, depth + 1) < 0)
			return -1;
	}
	if (errno)
		return -1;
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -1 : 0;
}

int remove_tree_at(int dfd, const char *name, dev_t dev)
{
	return remove_at(dfd, name, dev, 0);
}

int remove_tree(const char *path, struct error *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : error_set(err, errno, "cannot remove '%s'", path);
	if (remove_at(AT_FDCWD, path, st.st_dev, 0) < 0)
		return error_set(err, errno, "cannot remove '%s'", path);
	return 0;
}

int exit_status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_HUTCH_FAILED;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool path_is_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	/* FNV-1a, 64 bits: a fingerprint, no defence against collisions made on purpose. */
	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The power of 1024 that unit names (B 0, K 1 ... T 4), or -1. */
static int size_unit(const char *u)
{
	static const char letters[] = "BKMGT";
	const char *l = *u ? strchr(letters, toupper((unsigned char)*u)) : NULL;

	if (!l)
		return -1;
	u++;
	if (l != letters && (*u == 'i' || *u == 'I') && (u[1] == 'B' || u[1] == 'b'))
		u += 2;
	else if (l != letters && (*u == 'B' || *u == 'b'))
		u++;
	return *u ? -1 : (int)(l - letters);
}

int parse_size(const char *what, const char *s, uint64_t *out, struct error *err)
{
	uint64_t v = 0, bytes;
	const char *p = s ? s : "";
	int power;

	if (!isdigit((unsigned char)*p))
		goto invalid;
	for (; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
			goto too_large;
	if (!*p && v)
		return error_set(err, 0, "%s '%.64s' needs a unit: %.64sK, %.64sM, %.64sG", what, s, s,
				 s, s);
	power = *p ? size_unit(p) : 0;
	if (power < 0)
		goto invalid;
	bytes = v;
	for (int i = 0; i < power; i++)
		if (__builtin_mul_overflow(bytes, 1024, &bytes))
			goto too_large;
	if (bytes == 0)
		return error_set(err, 0, "%s '%.64s' must be more than zero", what, s);
	*out = bytes;
	return 0;
too_large:
	return error_set(err, 0, "%s '%.64s' is too large (at most 16 EiB - 1 byte)", what, s);
invalid:
	return error_set(err, 0,
			 "invalid %s '%.64s': use a whole number and a unit, e.g. 512K, 300M, 2G",
			 what, s ? s : "");
}

void stdio_to_null(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0)
		return;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}
