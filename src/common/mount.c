#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/mount.h"
#include "common/banned.h"

int mount_bind(const char *src, const char *target, bool read_only, struct error *err)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	_cleanup_close_ int fd =
		open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

	if (fd < 0)
		return error_set(err, errno, "cannot bind '%s'", src);
	if (read_only && mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return error_set(err, errno, "cannot make '%s' read-only", src);
	if (move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return error_set(err, errno, "cannot bind '%s'", src);
	return 0;
}

int make_target(const char *target, mode_t mode, struct error *err)
{
	if (S_ISDIR(mode)) {
		if (mkdir(target, mode & 07777) < 0 && errno != EEXIST)
			return error_set(err, errno, "cannot create '%s'", target);
		return 0;
	}
	_cleanup_close_ int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return error_set(err, errno, "cannot create '%s'", target);
	return 0;
}
