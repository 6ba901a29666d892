#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "box/userns.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static long read_sysctl(const char *path)
{
	struct error ignored;
	_cleanup_free_ char *s = read_file(path, 64, &ignored);

	return s ? strtol(s, NULL, 10) : -1;
}

void userns_explain(int errnum, struct error *err)
{
	if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0) {
		error_set(err, 0,
			  "cannot create a user namespace: unprivileged user namespaces are "
			  "disabled by sysctl kernel.unprivileged_userns_clone=0 (set it to 1)");
	} else if (read_sysctl("/proc/sys/user/max_user_namespaces") == 0) {
		error_set(err, 0,
			  "cannot create a user namespace: sysctl user.max_user_namespaces is 0 "
			  "(set it to a positive number, e.g. 15000)");
	} else if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1) {
		error_set(err, 0,
			  "cannot create a user namespace: AppArmor restricts unprivileged user "
			  "namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=1); "
			  "set it to 0 or give hutch an AppArmor profile with 'userns,'");
	} else if (errnum == ENOSPC || errnum == EUSERS) {
		error_set(err, errnum,
			  "cannot create a user namespace: the limit in sysctl "
			  "user.max_user_namespaces (or the nesting depth of 32) is reached");
	} else {
		error_set(err, errnum, "cannot create the box's namespaces");
	}
}

int userns_write_maps(pid_t pid, uid_t uid, gid_t gid, bool as_root, struct error *err)
{
	_cleanup_free_ char *uid_map = NULL, *gid_map = NULL;
	char path[64];

	if (uid == 0) {
		/* Root keeps every identity it has: files keep their owners inside. */
		struct error ignored;
		_cleanup_free_ char *own_uid = read_file("/proc/self/uid_map", 4096, &ignored);
		_cleanup_free_ char *own_gid = read_file("/proc/self/gid_map", 4096, &ignored);
		if (!own_uid || !own_gid)
			return error_set(err, errno, "cannot read this process's id maps");
		uid_map = userns_identity_map(own_uid);
		gid_map = userns_identity_map(own_gid);
	} else {
		uid_map = xasprintf("%u %u 1\n", as_root ? 0 : uid, uid);
		gid_map = xasprintf("%u %u 1\n", as_root ? 0 : gid, gid);
		/* An unprivileged gid_map needs setgroups denied (CVE-2014-8989). */
		snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
		if (write_file(path, "deny", err) < 0)
			return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
	if (write_file(path, uid_map, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
	if (write_file(path, gid_map, err) < 0)
		return -1;
	return 0;
}

char *userns_identity_map(const char *own_map)
{
	_cleanup_free_ char *copy = xstrdup(own_map);
	size_t cap = strlen(own_map) * 2 + 1, len = 0;
	char *out = xmalloc(cap), *save = NULL;

	out[0] = '\0';
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long inside, outside, count;
		if (sscanf(line, "%lu %lu %lu", &inside, &outside, &count) != 3)
			continue;
		int n = snprintf(out + len, cap - len, "%lu %lu %lu\n", inside, inside, count);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
	}
	return out;
}
