#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/pasta.h"
#include "policy/profile.h"
#include "net/allow.h"
#include "common/banned.h"

#define PROFILE_SECTION "box"
#define PROFILE_SIZE_MAX (1024 * 1024) /* a profile is a few lines */

enum key_kind {
	KEY_HIDE,
	KEY_READ_ONLY,
	KEY_DIRECT,
	KEY_DENY_EXEC,
	KEY_ALLOW,
	KEY_PUBLISH,
	KEY_HOST_PORT,
	KEY_SECCOMP,
	KEY_MEMORY,
	KEY_CPUS,
	KEY_PIDS,
	KEY_TIMEOUT,
	KEY_MAX_FILE_SIZE,
	KEY_MAX_OPEN_FILES,
	KEY_PRIVATE_TMP,
	KEY_NET,
	KEY_COUNT,
};

static const char *const key_names[KEY_COUNT] = {
    [KEY_HIDE] = "hide",
    [KEY_READ_ONLY] = "read-only",
    [KEY_DIRECT] = "direct",
    [KEY_DENY_EXEC] = "deny-exec",
    [KEY_ALLOW] = "allow",
    [KEY_PUBLISH] = "publish",
    [KEY_HOST_PORT] = "host-port",
    [KEY_SECCOMP] = "seccomp",
    [KEY_MEMORY] = "memory",
    [KEY_CPUS] = "cpus",
    [KEY_PIDS] = "pids",
    [KEY_TIMEOUT] = "timeout",
    [KEY_MAX_FILE_SIZE] = "max-file-size",
    [KEY_MAX_OPEN_FILES] = "max-open-files",
    [KEY_PRIVATE_TMP] = "private-tmp",
    [KEY_NET] = "net",
};

static bool key_is_list(enum key_kind k)
{
	return k <= KEY_HOST_PORT;
}

/* One parse of one file: the lines are read by read_line() (so that their
 * numbers are known exactly) and handed to inih, which calls on_pair(). */
struct profile_parse {
	const char *path;
	FILE *f;
	char *buf;
	size_t cap;
	int line;	       /* number of the line inih is parsing */
	int err_line;	       /* first line with an error; 0: none yet */
	char reason[768];      /* why that line is wrong */
	int set_on[KEY_COUNT]; /* line each key was last set on */
	struct policy q;       /* what the profile says, merged into p at the end */
};

static int parse_fail(struct profile_parse *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int parse_fail(struct profile_parse *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->err_line)
		return 0;
	ps->err_line = ps->line;
	va_start(ap, fmt);
	vsnprintf(ps->reason, sizeof(ps->reason), fmt, ap);
	va_end(ap);
	return 0; /* inih's "handler failed" */
}

/* The name inside "[name]" (blanks around it dropped), or NULL if line is no section header. */
static bool section_name(const char *line, const char **start, size_t *len)
{
	const char *s = line, *end;

	if (!strncmp(s, "\xef\xbb\xbf", 3)) /* a UTF-8 byte order mark, which inih skips */
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '[')
		return false;
	s++;
	end = strchr(s, ']');
	if (!end)
		return false; /* inih reports it as a syntax error */
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*start = s;
	*len = (size_t)(end - s);
	return true;
}

/*
 * inih's line reader. Reading the lines here keeps ps->line exact (inih
 * would split a long line in two and count both) and lets section headers
 * be checked where they stand: inih only reports a section through the keys
 * under it, so an empty [net] would otherwise pass unnoticed.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct profile_parse *ps = stream;
	const char *name;
	size_t len;
	ssize_t n;

	if (ps->err_line)
		return NULL; /* stop at the first error */
	n = getline(&ps->buf, &ps->cap, ps->f);
	if (n < 0)
		return NULL;
	ps->line++;
	if (memchr(ps->buf, '\0', (size_t)n)) {
		parse_fail(ps, "the line holds a NUL byte");
		return NULL;
	}
	if (n >= num) {
		parse_fail(ps, "line too long (at most %d bytes)", num - 2);
		return NULL;
	}
	if (section_name(ps->buf, &name, &len) &&
	    (len != strlen(PROFILE_SECTION) || strncmp(name, PROFILE_SECTION, len))) {
		parse_fail(ps, "unknown section [%.*s] (a profile has one section, [%s])",
			   (int)(len > 64 ? 64 : len), name, PROFILE_SECTION);
		return NULL;
	}
	memcpy(str, ps->buf, (size_t)n + 1);
	return str;
}

