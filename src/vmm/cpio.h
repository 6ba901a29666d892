/*
 * A writer for the "newc" cpio format the Linux initramfs unpacker reads
 * (Documentation/driver-api/early-userspace/buffer-format.rst). hutch
 * appends a small archive with the command to run after the initramfs.
 */
#ifndef HUTCH_VMM_CPIO_H
#define HUTCH_VMM_CPIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cpio {
	uint8_t *buf;
	size_t len, cap;
	unsigned next_ino;
};

void cpio_init(struct cpio *c);
void cpio_release(struct cpio *c);
void cpio_add_dir(struct cpio *c, const char *name, mode_t perm);
void cpio_add_file(struct cpio *c, const char *name, mode_t perm, const void *data, size_t len);
/* The TRAILER!!! entry; the archive is complete afterwards. */
void cpio_finish(struct cpio *c);

#endif
