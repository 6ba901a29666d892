#include <errno.h>
#include <unistd.h>

#include "vmm/disk/internal.h"

struct disk *qcow2_open_fd(int fd, const char *path, bool read_only, struct disk_chain *chain,
			   struct error *err)
{
	close(fd);
	error_set(err, 0, "disk image '%s': qcow2 is not supported yet", path);
	return NULL;
}

int qcow2_create_overlay(const char *path, const char *backing, enum disk_format backing_format,
			 uint64_t size, struct error *err)
{
	return error_set(err, 0, "cannot create overlay '%s': qcow2 is not supported yet", path);
}
