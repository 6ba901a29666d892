/*
 * qcow2 images (vmm/disk/qcow2*.c) through disk.h: an overlay made by
 * disk_create_overlay reads as its backing file (raw or qcow2) until
 * written, keeps what is written across a reopen without touching the
 * backing file, reads zeros where zeroed or discarded; and disk_open
 * refuses, in one line naming the problem, each image it does not support
 * or that is corrupt, and backing chains too deep or looping. The images
 * are made here and patched byte by byte; qcow2.bats checks them against
 * qemu-img.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"

#include "vmm/disk/disk.h"

#define CS 65536u
#define MIB (1u << 20)

static char *dir;

static char *path_in(const char *name)
{
	static char p[8][256];
	static unsigned k;
	char *r = p[k++ % 8];

	snprintf(r, 256, "%s/%s", dir, name);
	return r;
}

static uint8_t pattern(uint64_t off, int seed)
{
	return (uint8_t)((off * 31) ^ (off >> 9) ^ (uint64_t)seed);
}

static void make_raw(const char *path, uint64_t size, int seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	uint8_t *buf = malloc(size);

	assert_true(fd >= 0);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern(i, seed);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static int setup(void **state)
{
	dir = fx_mkdtemp("qcow2");
	return 0;
}

static int teardown(void **state)
{
	fx_rmdtemp(dir);
	return 0;
}

static struct disk *open_ok(const char *path, bool ro)
{
	struct disk_open_options o = {.read_only = ro};
	struct error err = {0};
	struct disk *d = disk_open(path, &o, &err);

	if (!d)
		fail_msg("disk_open '%s': %s", path, err.msg);
	return d;
}

static void overlay(const char *path, const char *backing, enum disk_format f)
{
	struct error err = {0};

	unlink(path);
	if (disk_create_overlay(path, backing, f, &err) < 0)
		fail_msg("disk_create_overlay: %s", err.msg);
}

static void expect_bytes(struct disk *d, uint64_t off, size_t len, int seed)
{
	struct error err = {0};
	uint8_t *buf = malloc(len);

	assert_int_equal(disk_read(d, buf, len, off, &err), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(off + i, seed))
			fail_msg("byte %llu: %u, not %u", (unsigned long long)(off + i), buf[i],
				 pattern(off + i, seed));
	free(buf);
}

static void expect_fill(struct disk *d, uint64_t off, size_t len, uint8_t byte)
{
	struct error err = {0};
	uint8_t *buf = malloc(len);

	assert_int_equal(disk_read(d, buf, len, off, &err), 0);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != byte)
			fail_msg("byte %llu: %u, not %u", (unsigned long long)(off + i), buf[i],
				 byte);
	free(buf);
}

static void fill(struct disk *d, uint64_t off, size_t len, uint8_t byte)
{
	struct error err = {0};
	uint8_t *buf = malloc(len);

	memset(buf, byte, len);
	if (disk_write(d, buf, len, off, &err) < 0)
		fail_msg("write: %s", err.msg);
	free(buf);
}

static void an_overlay_over_raw_reads_its_backing_and_keeps_its_writes(void **state)
{
	char *base = path_in("base.raw"), *ov = path_in("ov.qcow2");
	struct error err = {0};
	struct disk *d;

	make_raw(base, 3 * MIB + 1000, 1);
	overlay(ov, base, DISK_FORMAT_RAW);
	d = open_ok(ov, false);
	assert_int_equal(d->format, DISK_FORMAT_QCOW2);
	assert_int_equal(d->size, 3 * MIB + 1024); /* rounded up to a sector */
	expect_bytes(d, 0, 3 * MIB + 1000, 1);
	expect_fill(d, 3 * MIB + 1000, 24, 0); /* past the backing file's end */
	/* Two partial clusters and a whole one: the rest copied up from below. */
	fill(d, CS - 100, CS + 200, 0xaa);
	assert_int_equal(d->ops->flush(d, &err), 0);
	disk_close(d);

	d = open_ok(ov, true);
	expect_bytes(d, 0, CS - 100, 1);
	expect_fill(d, CS - 100, CS + 200, 0xaa);
	expect_bytes(d, 2 * CS + 100, 3 * MIB + 1000 - 2 * CS - 100, 1);
	assert_int_equal(disk_write(d, "x", 1, 0, &err), -1);
	assert_int_equal(err.errnum, EROFS);
	disk_close(d);
	d = open_ok(base, true);
	assert_int_equal(d->format, DISK_FORMAT_RAW);
	expect_bytes(d, 0, 3 * MIB + 1000, 1); /* the backing file as it was */
	disk_close(d);
}

