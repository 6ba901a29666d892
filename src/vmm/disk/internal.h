/*
 * What the formats of disk.h share inside src/vmm/disk: each format's
 * opener, the open of a backing chain, and full-length positional I/O.
 * Not for use outside this folder.
 */
#ifndef HUTCH_VMM_DISK_INTERNAL_H
#define HUTCH_VMM_DISK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "vmm/disk/disk.h"

/* A chain is at most this deep unless disk_open_options says otherwise. */
#define DISK_DEFAULT_MAX_BACKING_DEPTH 8

/*
 * The images already open above the one being opened, to refuse a chain
 * that loops back to one of them and one deeper than max_depth.
 */
struct disk_chain {
	unsigned depth, max_depth;
	struct {
		dev_t dev;
		ino_t ino;
	} seen[64];
};

/* Open path as format (AUTO probes) as one more image of chain. */
struct disk *disk_open_in_chain(const char *path, enum disk_format format, bool read_only,
				struct disk_chain *chain, struct error *err);

/* raw.c: the image is fd (owned from here on, closed on failure too). */
struct disk *raw_open_fd(int fd, const char *path, bool read_only, struct error *err);

/* qcow2.c: the same for a qcow2 image; its backing file joins chain. */
struct disk *qcow2_open_fd(int fd, const char *path, bool read_only, struct disk_chain *chain,
			   struct error *err);
int qcow2_create_overlay(const char *path, const char *backing, enum disk_format backing_format,
			 uint64_t size, struct error *err);

/*
 * Read len bytes at off, retrying short reads and EINTR; bytes past the end
 * of the file read as zeros (as a file's hole would). 0 or -1 with errno.
 */
int disk_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Write all len bytes at off, retrying short writes and EINTR. 0 or -1 with errno. */
int disk_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* The same for the bytes of iov[0, n): preadv and pwritev, as few calls as IOV_MAX allows. */
int disk_preadv_full(int fd, const struct iovec *iov, unsigned n, uint64_t off);
int disk_pwritev_full(int fd, const struct iovec *iov, unsigned n, uint64_t off);
/* fdatasync, retried on EINTR. */
int disk_datasync(int fd);

/* Fill d->id from path's last component, NUL-padded to 20 bytes. */
void disk_set_id(struct disk *d, const char *path);

#endif
