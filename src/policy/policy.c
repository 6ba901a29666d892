#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "policy/policy.h"
#include "common/banned.h"

void strlist_add(struct strlist *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

void strlist_release(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void policy_release(struct policy *p)
{
	strlist_release(&p->hide);
	strlist_release(&p->read_only);
	strlist_release(&p->direct);
	strlist_release(&p->deny_exec);
	strlist_release(&p->allow);
	strlist_release(&p->publish);
	strlist_release(&p->host_port);
	free(p->profile);
	p->profile = NULL;
}

static uint64_t hash_paths(uint64_t h, const struct strlist *l)
{
	h = hash_bytes(h, &l->n, sizeof(l->n));
	for (size_t i = 0; i < l->n; i++) {
		/* What the box mounts over a path depends on what it is, and which. */
		struct stat st;
		uint64_t what[3] = {0};
		char target[PATH_MAX];
		ssize_t n = -1;
		if (lstat(l->v[i], &st) == 0) {
			what[0] = st.st_mode & S_IFMT;
			what[1] = st.st_dev;
			what[2] = st.st_ino;
			if (S_ISLNK(st.st_mode))
				n = readlink(l->v[i], target, sizeof(target));
		}
		h = hash_bytes(h, l->v[i], strlen(l->v[i]) + 1);
		h = hash_bytes(h, what, sizeof(what));
		if (n > 0)
			h = hash_bytes(h, target, (size_t)n);
	}
	return h;
}

bool box_may_linger(const struct policy *p, bool as_root)
{
	return p->seccomp == FILTER_DEFAULT && !as_root && p->read_only.n == 0 &&
	       p->direct.n == 0 && p->deny_exec.n == 0 && p->allow.n == 0;
}

static uint64_t hash_words(uint64_t h, const struct strlist *l)
{
	h = hash_bytes(h, &l->n, sizeof(l->n));
	for (size_t i = 0; i < l->n; i++)
		h = hash_bytes(h, l->v[i], strlen(l->v[i]) + 1);
	return h;
}

uint64_t policy_hash(const struct policy *p, uint64_t h)
{
	const uint64_t limits[] = {p->memory,  p->cpus_milli,    p->pids,
				   p->timeout_ms, p->max_file_size, p->max_open_files,
				   p->seccomp, p->no_default_hide, p->private_tmp, p->net};
	const struct strlist *words[] = {&p->deny_exec, &p->publish, &p->host_port, &p->allow};

	h = hash_paths(h, &p->hide);
	h = hash_paths(h, &p->read_only);
	h = hash_paths(h, &p->direct);
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
		h = hash_words(h, words[w]);
	return hash_bytes(h, limits, sizeof(limits));
}

uint64_t policy_net_hash(const struct policy *p, uint64_t h)
{
	const uint64_t net = p->net;

	h = hash_words(h, &p->allow);
	h = hash_words(h, &p->publish);
	h = hash_words(h, &p->host_port);
	return hash_bytes(h, &net, sizeof(net));
}

/* Append " OPT WORD" for each word of l to buf[*off..len), as long as it fits. */
static void describe_words(char *buf, size_t len, size_t *off, const char *opt,
			   const struct strlist *l)
{
	for (size_t i = 0; i < l->n && *off < len; i++) {
		int n = snprintf(buf + *off, len - *off, " %s %s", opt, l->v[i]);
		*off = n < 0 || (size_t)n >= len - *off ? len : *off + (size_t)n;
	}
}

void policy_net_describe(const struct policy *p, char *buf, size_t len)
{
	size_t off;

	if (!len)
		return;
	/* --allow is --net user, limited to what it names: say the one that was given. */
	if (p->net != NET_USER)
		snprintf(buf, len, "--net none");
	else
		snprintf(buf, len, "%s", p->allow.n ? "" : "--net user");
	off = strlen(buf);
	describe_words(buf, len, &off, "--allow", &p->allow);
	describe_words(buf, len, &off, "--publish", &p->publish);
	describe_words(buf, len, &off, "--host-port", &p->host_port);
	if (buf[0] == ' ')
		memmove(buf, buf + 1, strlen(buf));
}

/* A whole number with an optional suffix; the suffix is returned in *rest. */
static int parse_number(const char *s, uint64_t *out, const char **rest)
{
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	*out = v;
	*rest = end;
	return 0;
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

int parse_duration_ms(const char *s, uint64_t *out, struct error *err)
{
	const char *rest;
	uint64_t v, mult;

	if (parse_number(s, &v, &rest) < 0)
		return error_set(err, 0, "invalid duration '%s' (use e.g. 30s, 500ms, 5m)",
				 s ? s : "");
	if (!*rest || !strcmp(rest, "s"))
		mult = 1000;
	else if (!strcmp(rest, "ms"))
		mult = 1;
	else if (!strcmp(rest, "m"))
		mult = 60 * 1000;
	else if (!strcmp(rest, "h"))
		mult = 3600 * 1000;
	else
		return error_set(err, 0, "invalid duration '%s' (use e.g. 30s, 500ms, 5m)", s);
	if (mul_overflows(v, mult, out) || *out == 0)
		return error_set(err, 0, "invalid duration '%s': out of range", s);
	return 0;
}

int parse_cpus(const char *s, uint32_t *out, struct error *err)
{
	const char *rest;
	uint64_t whole, frac = 0, scale = 100;

	if (parse_number(s, &whole, &rest) < 0)
		return error_set(err, 0, "invalid CPU count '%s' (use e.g. 2 or 0.5)", s ? s : "");
	if (*rest == '.') {
		rest++;
		if (!isdigit((unsigned char)*rest))
			return error_set(err, 0, "invalid CPU count '%s' (use e.g. 2 or 0.5)", s);
		for (; isdigit((unsigned char)*rest); rest++) {
			/* Thousandths are the unit: a finer digit would be silently lost. */
			if (scale == 0 && *rest != '0')
				return error_set(err, 0,
						 "invalid CPU count '%s': at most 3 decimals", s);
			frac += (uint64_t)(*rest - '0') * scale;
			scale /= 10;
		}
	}
	if (*rest)
		return error_set(err, 0, "invalid CPU count '%s' (use e.g. 2 or 0.5)", s);
	if (whole > 4096 || whole * 1000 + frac > 4096000 || whole * 1000 + frac < 10)
		return error_set(err, 0, "invalid CPU count '%s': out of range (0.01 to 4096)", s);
	*out = (uint32_t)(whole * 1000 + frac);
	return 0;
}

int parse_count(const char *s, uint64_t *out, struct error *err)
{
	const char *rest;

	if (parse_number(s, out, &rest) < 0 || *rest || *out == 0)
		return error_set(err, 0, "invalid number '%s' (use a whole number above 0)",
				 s ? s : "");
	return 0;
}

int parse_seccomp(const char *s, enum seccomp_mode *out, struct error *err)
{
	if (!s)
		return error_set(err, 0, "missing seccomp mode (default, strict or off)");
	if (!strcmp(s, "default"))
		*out = FILTER_DEFAULT;
	else if (!strcmp(s, "strict"))
		*out = FILTER_STRICT;
	else if (!strcmp(s, "off"))
		*out = FILTER_OFF;
	else
		return error_set(err, 0, "invalid seccomp mode '%s' (default, strict or off)", s);
	return 0;
}

int parse_net(const char *s, enum net_mode *out, struct error *err)
{
	if (s && !strcmp(s, "none"))
		*out = NET_NONE;
	else if (s && !strcmp(s, "user"))
		*out = NET_USER;
	else
		return error_set(err, 0, "invalid network '%s' (none or user)", s ? s : "");
	return 0;
}

int parse_bool(const char *s, bool *out, struct error *err)
{
	if (s && !strcmp(s, "true"))
		*out = true;
	else if (s && !strcmp(s, "false"))
		*out = false;
	else
		return error_set(err, 0, "invalid value '%s' (true or false)", s ? s : "");
	return 0;
}

void format_size(char *buf, size_t len, uint64_t n)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (u < 4 && n && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)n, units[u]);
}
