/*
 * What a box may do: access rules, the syscall filter, the supervisor's
 * rules and resource limits. Filled from a profile (policy/profile.h) and
 * then from the command line, which overrides it.
 */
#ifndef HUTCH_POLICY_POLICY_H
#define HUTCH_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

enum seccomp_mode {
	FILTER_DEFAULT, /* Docker/firejail-like deny-list, EPERM */
	FILTER_STRICT,  /* default plus ptrace, personality, unshare... */
	FILTER_OFF,     /* no filter, no supervisor */
};

/* The box's network (net/net.h). */
enum net_mode {
	NET_UNSET, /* nothing said: none, or user when ports are published or reached */
	NET_NONE,  /* loopback only */
	NET_USER,  /* user-mode networking through pasta (net/pasta.h) */
};

struct strlist {
	char **v;
	size_t n;
};

struct policy {
	struct strlist hide;      /* invisible inside the box */
	struct strlist read_only; /* no writes, not even into the box */
	struct strlist direct;    /* writes go straight to the host */
	struct strlist deny_exec; /* programs the box may not start */
	struct strlist allow;     /* --allow: all the box may connect to (net/allow.h) */
	enum seccomp_mode seccomp;
	bool no_default_hide;     /* do not hide the well-known secrets */
	bool private_tmp;         /* /tmp is the box's own, not the host's copy-on-write */
	enum net_mode net;        /* NET_NONE or NET_USER once policy_build() is done */
	struct strlist publish;   /* --publish [ADDR:]HOSTPORT:BOXPORT[/udp], checked */
	struct strlist host_port; /* --host-port PORT: the host's loopback ports the box reaches */

	/* Limits; 0 means none. */
	uint64_t memory;          /* bytes */
	uint32_t cpus_milli;      /* CPUs x 1000 (--cpus 1.5 = 1500) */
	uint64_t pids;
	uint64_t timeout_ms;      /* wall clock; kills the whole box */
	uint64_t max_file_size;   /* bytes */
	uint64_t max_open_files;

	bool verbose;             /* -v: say what is in force */
	char *profile;            /* the profile's name, if any */
};

void strlist_add(struct strlist *l, const char *s);
void strlist_release(struct strlist *l);

void policy_release(struct policy *p);

/* What a run's policy is built from (policy_build). */
struct policy_sources {
	const struct policy *cli; /* the command line's options, or NULL */
	bool seccomp_set;         /* the command line named a --seccomp mode */
	const char *remembered;   /* the profile the box remembers, or NULL */
	const char *home;         /* whose secrets the default hides cover, or NULL */
};

/*
 * Build out, in this order: the profile (cli->profile, else the remembered
 * one; *profile_name gets its name, NULL if none); the command line on top
 * (lists are added, limits and seccomp override); then, unless
 * no-default-hide, the default secret hides (access_default_hides), except
 * those the lists name with --direct, --read-only or --hide. On failure
 * out still needs policy_release().
 */
int policy_build(const struct policy_sources *src, struct policy *out, char **profile_name,
		 struct error *err);

/*
 * Continue h with everything in p that shapes a box (not -v), and whether
 * each path it names exists: two runs whose hashes differ would build
 * different boxes.
 */
uint64_t policy_hash(const struct policy *p, uint64_t h);
/* Continue h with the box's network alone: --net, --allow, --publish, --host-port. */
uint64_t policy_net_hash(const struct policy *p, uint64_t h);
/* The box's network as options, "--net none" or e.g. "--net user --publish 8080:80", cut to len. */
void policy_net_describe(const struct policy *p, char *buf, size_t len);

/*
 * Whether a box under p may stay up after its last program for the next
 * run (box/init.c): only with the default filter (strict mode refuses the
 * unshare that resets it, and without one a program may mount), not with
 * --root (its programs may change what a reset does not undo), not
 * with paths bound when the box starts (--read-only, --direct,
 * --deny-exec), which a program may create or move meanwhile, and not
 * with --allow (its network is made once, outside the box: net/net.h).
 */
bool box_may_linger(const struct policy *p, bool as_root);

/* Sizes: parse_size() in common/util.h, one syntax for run, vm and profiles. */
/* "30", "30s", "500ms", "5m", "1h". */
int parse_duration_ms(const char *s, uint64_t *out, struct error *err);
/* "2", "0.5", "1.25": thousandths of a CPU. */
int parse_cpus(const char *s, uint32_t *out, struct error *err);
/* A positive whole number. */
int parse_count(const char *s, uint64_t *out, struct error *err);
int parse_seccomp(const char *s, enum seccomp_mode *out, struct error *err);
/* "none" or "user". */
int parse_net(const char *s, enum net_mode *out, struct error *err);
/* "true" or "false", nothing else. */
int parse_bool(const char *s, bool *out, struct error *err);
/* "64 MiB", "1536 KiB", "1000 bytes": exact, in the largest unit that divides n. */
void format_size(char *buf, size_t len, uint64_t n);

/* Exit statuses of limit hits (documented in README). */
enum limit_exit {
	EXIT_TIMEOUT = 124, /* --timeout, as timeout(1) */
	/* memory: the program is killed, 128+SIGKILL = 137 */
	/* max-file-size: SIGXFSZ, 128+25 = 153 */
};

#endif
