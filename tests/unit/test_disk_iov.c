/*
 * Scatter-gather disk I/O (vmm/disk/iov.c and the readv/writev of raw.c
 * and qcow2.c): a cursor takes pieces in order, joins pieces that touch and
 * stops at a full list; and a disk read or written through lists of many
 * pieces, in random places and sizes, always holds what a flat model says
 * -- a raw image, and a qcow2 overlay over a qcow2 overlay over a raw file
 * (clusters of the top, of the middle, of the base, zeroed and discarded
 * ones in one request), across a reopen, the images below left unchanged.
 * One request of more pieces than a run holds (QCOW2_RUN_SEGS) is in it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"

#include "vmm/disk/disk.h"

#define CS 65536u
/* Not a whole number of clusters: the base ends inside the last one. */
#define SIZE (5 * CS + 5120)

static char *dir;

static char *path_in(const char *name)
{
	static char p[4][256];
	static unsigned k;
	char *r = p[k++ % 4];

	snprintf(r, 256, "%s/%s", dir, name);
	return r;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void cursor_takes_in_order_joins_and_stops_when_full(void **state)
{
	uint8_t mem[32], *a = mem, *b = mem + 16; /* a gap between a and b */
	struct iovec src[] = {{a, 4}, {a + 4, 4}, {b, 0}, {b, 8}}, list[2];
	struct iov_cursor c;
	unsigned n = 0;
	uint8_t out[16];

	assert_int_equal(iov_length(src, 4), 16);
	iov_cursor_init(&c, src, 4);
	/* a's two halves touch: one entry; b is elsewhere: a second. */
	assert_int_equal(iov_take(&c, 6, list, &n, 2), 6);
	assert_int_equal(n, 1);
	assert_ptr_equal(list[0].iov_base, a);
	assert_int_equal(list[0].iov_len, 6);
	assert_int_equal(iov_take(&c, 4, list, &n, 1), 2); /* full: b waits */
	assert_int_equal(iov_take(&c, 4, list, &n, 2), 4);
	assert_int_equal(n, 2);
	assert_ptr_equal(list[1].iov_base, b);
	memset(b, 7, 8);
	assert_int_equal(iov_copy_out(&c, out, 16), 4); /* only 4 were left */
	assert_int_equal(out[3], 7);
	assert_int_equal(iov_take(&c, 1, list, &n, 2), 0);
}

static struct disk *open_rw(const char *path)
{
	struct disk_open_options o = {0};
	struct error err = {0};
	struct disk *d = disk_open(path, &o, &err);

	if (!d)
		fail_msg("disk_open '%s': %s", path, err.msg);
	return d;
}

static void make_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/*
 * [off, off + len) cut into pieces of random sizes (every few a big one),
 * at places in mem with a gap between them unless touching: the list in
 * iov, its length returned.
 */
static unsigned cut(uint8_t *mem, size_t len, bool touching, struct iovec *iov, unsigned max)
{
	unsigned n = 0;
	size_t pos = 0, at = 0;

	while (pos < len) {
		size_t k = next() % 3 ? 1 + next() % 9000 : 1 + next() % (3 * CS);

		if (k > len - pos || n == max - 1)
			k = len - pos;
		iov[n++] = (struct iovec){.iov_base = mem + at, .iov_len = k};
		pos += k;
		at += k + (touching ? 0 : 1 + next() % 64);
	}
	return n;
}

/* A random range: often on cluster or page bounds, as a guest's would be. */
static void pick(size_t *off, size_t *len)
{
	size_t a = next() % SIZE, b = next() % (3 * CS) + 1;

	switch (next() % 3) {
	case 0:
		a &= ~(size_t)(CS - 1);
		b = (b + CS - 1) & ~(size_t)(CS - 1);
		break;
	case 1:
		a &= ~(size_t)4095;
		b = (b + 4095) & ~(size_t)4095;
		break;
	}
	if (b > SIZE - a)
		b = SIZE - a;
	*off = a;
	*len = b;
}

#define MAX_PIECES 1024

static void expect_model(struct disk *d, const uint8_t *model, size_t off, size_t len,
			 uint8_t *mem, struct iovec *iov)
{
	struct error err = {0};
	unsigned n = cut(mem, len, next() % 2, iov, MAX_PIECES);
	struct iov_cursor c;
	uint8_t *flat = malloc(len ? len : 1);

	memset(mem, 0xee, 4 * len + MAX_PIECES * 64 + 1);
	if (d->ops->readv(d, iov, n, off, &err) < 0)
		fail_msg("readv %zu+%zu: %s", off, len, err.msg);
	iov_cursor_init(&c, iov, n);
	assert_int_equal(iov_copy_out(&c, flat, len), len);
	for (size_t i = 0; i < len; i++)
		if (flat[i] != model[off + i])
			fail_msg("byte %zu: %u, not %u", off + i, flat[i], model[off + i]);
	free(flat);
}

/* ops random reads, writes, zeroes and discards on d, checked against model. */
static void exercise(struct disk *d, uint8_t *model, unsigned ops)
{
	uint8_t *mem = malloc(4 * 3 * CS + MAX_PIECES * 64 + 1);
	struct iovec *iov = calloc(MAX_PIECES, sizeof(*iov));
	struct error err = {0};

	for (unsigned op = 0; op < ops; op++) {
		size_t off, len;
		unsigned r = (unsigned)(next() % 10), n;
		struct iov_cursor c;

		pick(&off, &len);
		if (r < 5) {
			n = cut(mem, len, next() % 2, iov, MAX_PIECES);
			iov_cursor_init(&c, iov, n);
			for (size_t i = 0; i < len; i++)
				model[off + i] = (uint8_t)next();
			assert_int_equal(iov_copy_in(&c, model + off, len), len);
			if (d->ops->writev(d, iov, n, off, &err) < 0)
				fail_msg("writev %zu+%zu: %s", off, len, err.msg);
		} else if (r < 9 || !d->can_write_zeroes) {
			expect_model(d, model, off, len, mem, iov);
		} else {
			bool discard = next() % 2;

			if ((discard ? d->ops->discard(d, off, len, &err)
				     : d->ops->write_zeroes(d, off, len, &err)) < 0)
				fail_msg("zero %zu+%zu: %s", off, len, err.msg);
			/* A discard that cannot free a whole cluster may leave the bytes. */
			if (discard) {
				uint8_t *now = malloc(len);

				assert_int_equal(disk_read(d, now, len, off, &err), 0);
				for (size_t i = 0; i < len; i++)
					assert_true(now[i] == 0 || now[i] == model[off + i]);
				memcpy(model + off, now, len);
				free(now);
			} else {
				memset(model + off, 0, len);
			}
		}
		if (op % 16 == 0 && d->ops->flush(d, &err) < 0)
			fail_msg("flush: %s", err.msg);
	}
	/* One request of small pieces, none touching: more than one run holds. */
	{
		size_t off = CS / 2, len = 500 * 512;
		unsigned n = 0;

		for (size_t pos = 0; pos < len; pos += 512)
			iov[n++] = (struct iovec){.iov_base = mem + pos * 2, .iov_len = 512};
		for (size_t i = 0; i < len; i++)
			mem[(i / 512) * 1024 + i % 512] = model[off + i] = (uint8_t)next();
		if (d->ops->writev(d, iov, n, off, &err) < 0)
			fail_msg("writev of %u pieces: %s", n, err.msg);
		memset(mem, 0, 2 * len);
		assert_int_equal(d->ops->readv(d, iov, n, off, &err), 0);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(mem[(i / 512) * 1024 + i % 512], model[off + i]);
	}
	free(mem);
	free(iov);
}

/* The whole of d is model. */
static void expect_whole(struct disk *d, const uint8_t *model)
{
	uint8_t *now = malloc(SIZE);
	struct error err = {0};

	assert_int_equal(d->size, SIZE);
	assert_int_equal(disk_read(d, now, SIZE, 0, &err), 0);
	for (size_t i = 0; i < SIZE; i++)
		if (now[i] != model[i])
			fail_msg("byte %zu: %u, not %u", i, now[i], model[i]);
	free(now);
}

static uint8_t *random_bytes(size_t len)
{
	uint8_t *b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)next();
	return b;
}

