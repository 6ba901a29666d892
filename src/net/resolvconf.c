/* The box's /etc/resolv.conf under --allow NAME: hutch's stub resolver (net/dns.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "net/dns.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/*
 * On a tmpfs of its own that is mounted nowhere (no path in the box
 * reaches it to write it), read-only; the box's files are not changed.
 */
int dns_resolv_conf_mount(struct error *err)
{
	static const char text[] = "# hutch --allow: hutch's resolver, which answers the names "
				   "allowed\nnameserver " DNS_STUB_ADDR "\n";
	_cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	_cleanup_close_ int mnt = -1, file = -1, tree = -1;
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};

	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "16k", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return error_set(err, errno, "cannot make the box's resolv.conf");
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return error_set(err, errno, "cannot make the box's resolv.conf");
	file = openat(mnt, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (file < 0 || write_all(file, text, sizeof(text) - 1) < 0)
		return error_set(err, errno, "cannot write the box's resolv.conf");
	tree = open_tree(mnt, "resolv.conf", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0 || mount_setattr(tree, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return error_set(err, errno, "cannot make the box's resolv.conf");
	/* A host's resolv.conf is often a symlink (systemd-resolved): over its target. */
	if (move_mount(tree, "", AT_FDCWD, "/etc/resolv.conf",
		       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS) < 0)
		return error_set(err, errno, "cannot mount the box's /etc/resolv.conf");
	return 0;
}
