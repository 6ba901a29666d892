/*
 * disk_open: check the path, probe the format, hand the fd to raw.c or
 * qcow2.c. A qcow2 image's backing files come back here through
 * disk_open_in_chain, which refuses a chain that is too deep or loops.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/banned.h"
#include "common/cleanup.h"
#include "vmm/disk/disk.h"
#include "vmm/disk/internal.h"

static const char qcow2_magic[4] = {'Q', 'F', 'I', (char)0xfb};

/* Entries copied for one preadv or pwritev (the copy is advanced past short transfers). */
#define IOV_BATCH 128

static int rw_vector(int fd, const struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	struct iovec v[IOV_BATCH];
	struct iov_cursor c;
	size_t left = iov_length(iov, n);

	iov_cursor_init(&c, iov, n);
	while (left > 0) {
		unsigned cnt = 0, first = 0;
		size_t got = iov_take(&c, left, v, &cnt, IOV_BATCH);

		left -= got;
		while (got > 0) {
			ssize_t k = write ? pwritev(fd, v + first, (int)(cnt - first), (off_t)off)
					  : preadv(fd, v + first, (int)(cnt - first), (off_t)off);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -1;
			if (k == 0 && write) {
				errno = EIO;
				return -1;
			}
			if (k == 0) { /* end of file: the rest reads as zeros */
				for (; first < cnt; first++)
					memset(v[first].iov_base, 0, v[first].iov_len);
				iov_zero(&c, left);
				return 0;
			}
			off += (uint64_t)k;
			got -= (size_t)k;
			while (k > 0) {
				size_t m = v[first].iov_len < (size_t)k ? v[first].iov_len : (size_t)k;

				v[first].iov_base = (uint8_t *)v[first].iov_base + m;
				v[first].iov_len -= m;
				k -= (ssize_t)m;
				if (v[first].iov_len == 0)
					first++;
			}
		}
	}
	return 0;
}

int disk_preadv_full(int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	return rw_vector(fd, iov, n, off, false);
}

int disk_pwritev_full(int fd, const struct iovec *iov, unsigned n, uint64_t off)
{
	return rw_vector(fd, iov, n, off, true);
}

int disk_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec v = {.iov_base = buf, .iov_len = len};

	return rw_vector(fd, &v, 1, off, false);
}

int disk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};

	return rw_vector(fd, &v, 1, off, true);
}

int disk_datasync(int fd)
{
	int r;

	do
		r = fdatasync(fd);
	while (r < 0 && errno == EINTR);
	return r;
}

void disk_set_id(struct disk *d, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);

	if (n > sizeof(d->id) - 1)
		n = sizeof(d->id) - 1;
	memset(d->id, 0, sizeof(d->id));
	memcpy(d->id, base, n);
}

/*
 * One writer or any number of readers per image, across processes: an
 * open file description lock on the whole file, shared to read, exclusive
 * to write (QEMU's image locks, shared locks on single bytes, keep QEMU
 * out while hutch writes and hutch's writer out while QEMU has the image
 * open; readers on both sides coexist). Two VMs writing one overlay, or one writing the base another's
 * overlay reads, would corrupt it. Released with the fd, also by a kill -9.
 * A file system without locks (ENOLCK, EINVAL) goes unlocked.
 */
static int lock_image(int fd, bool read_only, const char *path, struct error *err)
{
	struct flock l = {.l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};

	if (fcntl(fd, F_OFD_SETLK, &l) == 0 || (errno != EAGAIN && errno != EACCES))
		return 0;
	return error_set(err, 0, "disk image '%s' is in use: another program has it open%s", path,
			 read_only ? " for writing" : "");
}

struct disk *disk_open_in_chain(const char *path, enum disk_format format, bool read_only,
				struct disk_chain *chain, struct error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char magic[4];
	unsigned i;

	if (chain->depth > chain->max_depth) {
		error_set(err, 0, "disk image '%s': backing chain deeper than %u images", path,
			  chain->max_depth);
		return NULL;
	}
	/* O_NONBLOCK: a FIFO given as an image must not hang the open. */
	fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == EISDIR) {
		error_set(err, 0, "disk image '%s' is a directory", path);
		return NULL;
	}
	if (fd < 0) {
		error_set(err, errno, "cannot open disk image '%s'", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		error_set(err, errno, "cannot stat disk image '%s'", path);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		error_set(err, 0, "disk image '%s' is a directory", path);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		error_set(err, 0, "disk image '%s' is not a regular file or block device", path);
		return NULL;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		error_set(err, errno, "disk image '%s'", path);
		return NULL;
	}
	for (i = 0; i < chain->depth && i < sizeof(chain->seen) / sizeof(chain->seen[0]); i++) {
		if (chain->seen[i].dev == st.st_dev && chain->seen[i].ino == st.st_ino) {
			error_set(err, 0,
				  "disk image '%s': backing chain loops back to an image above it",
				  path);
			return NULL;
		}
	}
	if (lock_image(fd, read_only, path, err) < 0)
		return NULL;
	if (chain->depth < sizeof(chain->seen) / sizeof(chain->seen[0])) {
		chain->seen[chain->depth].dev = st.st_dev;
		chain->seen[chain->depth].ino = st.st_ino;
	}
	if (format == DISK_FORMAT_AUTO) {
		if (disk_pread_full(fd, magic, sizeof(magic), 0) < 0) {
			error_set(err, errno, "cannot read disk image '%s'", path);
			return NULL;
		}
		format = memcmp(magic, qcow2_magic, sizeof(magic)) == 0 ? DISK_FORMAT_QCOW2
									: DISK_FORMAT_RAW;
	}
	switch (format) {
	case DISK_FORMAT_RAW:
		return raw_open_fd(steal_fd(&fd), path, read_only, err);
	case DISK_FORMAT_QCOW2:
		return qcow2_open_fd(steal_fd(&fd), path, read_only, chain, err);
	default:
		error_set(err, 0, "disk image '%s': unknown format %d", path, (int)format);
		return NULL;
	}
}

struct disk *disk_open(const char *path, const struct disk_open_options *o, struct error *err)
{
	struct disk_chain chain = {0};

	chain.max_depth =
	    o->max_backing_depth ? o->max_backing_depth : DISK_DEFAULT_MAX_BACKING_DEPTH;
	return disk_open_in_chain(path, o->format, o->read_only, &chain, err);
}

int disk_create_overlay(const char *path, const char *backing, enum disk_format backing_format,
			struct error *err)
{
	struct disk_open_options o = {.format = backing_format, .read_only = true};
	struct disk *b;
	uint64_t size;

	b = disk_open(backing, &o, err);
	if (!b)
		return error_prefix(err, "cannot create overlay '%s'", path);
	size = b->size;
	backing_format = b->format;
	disk_close(b);
	return qcow2_create_overlay(path, backing, backing_format, size, err);
}

void disk_close(struct disk *d)
{
	if (d)
		d->ops->close(d);
}