/* "~/x" -> "$HOME/x"; other paths must be absolute. Newly allocated, or NULL after parse_fail(). */
static char *profile_path(struct profile_parse *ps, const char *key, const char *value,
			  bool name_ok)
{
	const char *home = getenv("HOME");

	if (value[0] == '/')
		return xstrdup(value);
	if (value[0] == '~' && (value[1] == '/' || !value[1])) {
		if (!home || home[0] != '/') {
			parse_fail(ps, "%s: cannot expand '~': HOME is not an absolute path", key);
			return NULL;
		}
		return xasprintf("%s%s", home, value + 1);
	}
	if (name_ok && !strchr(value, '/'))
		return xstrdup(value);
	parse_fail(ps, "%s: '%s' is not an absolute path (start it with '/' or '~/')", key, value);
	return NULL;
}

static int set_list(struct profile_parse *ps, enum key_kind k, const char *value)
{
	static const size_t offsets[] = {
	    [KEY_HIDE] = offsetof(struct policy, hide),
	    [KEY_READ_ONLY] = offsetof(struct policy, read_only),
	    [KEY_DIRECT] = offsetof(struct policy, direct),
	    [KEY_DENY_EXEC] = offsetof(struct policy, deny_exec),
	};
	struct strlist *l;
	struct allow_rule rule;
	_cleanup_free_ char *path = NULL;
	struct net_publish pub;
	struct error err;
	uint16_t port;

	if (k == KEY_ALLOW) {
		if (allow_parse(value, &rule, &err) < 0)
			return parse_fail(ps, "%s", err.msg);
		strlist_add(&ps->q.allow, value);
		return 1;
	}

	/* Ports, not paths: checked as the command line checks them. */
	if (k == KEY_PUBLISH || k == KEY_HOST_PORT) {
		if ((k == KEY_PUBLISH ? net_publish_parse(value, &pub, &err)
				      : net_host_port_parse(value, &port, &err)) < 0)
			return parse_fail(ps, "%s", err.msg);
		strlist_add(k == KEY_PUBLISH ? &ps->q.publish : &ps->q.host_port, value);
		return 1;
	}
	l = (struct strlist *)((char *)&ps->q + offsets[k]);
	path = profile_path(ps, key_names[k], value, k == KEY_DENY_EXEC);
	if (!path)
		return 0;
	strlist_add(l, path);
	return 1;
}

static int set_scalar(struct profile_parse *ps, enum key_kind k, const char *value)
{
	struct policy *q = &ps->q;
	struct error err;
	int r = -1;

	if (ps->set_on[k])
		return parse_fail(ps, "%s is already set on line %d", key_names[k], ps->set_on[k]);
	switch (k) {
	case KEY_SECCOMP:
		r = parse_seccomp(value, &q->seccomp, &err);
		break;
	case KEY_MEMORY:
		/* The message names the key: no prefix. */
		if (parse_size(key_names[k], value, &q->memory, &err) < 0)
			return parse_fail(ps, "%s", err.msg);
		r = 0;
		break;
	case KEY_CPUS:
		r = parse_cpus(value, &q->cpus_milli, &err);
		break;
	case KEY_PIDS:
		r = parse_count(value, &q->pids, &err);
		break;
	case KEY_TIMEOUT:
		r = parse_duration_ms(value, &q->timeout_ms, &err);
		break;
	case KEY_MAX_FILE_SIZE:
		if (parse_size(key_names[k], value, &q->max_file_size, &err) < 0)
			return parse_fail(ps, "%s", err.msg);
		r = 0;
		break;
	case KEY_MAX_OPEN_FILES:
		r = parse_count(value, &q->max_open_files, &err);
		break;
	case KEY_PRIVATE_TMP:
		r = parse_bool(value, &q->private_tmp, &err);
		break;
	case KEY_NET:
		r = parse_net(value, &q->net, &err);
		break;
	default:
		return parse_fail(ps, "%s is not a setting", key_names[k]); /* not reached */
	}
	if (r < 0)
		return parse_fail(ps, "%s: %s", key_names[k], err.msg);
	ps->set_on[k] = ps->line;
	return 1;
}