static void an_overlay_over_qcow2_reads_through_the_chain(void **state)
{
	char *base = path_in("cbase.raw"), *mid = path_in("cmid.qcow2"),
	     *top = path_in("ctop.qcow2");
	struct disk *d;

	make_raw(base, 2 * MIB, 2);
	overlay(mid, base, DISK_FORMAT_RAW);
	d = open_ok(mid, false);
	fill(d, 100000, 5000, 0x11);
	disk_close(d);
	overlay(top, mid, DISK_FORMAT_QCOW2);
	d = open_ok(top, false);
	assert_int_equal(d->size, 2 * MIB);
	fill(d, 102000, 10, 0x22);
	fill(d, 1 * MIB, 3 * CS, 0x33);
	disk_close(d);
	d = open_ok(top, true);
	expect_bytes(d, 0, 100000, 2);
	expect_fill(d, 100000, 2000, 0x11);
	expect_fill(d, 102000, 10, 0x22);
	expect_fill(d, 102010, 2990, 0x11);
	expect_bytes(d, 105000, MIB - 105000, 2);
	expect_fill(d, MIB, 3 * CS, 0x33);
	expect_bytes(d, MIB + 3 * CS, MIB - 3 * CS, 2);
	disk_close(d);
	d = open_ok(mid, true);
	expect_bytes(d, 1 * MIB, 3 * CS, 2); /* the middle image untouched */
	disk_close(d);
}

static void zeroed_and_discarded_clusters_read_as_zeros(void **state)
{
	char *base = path_in("zbase.raw"), *ov = path_in("z.qcow2");
	struct error err = {0};
	struct stat before, after;
	struct disk *d;

	make_raw(base, 2 * MIB, 3);
	overlay(ov, base, DISK_FORMAT_RAW);
	d = open_ok(ov, false);
	assert_true(d->can_write_zeroes && d->can_discard);
	fill(d, 4 * CS, 4 * CS, 0x44);
	/* Zero one whole cluster over the backing file, one written one, and a part of one. */
	assert_int_equal(d->ops->write_zeroes(d, 2 * CS, CS, &err), 0);
	assert_int_equal(d->ops->write_zeroes(d, 4 * CS, CS + 100, &err), 0);
	assert_int_equal(d->ops->discard(d, 6 * CS, 2 * CS, &err), 0);
	assert_int_equal(d->ops->flush(d, &err), 0);
	assert_int_equal(stat(ov, &before), 0);
	/* Writing into the zeroed cluster reuses it: the file does not grow. */
	fill(d, 4 * CS + 10, 10, 0x55);
	assert_int_equal(stat(ov, &after), 0);
	assert_int_equal(before.st_size, after.st_size);
	disk_close(d);

	d = open_ok(ov, true);
	expect_bytes(d, 0, 2 * CS, 3);
	expect_fill(d, 2 * CS, CS, 0);
	expect_bytes(d, 3 * CS, CS, 3);
	expect_fill(d, 4 * CS, 10, 0);
	expect_fill(d, 4 * CS + 10, 10, 0x55);
	expect_fill(d, 4 * CS + 20, CS + 80, 0);
	expect_fill(d, 5 * CS + 100, CS - 100, 0x44);
	expect_fill(d, 6 * CS, 2 * CS, 0); /* discarded: the backing file hidden too */
	expect_bytes(d, 8 * CS, 2 * MIB - 8 * CS, 3);
	disk_close(d);
}

static void patch(const char *path, uint64_t off, uint64_t value, unsigned bytes);
static uint64_t peek(const char *path, uint64_t off);

