/*
 * A disk image as the VM's block devices see it: a size in bytes and reads,
 * writes, flushes, discards and zeroed ranges at byte offsets, whatever the
 * format underneath (raw.c, qcow2.c). Reads and writes take a
 * scatter-gather list (iov.h), the guest's own pages, and move the data in
 * place, with as few system calls as the format's layout allows. Offsets
 * and lengths are checked by the caller against size (virtio-blk bounds
 * every request by capacity); each call does all of it or fails with err.
 * One caller at a time per disk (a qcow2 image keeps its tables' state in
 * the struct).
 */
#ifndef HUTCH_VMM_DISK_DISK_H
#define HUTCH_VMM_DISK_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/disk/iov.h"

enum disk_format { DISK_FORMAT_AUTO = 0, DISK_FORMAT_RAW, DISK_FORMAT_QCOW2 };

struct disk;

struct disk_ops {
	/* The bytes [off, off + iov_length(iov, n)) into iov, or from it. */
	int (*readv)(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		     struct error *err);
	int (*writev)(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		      struct error *err);
	int (*flush)(struct disk *d, struct error *err);
	/* May be NULL: the format cannot discard (can_discard is false). */
	int (*discard)(struct disk *d, uint64_t off, uint64_t len, struct error *err);
	/* Reads of [off, off + len) return zeros afterwards; may be NULL. */
	int (*write_zeroes)(struct disk *d, uint64_t off, uint64_t len, struct error *err);
	void (*close)(struct disk *d);
};

struct disk {
	const struct disk_ops *ops;
	enum disk_format format;
	uint64_t size; /* virtual size in bytes */
	bool read_only;
	bool can_discard, can_write_zeroes;
	char id[21]; /* the serial VIRTIO_BLK_T_GET_ID returns, NUL-padded */
};

struct disk_open_options {
	enum disk_format format; /* AUTO: probe the file's magic */
	bool read_only;
	unsigned max_backing_depth; /* 0: the default (qcow2.c) */
};

/*
 * Open the image at path (a regular file or block device; not a directory)
 * and, for qcow2, its backing chain. Refuses with one line naming the
 * problem: missing, unreadable, corrupt, an unsupported feature, a chain
 * too deep or looping.
 */
struct disk *disk_open(const char *path, const struct disk_open_options *o, struct error *err);

/*
 * Create a new qcow2 image at path (O_EXCL: never over an existing file)
 * whose backing file is backing (format backing_format), of the same size:
 * the `,overlay` of `hutch vm run --disk`.
 */
int disk_create_overlay(const char *path, const char *backing, enum disk_format backing_format,
			struct error *err);

/* One buffer's read or write. */
static inline int disk_read(struct disk *d, void *buf, size_t len, uint64_t off,
			    struct error *err)
{
	struct iovec v = {.iov_base = buf, .iov_len = len};

	return d->ops->readv(d, &v, 1, off, err);
}

static inline int disk_write(struct disk *d, const void *buf, size_t len, uint64_t off,
			     struct error *err)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};

	return d->ops->writev(d, &v, 1, off, err);
}

/* Close d and everything it holds; NULL is fine. */
void disk_close(struct disk *d);

#endif
