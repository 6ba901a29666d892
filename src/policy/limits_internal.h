/* What limits.c, limits_cgroup.c and limits_fallback.c share; not an API. */
#ifndef HUTCH_POLICY_LIMITS_INTERNAL_H
#define HUTCH_POLICY_LIMITS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "policy/limits.h"

enum ctl { CTL_MEMORY, CTL_PIDS, CTL_CPU, CTL_COUNT };

/* Append to the NUL-terminated buf of size bytes, truncating. */
void limits_appendf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A small cgroup or proc file below dirfd, NUL-terminated, in buf; -1 on error. */
ssize_t limits_read_at(int dirfd, const char *name, char *buf, size_t size);

/* limits_cgroup.c */
int cgroup_write(int dirfd, const char *name, const char *value);
unsigned long long cgroup_event_count(const char *text, const char *key);
void cgroup_sweep_stale(int dfd);
void cgroup_make(struct limits *l, const char *dir, const char *box_name,
		 const bool want[CTL_COUNT], bool use[CTL_COUNT]);
char *cgroup_own_dir(char *why, size_t len);

/* limits_fallback.c */
enum limit_how limits_plan_affinity(struct limits *l);

#endif