static void version_2_images_are_zeroed_without_zero_flags(void **state)
{
	char *base = path_in("v2base.raw"), *p = path_in("v2.qcow2");
	struct error err = {0};
	uint64_t l2;
	struct disk *d;

	make_raw(base, MIB, 8);
	overlay(p, base, DISK_FORMAT_RAW);
	/* Version 2: the header ends at 72, where the version 3 fields are zeros: no extensions. */
	patch(p, 4, 2, 4);
	d = open_ok(p, false);
	fill(d, 0, CS, 0x99);
	assert_int_equal(d->ops->write_zeroes(d, 0, 2 * CS, &err), 0);
	assert_int_equal(d->ops->discard(d, 2 * CS, CS, &err), 0);
	expect_fill(d, 0, 2 * CS, 0);
	expect_bytes(d, 2 * CS, CS, 8); /* a discard cannot hide the backing file here */
	disk_close(d);
	l2 = peek(p, peek(p, 40)) & 0x00fffffffffffe00ull;
	assert_int_equal(peek(p, l2) & 1, 0);
	assert_int_equal(peek(p, l2 + 8) & 1, 0);
	/* And without a backing file a zeroed cluster is given back. */
	patch(p, 8, 0, 8);
	patch(p, 16, 0, 4);
	d = open_ok(p, false);
	assert_int_equal(d->ops->write_zeroes(d, 0, CS, &err), 0);
	expect_fill(d, 0, CS, 0);
	disk_close(d);
	assert_int_equal(peek(p, l2), 0);
}

/* Image patching: a big-endian field of the file at off. */
static void patch(const char *path, uint64_t off, uint64_t value, unsigned bytes)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	uint8_t b[8];

	assert_true(fd >= 0);
	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(value >> (8 * (bytes - 1 - i)));
	assert_int_equal(pwrite(fd, b, bytes, (off_t)off), (ssize_t)bytes);
	close(fd);
}

static uint64_t peek(const char *path, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t v;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &v, 8, (off_t)off), 8);
	close(fd);
	return be64toh(v);
}

static void expect_refusal_as(const char *path, bool ro, enum disk_format f, const char *want)
{
	struct disk_open_options o = {.read_only = ro, .format = f};
	struct error err = {0};
	struct disk *d = disk_open(path, &o, &err);

	if (d)
		fail_msg("'%s' opened; wanted '%s'", path, want);
	if (!strstr(err.msg, want))
		fail_msg("message '%s' lacks '%s'", err.msg, want);
	assert_null(strchr(err.msg, '\n'));
}

static void expect_refusal(const char *path, const char *want)
{
	expect_refusal_as(path, false, DISK_FORMAT_AUTO, want);
}

/* A fresh overlay over a small raw file, to patch. */
static char *victim(const char *name)
{
	char *base = path_in("vbase.raw"), *p = path_in(name);

	make_raw(base, MIB, 4);
	overlay(p, base, DISK_FORMAT_RAW);
	return p;
}

static void unsupported_features_are_refused_in_one_line(void **state)
{
	static const struct {
		uint64_t off, value;
		unsigned bytes;
		const char *want;
	} cases[] = {
	    {4, 4, 4, "qcow2 version 4 is not supported"},
	    {20, 22, 4, "cluster size 2^22 is not between 512 bytes and 2 MiB"},
	    {20, 8, 4, "cluster size 2^8"},
	    {32, 1, 4, "encrypted images are not supported"},
	    {72, 1ull << 0, 8, "dirty"},
	    {72, 1ull << 1, 8, "marked corrupt"},
	    {72, 1ull << 2, 8, "external data files are not supported"},
	    {72, 1ull << 3, 8, "compression types other than zlib are not supported"},
	    {72, 1ull << 4, 8, "extended L2 entries (subclusters) are not supported"},
	    {72, 1ull << 10, 8, "unknown incompatible feature bit 10"},
	    {96, 5, 4, "32-bit refcounts are not supported"},
	    {96, 0, 4, "1-bit refcounts are not supported"},
	    {100, 100, 4, "invalid header length"},
	    {36, 0, 4, "the L1 table (0 entries) does not cover the virtual size"},
	    {40, 12345, 8, "invalid L1 table offset"},
	    {56, 0, 4, "invalid refcount table size"},
	    {16, 2000, 4, "invalid backing file name offset or length"},
	    {0, 0x514649fa, 4, "not a qcow2 image"},
	};
	char *p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = victim("bad.qcow2");
		patch(p, cases[i].off, cases[i].value, cases[i].bytes);
		expect_refusal_as(p, false, DISK_FORMAT_QCOW2, cases[i].want);
	}
	/* A backing format of no known name (the extension's three bytes at 112). */
	p = victim("fmt.qcow2");
	patch(p, 112, 0x766d64, 3);
	expect_refusal(p, "backing file format 'vmd' is not supported");
	/* Internal snapshots: readable, not writable. */
	p = victim("snap.qcow2");
	patch(p, 60, 1, 4);
	expect_refusal(p, "has internal snapshots: it can only be opened read-only");
	disk_close(open_ok(p, true));
	/*
	 * Found by fuzz_qcow2: with 512-byte clusters a backing name longer
	 * than the cluster was copied from past the end of the header's buffer.
	 */
	p = victim("longname.qcow2");
	patch(p, 20, 9, 4);
	patch(p, 24, 32768, 8); /* what one L2 table of 512 bytes maps */
	patch(p, 16, 648, 4);
	expect_refusal(p, "invalid backing file name offset or length");
	/* A file cut short inside its header. */
	p = victim("short.qcow2");
	assert_int_equal(truncate(p, 50), 0);
	expect_refusal(p, "truncated");
}

