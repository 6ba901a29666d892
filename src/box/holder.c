/* The box's unmount holder (box_internal.h): a box's layers unmounted after its run returns. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box/box_internal.h"
#include "box/mounts.h"
#include "box/store.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

void box_ns_open(pid_t init, int ns_fds[2])
{
	static const char *const names[] = {"user", "mnt"};

	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *path = xasprintf("/proc/%d/ns/%s", (int)init, names[i]);
		ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
}

void box_ns_close(int ns_fds[2])
{
	for (size_t i = 0; i < 2; i++)
		if (ns_fds[i] >= 0)
			close(ns_fds[i]);
	ns_fds[0] = ns_fds[1] = -1;
}

void box_hand_over_unmount(pid_t init, int mounted_lock, int box_dirfd, struct limits *limits,
			      int ns_fds[2])
{
	_cleanup_close_ int pidfd = pidfd_open(init, 0);
	pid_t pid;

	if (pidfd < 0 || (pid = fork()) < 0) {
		int status;
		box_ns_close(ns_fds);
		while (waitpid(init, &status, 0) < 0 && errno == EINTR)
			;
		limits_release(limits);
		return;
	}
	if (pid > 0)
		return;
	/* Closed below with the rest; its number may be one of the fds kept. */
	limits->cgroup_fd = -1;
	/* Hold nothing of the caller's: a pipe reading hutch's output ends now. */
	stdio_to_null();
	/* Kept as fds 3 (the lock), 4, 5, and 6 and 7 when the namespaces are open. */
	bool ns = ns_fds[0] >= 0 && ns_fds[1] >= 0;
	int keep[] = {mounted_lock, pidfd, box_dirfd, ns_fds[0], ns_fds[1]};
	size_t nkeep = ns ? 5 : 3;
	for (size_t i = 0; i < nkeep; i++)
		if ((keep[i] = fcntl(keep[i], F_DUPFD, 3 + (int)ARRAY_SIZE(keep))) < 0)
			_exit(1);
	for (size_t i = 0; i < nkeep; i++)
		if (dup2(keep[i], 3 + (int)i) < 0)
			_exit(1);
	close_range(3 + (unsigned)nkeep, ~0U, 0);
	setsid();
	struct pollfd p = {.fd = 4, .events = POLLIN};
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	/* A cgroup can go only once the box's last task has. */
	limits_release(limits);
	/* Opened now: once in the box's mount namespace, this process sees no store. */
	int refresh = box_lock_open_at(5, BOX_LOCK_REFRESH);
	if (ns) {
		(void)box_root_detach(6, 7);
		close_range(6, 7, 0); /* whatever else the box mounted goes now */
	}
	/* A joining run refreshing the box holds its overlays too: let it finish. */
	while (refresh >= 0 && flock(refresh, LOCK_EX) < 0 && errno == EINTR)
		;
	box_work_release(5);
	close(3);
	if (refresh >= 0)
		close(refresh);
	box_trash_empty(5);
	_exit(0);
}
