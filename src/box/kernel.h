/*
 * What of the kernel features a box uses this kernel lacks (hutch supports
 * Linux 5.15 and later), for `hutch run -v`. Each gap is degraded, not
 * fatal: see kernel.c for what takes its place.
 */
#ifndef HUTCH_BOX_KERNEL_H
#define HUTCH_BOX_KERNEL_H

/* Compare the running kernel's release with major.minor: <0, 0 or >0. */
int kernel_version_cmp(int major, int minor);

/*
 * One line per feature not in force, each "what: instead" ('\n'
 * separated), or an empty string when all are. Caller frees.
 */
char *kernel_gaps_describe(void);

#endif