static void an_unknown_feature_is_named_from_the_feature_table(void **state)
{
	char *p = victim("named.qcow2");
	uint8_t ext[8 + 48] = {0};
	int fd;

	/* Replace the backing-format extension (at 104) by a one-entry feature table. */
	patch(p, 8, 0, 8); /* no backing file: its name would sit in the way */
	patch(p, 16, 0, 4);
	ext[0] = 0x68, ext[1] = 0x03, ext[2] = 0xf8, ext[3] = 0x57, ext[7] = 48;
	ext[8] = 0;  /* incompatible */
	ext[9] = 12; /* bit 12 */
	memcpy(ext + 10, "time travel", 11);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	assert_int_equal(pwrite(fd, ext, sizeof(ext), 104), (ssize_t)sizeof(ext));
	assert_int_equal(pwrite(fd, "\0\0\0\0\0\0\0\0", 8, 104 + sizeof(ext)), 8);
	close(fd);
	patch(p, 72, 1ull << 12, 8);
	expect_refusal(p, "unknown incompatible feature 'time travel'");
	/* Without the unknown bit the same image opens: unknown extensions are fine. */
	patch(p, 72, 0, 8);
	patch(p, 104, 0x12345678, 4);
	disk_close(open_ok(p, false));
}

static void compressed_misaligned_and_overlapping_clusters_are_refused(void **state)
{
	char *p = victim("comp.qcow2");
	uint64_t l1, l2, e;
	struct disk *d;

	d = open_ok(p, false);
	fill(d, 0, 512, 0x66);
	disk_close(d);
	l1 = peek(p, 40);
	l2 = peek(p, l1) & 0x00fffffffffffe00ull;
	e = peek(p, l2);
	patch(p, l2, e | (1ull << 62), 8);
	expect_refusal(p, "compressed clusters are not supported");
	patch(p, l2, e + 512, 8);
	expect_refusal(p, "is corrupt: an L2 entry is not cluster-aligned");
	patch(p, l2, 0x8000000000000000ull | 65536, 8); /* the refcount table, as data */
	expect_refusal(p, "is corrupt: a data cluster lies on the image's metadata");
	patch(p, l2, e, 8);
	disk_close(open_ok(p, false));
	patch(p, 65536 + 8, l2, 8); /* a refcount block that is the L2 table */
	expect_refusal(p, "is corrupt: two of its tables share a cluster");
}

static void tables_past_the_end_of_the_file_are_refused(void **state)
{
	char *p = victim("past.qcow2");
	struct disk *d;
	uint64_t l1;

	/* A second refcount block far past the end (found by fuzz_qcow2: the table grew without
	 * end). */
	patch(p, 65536 + 8, 1ull << 55, 8);
	expect_refusal(p, "is corrupt: a refcount block lies past the end of the file");
	patch(p, 65536 + 8, 0, 8);
	d = open_ok(p, false);
	fill(d, 0, 512, 1);
	disk_close(d);
	l1 = peek(p, 40);
	patch(p, l1, 0x8000000000000000ull | (1ull << 40), 8);
	expect_refusal(p, "is corrupt: an L2 table lies past the end of the file");
	patch(p, 40, 1ull << 40, 8);
	expect_refusal(p, "is corrupt: the L1 table lies past the end of the file");
}