/* inih's handler: one "key = value" line, both trimmed. */
static int on_pair(void *user, const char *section, const char *key, const char *value)
{
	struct profile_parse *ps = user;
	char alt[64];

	if (!*section)
		return parse_fail(ps, "'%s' is outside a section (start the profile with [%s])",
				  key, PROFILE_SECTION);
	for (int k = 0; k < KEY_COUNT; k++) {
		if (strcmp(key, key_names[k]))
			continue;
		if (!*value)
			return parse_fail(ps, "%s needs a value", key);
		return key_is_list(k) ? set_list(ps, k, value) : set_scalar(ps, k, value);
	}
	/* "read_only" and "--memory" are likely slips: say what was meant. */
	snprintf(alt, sizeof(alt), "%s", key + (str_has_prefix(key, "--") ? 2 : 0));
	for (char *c = alt; *c; c++)
		*c = *c == '_' ? '-' : *c;
	for (int k = 0; k < KEY_COUNT; k++)
		if (!strcmp(alt, key_names[k]))
			return parse_fail(ps, "unknown key '%s' (did you mean '%s'?)", key,
					  key_names[k]);
	return parse_fail(
	    ps,
	    "unknown key '%.64s' (known: hide, read-only, direct, deny-exec, allow, seccomp, "
	    "memory, cpus, pids, timeout, max-file-size, max-open-files, private-tmp, net, "
	    "publish, host-port)",
	    key);
}

static void strlist_append(struct strlist *to, const struct strlist *from)
{
	for (size_t i = 0; i < from->n; i++)
		strlist_add(to, from->v[i]);
}

static void merge(struct policy *p, const struct profile_parse *ps)
{
	const struct policy *q = &ps->q;

	strlist_append(&p->hide, &q->hide);
	strlist_append(&p->read_only, &q->read_only);
	strlist_append(&p->direct, &q->direct);
	strlist_append(&p->deny_exec, &q->deny_exec);
	strlist_append(&p->allow, &q->allow);
	strlist_append(&p->publish, &q->publish);
	strlist_append(&p->host_port, &q->host_port);
	if (ps->set_on[KEY_NET])
		p->net = q->net;
	if (ps->set_on[KEY_SECCOMP])
		p->seccomp = q->seccomp;
	if (ps->set_on[KEY_MEMORY])
		p->memory = q->memory;
	if (ps->set_on[KEY_CPUS])
		p->cpus_milli = q->cpus_milli;
	if (ps->set_on[KEY_PIDS])
		p->pids = q->pids;
	if (ps->set_on[KEY_TIMEOUT])
		p->timeout_ms = q->timeout_ms;
	if (ps->set_on[KEY_MAX_FILE_SIZE])
		p->max_file_size = q->max_file_size;
	if (ps->set_on[KEY_MAX_OPEN_FILES])
		p->max_open_files = q->max_open_files;
	if (ps->set_on[KEY_PRIVATE_TMP])
		p->private_tmp = q->private_tmp;
}

/*
 * Debian's libinih (55-1) turns inih's compile-time options into these
 * globals; upstream inih has only the macros. Values are taken literally
 * (no inline ';' comments, no continuation lines) so that a path holding
 * " ;" or a line starting with a blank means what it says.
 */
static void inih_configure(void)
{
	ini_allow_multiline = false;
	ini_allow_inline_comments = false;
	ini_allow_no_value = false;
	ini_stop_on_first_error = true;
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = PROFILE_LINE_MAX;
	ini_initial_alloc = PROFILE_LINE_MAX;
}

