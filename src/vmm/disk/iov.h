/*
 * Scatter-gather lists for the disk layer: a virtio-blk request's data
 * stays in the guest's pages, which the device hands down as an array of
 * struct iovec; the formats read into and write from them in place
 * (preadv/pwritev), with no copy. A cursor walks such an array from its
 * start, a piece at a time.
 */
#ifndef HUTCH_VMM_DISK_IOV_H
#define HUTCH_VMM_DISK_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct iov_cursor {
	const struct iovec *iov; /* the entry being taken from */
	unsigned n;		 /* entries from iov on */
	size_t skip;		 /* bytes of iov[0] already taken */
};

static inline void iov_cursor_init(struct iov_cursor *c, const struct iovec *iov, unsigned n)
{
	*c = (struct iov_cursor){.iov = iov, .n = n};
}

/* The bytes of iov[0, n), saturated at SIZE_MAX. */
size_t iov_length(const struct iovec *iov, unsigned n);

/*
 * Move the next len bytes of c (fewer if it has fewer) to the end of the
 * list list[0, *cnt), at most max entries, a piece that starts where the
 * list's last entry ends joining it. Returns the bytes taken: fewer than
 * len when c ran out or the list is full (never 0 while both have room).
 */
size_t iov_take(struct iov_cursor *c, size_t len, struct iovec *list, unsigned *cnt,
		unsigned max);

/* The next len bytes of c copied into buf, from buf, or zeroed; fewer if c has fewer. */
size_t iov_copy_out(struct iov_cursor *c, void *buf, size_t len);
size_t iov_copy_in(struct iov_cursor *c, const void *buf, size_t len);
size_t iov_zero(struct iov_cursor *c, size_t len);

#endif