static void a_raw_disk_reads_and_writes_lists_in_place(void **state)
{
	uint8_t *model = random_bytes(SIZE);
	struct disk *d;

	make_file(path_in("r.raw"), model, SIZE);
	d = open_rw(path_in("r.raw"));
	exercise(d, model, 400);
	disk_close(d);
	d = open_rw(path_in("r.raw"));
	expect_whole(d, model);
	disk_close(d);
}

static void a_qcow2_chain_reads_and_writes_lists_as_a_flat_disk_would(void **state)
{
	uint8_t *base = random_bytes(SIZE), *model = malloc(SIZE), *mid_model;
	const char *b = path_in("b.raw"), *m = path_in("m.qcow2"), *t = path_in("t.qcow2");
	struct error err = {0};
	struct disk *d;

	make_file(b, base, SIZE);
	unlink(m);
	unlink(t);
	assert_int_equal(disk_create_overlay(m, b, DISK_FORMAT_RAW, &err), 0);
	/* The middle image: a few of its own clusters, one zeroed. */
	memcpy(model, base, SIZE);
	d = open_rw(m);
	exercise(d, model, 40);
	assert_int_equal(d->ops->write_zeroes(d, 2 * CS, CS, &err), 0);
	memset(model + 2 * CS, 0, CS);
	disk_close(d);
	mid_model = malloc(SIZE);
	memcpy(mid_model, model, SIZE);

	assert_int_equal(disk_create_overlay(t, m, DISK_FORMAT_QCOW2, &err), 0);
	d = open_rw(t);
	expect_whole(d, model);
	exercise(d, model, 400);
	expect_whole(d, model);
	disk_close(d);
	d = open_rw(t);
	expect_whole(d, model);
	disk_close(d);
	/* Nothing below the top was written. */
	d = open_rw(m);
	expect_whole(d, mid_model);
	disk_close(d);
	d = open_rw(b);
	expect_whole(d, base);
	disk_close(d);
	free(base);
	free(model);
	free(mid_model);
}

static int setup(void **state)
{
	dir = fx_mkdtemp("disk-iov");
	return 0;
}

static int teardown(void **state)
{
	fx_rmdtemp(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(cursor_takes_in_order_joins_and_stops_when_full),
	    cmocka_unit_test(a_raw_disk_reads_and_writes_lists_in_place),
	    cmocka_unit_test(a_qcow2_chain_reads_and_writes_lists_as_a_flat_disk_would),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
