/* The box's /etc/resolv.conf under --net user and --allow (net/net.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "net/net.h"
#include "common/banned.h"

int net_resolv_conf_mount(const char *comment, const char *nameserver, struct error *err)
{
	char text[256];
	int n = snprintf(text, sizeof(text), "# hutch %s\nnameserver %s\n", comment, nameserver);
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	_cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	_cleanup_close_ int mnt = -1, file = -1, tree = -1;

	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "4k", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return error_set(err, errno, "cannot make the box's resolv.conf");
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0)
		return error_set(err, errno, "cannot make the box's resolv.conf");
	file = openat(mnt, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (n < 0 || (size_t)n >= sizeof(text))
		return error_set(err, ENAMETOOLONG, "cannot make the box's resolv.conf");
	if (file < 0 || write_all(file, text, (size_t)n) < 0)
		return error_set(err, errno, "cannot write the box's resolv.conf");
	tree = open_tree(mnt, "resolv.conf", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return error_set(err, errno, "cannot make the box's resolv.conf");
	/* A symlink (systemd-resolved's) is followed: its target is what resolvers read. */
	if (move_mount(tree, "", AT_FDCWD, "/etc/resolv.conf",
		       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS) < 0)
		return error_set(err, errno, "cannot mount the box's '/etc/resolv.conf'");
	return 0;
}
