/*
 * Mounting one overlay on every kernel from 5.15 on.
 *
 * Linux 6.8 takes each lower layer as its own "lowerdir+" fsconfig call,
 * verbatim. Older kernels take one "lowerdir=" string in which ':' parts
 * layers, so a path's ':' (and the '\' that escapes it) must be escaped.
 * Before 6.5 overlayfs has no fs_context of its own: the VFS's legacy
 * context refuses any fsconfig value holding a ',' (escaped or not), so
 * there the options go as one mount(2) data string, in which ',' parts
 * options and is escaped too. Every kernel unescapes upperdir and workdir
 * (fsconfig too), so those are always escaped.
 */
#ifndef HUTCH_BOX_OVERLAY_H
#define HUTCH_BOX_OVERLAY_H

#include <stdbool.h>

#include "common/error.h"

/* path with '\', ':' and ',' each preceded by '\' (overlayfs's escaping). Caller frees. */
char *overlay_escape(const char *path);

/*
 * The mount(2) data string for one overlay: lowerdir, upperdir, workdir
 * (escaped) and userxattr. NULL (err set) if it exceeds the page the
 * kernel copies.
 */
char *overlay_legacy_options(const char *lower, const char *upper, const char *work,
			     struct error *err);

/*
 * Whether this process mounts overlays with the one-string options
 * (lowerdir+ is refused). Probed once per process, in the first caller's
 * namespaces (which must allow mounting), then cached; thread-safe.
 * HUTCH_TEST_LEGACY_OVERLAY=1 in the environment forces the legacy way,
 * so that tests on a new kernel run it too.
 */
bool overlay_legacy(void);

/*
 * Whether the kernel refuses lowerdir+, asked from a child in user and
 * mount namespaces of its own (the caller may lack the right to mount).
 * For `hutch run -v`. Returns -1 if that cannot be found out.
 */
int overlay_legacy_probe_detached(void);

/* Mount an overlay of lower under upper/work (userxattr) on target. */
int overlay_mount(const char *lower, const char *upper, const char *work, const char *target,
		  struct error *err);

#endif
