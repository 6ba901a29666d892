#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "box/beneath.h"
#include "common/banned.h"

/* glibc 2.36 has no openat2 wrapper. EAGAIN: a concurrent rename raced "..". */
int beneath_open(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve};
	int fd, tries = 0;

	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 16);
	return fd;
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* fchmodat2 (Linux 6.6), else glibc's emulation (through an O_PATH fd and /proc/self/fd). */
int beneath_chmod(int dfd, const char *name, mode_t mode)
{
	if (syscall(SYS_fchmodat2, dfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	return fchmodat(dfd, name, mode, AT_SYMLINK_NOFOLLOW);
}
