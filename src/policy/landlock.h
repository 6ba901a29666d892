/*
 * Landlock as a second layer under the box's namespaces (Linux 6.12+,
 * ABI 6): the box's processes may not signal a process outside the box,
 * nor connect to an abstract unix socket made outside it. The pid and
 * network namespaces already keep both out of reach; Landlock holds if a
 * kernel bug or a leaked fd ever opened a way. Filesystem rules are not
 * expressed with Landlock (see policy/access.h for why).
 */
#ifndef HUTCH_POLICY_LANDLOCK_H
#define HUTCH_POLICY_LANDLOCK_H

#include "common/error.h"

/* The kernel's Landlock ABI version; 0 without Landlock (not built, or not enabled). */
int landlock_abi(void);

/*
 * Restrict the calling process and its future children. Returns the ABI
 * version applied, 0 when the kernel lacks Landlock or scoping (nothing
 * done), -1 on error.
 */
int landlock_scope_box(struct error *err);

#endif