static void set_backing(const char *path, const char *name)
{
	uint64_t off = peek(path, 8);
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	assert_int_equal(pwrite(fd, name, strlen(name), (off_t)off), (ssize_t)strlen(name));
	close(fd);
	patch(path, 16, strlen(name), 4);
}

static void backing_chains_too_deep_looping_or_missing_are_refused(void **state)
{
	char *base = path_in("d0.raw"), name[64], prev[256];
	struct disk_open_options o = {0};
	struct error err = {0};
	struct disk *d;

	make_raw(base, MIB, 5);
	snprintf(prev, sizeof(prev), "%s", base);
	/* d1 over d0.raw, ..., d9 over d8: nine backing files below d9. */
	for (int i = 1; i <= 9; i++) {
		snprintf(name, sizeof(name), "d%d.qcow2", i);
		overlay(path_in(name), prev, i == 1 ? DISK_FORMAT_RAW : DISK_FORMAT_QCOW2);
		snprintf(prev, sizeof(prev), "%s", path_in(name));
	}
	d = open_ok(path_in("d8.qcow2"), false); /* eight: the default limit */
	expect_bytes(d, 0, MIB, 5);
	disk_close(d);
	expect_refusal(path_in("d9.qcow2"), "backing chain deeper than 8 images");
	o.max_backing_depth = 9;
	d = disk_open(path_in("d9.qcow2"), &o, &err);
	assert_non_null(d);
	disk_close(d);
	o.max_backing_depth = 2;
	assert_null(disk_open(path_in("d3.qcow2"), &o, &err));
	assert_non_null(strstr(err.msg, "backing chain deeper than 2 images"));

	/* d2 made to sit on d3, which sits on d2. Names of the same length. */
	set_backing(path_in("d2.qcow2"), path_in("d3.qcow2"));
	expect_refusal(path_in("d3.qcow2"), "backing chain loops back to an image above it");
	/* And on itself. */
	set_backing(path_in("d2.qcow2"), path_in("d2.qcow2"));
	expect_refusal(path_in("d2.qcow2"), "backing chain loops back");
	/* A backing file that is gone, named in the message. */
	set_backing(path_in("d2.qcow2"), path_in("dx.qcow2"));
	expect_refusal(path_in("d2.qcow2"), "backing file: cannot open disk image");
	expect_refusal(path_in("d2.qcow2"), "dx.qcow2': No such file or directory");
}

static void an_overlay_is_never_made_over_an_existing_file(void **state)
{
	char *base = path_in("ebase.raw"), *ov = path_in("exists.qcow2");
	struct error err = {0};
	struct stat st;

	make_raw(base, MIB, 6);
	make_raw(ov, 1000, 7);
	assert_int_equal(disk_create_overlay(ov, base, DISK_FORMAT_RAW, &err), -1);
	assert_non_null(strstr(err.msg, "File exists"));
	assert_int_equal(stat(ov, &st), 0);
	assert_int_equal(st.st_size, 1000);
	/* A backing file that is missing leaves nothing behind. */
	assert_int_equal(
	    disk_create_overlay(path_in("none.qcow2"), path_in("gone.raw"), DISK_FORMAT_RAW, &err),
	    -1);
	assert_non_null(strstr(err.msg, "gone.raw"));
	assert_int_equal(stat(path_in("none.qcow2"), &st), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(an_overlay_over_raw_reads_its_backing_and_keeps_its_writes),
	    cmocka_unit_test(an_overlay_over_qcow2_reads_through_the_chain),
	    cmocka_unit_test(zeroed_and_discarded_clusters_read_as_zeros),
	    cmocka_unit_test(version_2_images_are_zeroed_without_zero_flags),
	    cmocka_unit_test(unsupported_features_are_refused_in_one_line),
	    cmocka_unit_test(an_unknown_feature_is_named_from_the_feature_table),
	    cmocka_unit_test(compressed_misaligned_and_overlapping_clusters_are_refused),
	    cmocka_unit_test(tables_past_the_end_of_the_file_are_refused),
	    cmocka_unit_test(backing_chains_too_deep_looping_or_missing_are_refused),
	    cmocka_unit_test(an_overlay_is_never_made_over_an_existing_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
