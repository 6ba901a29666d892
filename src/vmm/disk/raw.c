/*
 * A raw image: the file (or block device) is the disk, byte for byte.
 * Discard punches a hole, write-zeroes zeroes a range in place; where the
 * file system cannot, discard does nothing (its data is then unspecified,
 * as virtio-blk allows) and write-zeroes writes zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/banned.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/disk/disk.h"
#include "vmm/disk/internal.h"

struct raw_disk {
	struct disk d;
	int fd;
	bool zero_range; /* FALLOC_FL_ZERO_RANGE works here, until EOPNOTSUPP says not */
	char *path;
};

#define ZERO_CHUNK (1u << 20)

static struct raw_disk *to_raw(struct disk *d)
{
	return (struct raw_disk *)d;
}

static int raw_readv(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		     struct error *err)
{
	if (disk_preadv_full(to_raw(d)->fd, iov, n, off) < 0)
		return error_set(err, errno, "cannot read disk image '%s' at %llu", to_raw(d)->path,
				 (unsigned long long)off);
	return 0;
}

static int raw_writev(struct disk *d, const struct iovec *iov, unsigned n, uint64_t off,
		      struct error *err)
{
	if (d->read_only)
		return error_set(err, EROFS, "cannot write disk image '%s'", to_raw(d)->path);
	if (disk_pwritev_full(to_raw(d)->fd, iov, n, off) < 0)
		return error_set(err, errno, "cannot write disk image '%s' at %llu",
				 to_raw(d)->path, (unsigned long long)off);
	return 0;
}

static int raw_flush(struct disk *d, struct error *err)
{
	if (d->read_only)
		return 0;
	if (disk_datasync(to_raw(d)->fd) < 0)
		return error_set(err, errno, "cannot flush disk image '%s'", to_raw(d)->path);
	return 0;
}

static bool unsupported(int e)
{
	return e == EOPNOTSUPP || e == ENOSYS || e == ENOTTY;
}

static int raw_discard(struct disk *d, uint64_t off, uint64_t len, struct error *err)
{
	struct raw_disk *r = to_raw(d);

	if (d->read_only)
		return error_set(err, EROFS, "cannot discard on disk image '%s'", r->path);
	if (!d->can_discard || len == 0)
		return 0;
	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
	    0)
		return 0;
	if (unsupported(errno)) {
		d->can_discard = false; /* a hint the guest gave; nothing lost */
		return 0;
	}
	return error_set(err, errno, "cannot discard on disk image '%s' at %llu", r->path,
			 (unsigned long long)off);
}

static int write_zeros(struct raw_disk *r, uint64_t off, uint64_t len, struct error *err)
{
	_cleanup_free_ char *zeros = xcalloc(1, ZERO_CHUNK);

	while (len > 0) {
		size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;

		if (disk_pwrite_full(r->fd, zeros, n, off) < 0)
			return error_set(err, errno,
					 "cannot write zeros to disk image '%s' at %llu", r->path,
					 (unsigned long long)off);
		off += n;
		len -= n;
	}
	return 0;
}

static int raw_write_zeroes(struct disk *d, uint64_t off, uint64_t len, struct error *err)
{
	struct raw_disk *r = to_raw(d);

	if (d->read_only)
		return error_set(err, EROFS, "cannot write zeros to disk image '%s'", r->path);
	if (len == 0)
		return 0;
	if (r->zero_range) {
		if (fallocate(r->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len) == 0)
			return 0;
		if (!unsupported(errno) && errno != EINVAL)
			return error_set(err, errno,
					 "cannot write zeros to disk image '%s' at %llu", r->path,
					 (unsigned long long)off);
		r->zero_range = false;
	}
	return write_zeros(r, off, len, err);
}

static void raw_close(struct disk *d)
{
	struct raw_disk *r = to_raw(d);

	close(r->fd);
	free(r->path);
	free(r);
}

static const struct disk_ops raw_ops = {
    .readv = raw_readv,
    .writev = raw_writev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .close = raw_close,
};

/*
 * Whether the file system punches holes: a hole punched past the end of a
 * regular file (KEEP_SIZE) changes nothing in it, and fails with
 * EOPNOTSUPP where holes are not supported. A block device refuses ranges
 * past its end, so it is tried on first use instead.
 */
static bool probe_punch_hole(int fd, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return true;
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st->st_size, 4096) == 0;
}

struct disk *raw_open_fd(int fd_in, const char *path, bool read_only, struct error *err)
{
	_cleanup_close_ int fd = fd_in;
	struct raw_disk *r;
	struct stat st;
	uint64_t size;

	if (fstat(fd, &st) < 0) {
		error_set(err, errno, "cannot stat disk image '%s'", path);
		return NULL;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			error_set(err, errno, "cannot get the size of block device '%s'", path);
			return NULL;
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	r = xcalloc(1, sizeof(*r));
	r->d.ops = &raw_ops;
	r->d.format = DISK_FORMAT_RAW;
	r->d.size = size;
	r->d.read_only = read_only;
	r->d.can_discard = !read_only && probe_punch_hole(fd, &st);
	r->d.can_write_zeroes = !read_only;
	r->zero_range = true;
	r->path = xstrdup(path);
	disk_set_id(&r->d, path);
	r->fd = steal_fd(&fd);
	return &r->d;
}
