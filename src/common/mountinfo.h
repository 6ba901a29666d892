/*
 * The one reader of /proc/PID/mountinfo (proc(5)): the box's root plan,
 * the detach and refresh of a box's overlays, and the search for this
 * process's cgroup v2 folder all use it.
 */
#ifndef HUTCH_COMMON_MOUNTINFO_H
#define HUTCH_COMMON_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

struct mount_entry {
	char *root;   /* the mount's root within its filesystem, decoded */
	char *path;   /* mount point, octal escapes decoded */
	char *fstype; /* "ext4", "tmpfs", "fuse.portal", ... */
};

struct mount_table {
	struct mount_entry *v;
	size_t n;
};

/* Parse /proc/self/mountinfo text; later entries shadow earlier ones. */
int mount_table_parse(struct mount_table *mt, const char *text, struct error *err);
int mount_table_read(struct mount_table *mt, struct error *err);
void mount_table_release(struct mount_table *mt);

/* The topmost mount on exactly path, or NULL. */
const struct mount_entry *mount_table_find(const struct mount_table *mt, const char *path);
/* True if some mount point lies strictly below path. */
bool mount_table_has_below(const struct mount_table *mt, const char *path);

/*
 * Decode the octal escapes the kernel writes in mountinfo and similar
 * files (\040 space, \011 tab, \012 newline, \134 '\\') in place.
 */
void octal_unescape(char *s);

#endif