/* Parse the profile open on fd (closed here); path names it in messages. */
static int profile_parse_fd(int fd, const char *path, struct policy *p, struct error *err)
{
	struct profile_parse ps = {.path = path};
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		close(fd);
		return error_set(err, errno, "cannot read profile '%s'", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return error_set(err, 0, "profile '%s' is not a regular file", path);
	}
	if (st.st_size > PROFILE_SIZE_MAX) {
		close(fd);
		return error_set(err, 0, "profile '%s' is too large (over %d bytes)", path,
				 PROFILE_SIZE_MAX);
	}
	ps.f = fdopen(fd, "r");
	if (!ps.f) {
		close(fd);
		return error_set(err, errno, "cannot read profile '%s'", path);
	}
	inih_configure();
	r = ini_parse_stream(read_line, &ps, on_pair, &ps);
	if (!ps.err_line && ferror(ps.f))
		error_set(err, EIO, "cannot read profile '%s'", path);
	else if (r == -2)
		error_set(err, ENOMEM, "cannot parse profile '%s'", path);
	else if (ps.err_line)
		error_set(err, 0, "%s:%d: %s", path, ps.err_line, ps.reason);
	else if (r > 0)
		error_set(err, 0, "%s:%d: expected 'key = value' or '[%s]'", path, r,
			  PROFILE_SECTION);
	else
		merge(p, &ps);
	fclose(ps.f);
	free(ps.buf);
	policy_release(&ps.q);
	return ps.err_line || r != 0 ? -1 : 0;
}

static int open_profile(const char *path)
{
	/* O_NONBLOCK: a FIFO planted as a profile must not hang hutch. */
	return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

static int profile_name_check(const char *name, struct error *err)
{
	if (!*name)
		return error_set(err, 0, "invalid profile name '': empty");
	if (strchr(name, '/'))
		return error_set(err, 0, "invalid profile name '%s': contains '/'", name);
	if (name[0] == '.')
		return error_set(err, 0, "invalid profile name '%s': must not start with '.'",
				 name);
	if (strlen(name) > 200)
		return error_set(
		    err, 0, "invalid profile name '%.40s...': longer than 200 characters", name);
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return error_set(err, 0,
					 "invalid profile name: contains a control character");
	return 0;
}

/* The user's profile folder, or NULL without XDG_CONFIG_HOME and HOME. */
static char *user_profile_dir(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	/* The XDG spec says to ignore a relative XDG_CONFIG_HOME. */
	if (xdg && xdg[0] == '/')
		return xasprintf("%s/hutch/profiles", xdg);
	if (home && home[0] == '/')
		return xasprintf("%s/.config/hutch/profiles", home);
	return NULL;
}

int profile_load(const char *name, struct policy *p, struct error *err)
{
	_cleanup_free_ char *dir = user_profile_dir();
	_cleanup_free_ char *user = dir ? xasprintf("%s/%s.conf", dir, name) : NULL;
	_cleanup_free_ char *sys = xasprintf("/etc/hutch/profiles/%s.conf", name);
	const char *path = user;
	int fd = -1;

	if (profile_name_check(name, err) < 0)
		return -1;
	if (user)
		fd = open_profile(user);
	/* Only a missing user profile falls through to /etc; an unreadable one is an error. */
	if (fd < 0 && (!user || errno == ENOENT || errno == ENOTDIR)) {
		path = sys;
		fd = open_profile(sys);
		if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
			if (user)
				return error_set(err, 0,
						 "no profile named '%s' (looked in %s and %s)",
						 name, user, sys);
			return error_set(err, 0, "no profile named '%s' (looked in %s)", name, sys);
		}
	}
	if (fd < 0)
		return error_set(err, errno, "cannot open profile '%s'", path);
	if (profile_parse_fd(fd, path, p, err) < 0)
		return -1;
	free(p->profile);
	p->profile = xstrdup(name);
	return 0;
}
