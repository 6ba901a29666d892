/*
 * A raw disk image (vmm/disk/raw.c) through disk_open: the file's bytes are
 * the disk's, reads and writes at any offset and length go through whole,
 * discard and write-zeroes leave zeros, a read-only open cannot write, and
 * disk_open refuses what is not an image with one line naming it.
 */
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

static char *dir;

static char *path_in(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void make_file(const char *path, size_t size, int seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char *buf = malloc(size);

	assert_true(fd >= 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 7 + (size_t)seed);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static int setup(void **state)
{
	dir = fx_mkdtemp("disk-raw");
	return 0;
}

static int teardown(void **state)
{
	fx_rmdtemp(dir);
	return 0;
}

static struct disk *open_ok(const char *path, enum disk_format f, bool ro)
{
	struct disk_open_options o = {.format = f, .read_only = ro};
	struct error err = {0};
	struct disk *d = disk_open(path, &o, &err);

	if (!d)
		fail_msg("disk_open: %s", err.msg);
	return d;
}

static void a_raw_image_reads_and_writes_the_files_bytes(void **state)
{
	char *p = path_in("a.img");
	struct error err = {0};
	char buf[5000], want[5000];
	struct disk *d;
	int fd;

	make_file(p, 1 << 20, 1);
	d = open_ok(p, DISK_FORMAT_AUTO, false);
	assert_int_equal(d->format, DISK_FORMAT_RAW);
	assert_int_equal(d->size, 1 << 20);
	assert_string_equal(d->id, "a.img");
	assert_int_equal(disk_read(d, buf, sizeof(buf), 12345, &err), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal((char)buf[i], (char)((i + 12345) * 7 + 1));
	memset(want, 'w', sizeof(want));
	assert_int_equal(disk_write(d, want, sizeof(want), 777, &err), 0);
	assert_int_equal(d->ops->flush(d, &err), 0);
	disk_close(d);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, buf, sizeof(buf), 777), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(pread(fd, buf, 1, 776), 1);
	assert_int_equal((char)buf[0], (char)(776 * 7 + 1));
	close(fd);
}

static void discard_and_write_zeroes_leave_zeros(void **state)
{
	char *p = path_in("z.img");
	struct error err = {0};
	static char buf[256 << 10], zeros[256 << 10];
	struct disk *d;

	make_file(p, 1 << 20, 2);
	d = open_ok(p, DISK_FORMAT_RAW, false);
	assert_true(d->can_write_zeroes);
	assert_int_equal(d->ops->write_zeroes(d, 4096 + 100, 200000, &err), 0);
	assert_int_equal(disk_read(d, buf, 200000, 4096 + 100, &err), 0);
	assert_memory_equal(buf, zeros, 200000);
	/* The bytes around the range are untouched. */
	assert_int_equal(disk_read(d, buf, 1, 4096 + 99, &err), 0);
	assert_int_equal((char)buf[0], (char)((4096 + 99) * 7 + 2));
	assert_int_equal(disk_read(d, buf, 1, 4096 + 100 + 200000, &err), 0);
	assert_int_equal((char)buf[0], (char)((4096 + 100 + 200000) * 7 + 2));
	if (d->can_discard) {
		assert_int_equal(d->ops->discard(d, 512 << 10, 256 << 10, &err), 0);
		assert_int_equal(disk_read(d, buf, 256 << 10, 512 << 10, &err), 0);
		assert_memory_equal(buf, zeros, 256 << 10);
	}
	assert_int_equal(d->size, 1 << 20); /* KEEP_SIZE */
	disk_close(d);
}

static void a_read_only_image_refuses_writes(void **state)
{
	char *p = path_in("ro.img");
	struct error err = {0};
	struct disk *d;

	make_file(p, 65536, 3);
	chmod(p, 0444);
	d = open_ok(p, DISK_FORMAT_RAW, true);
	assert_true(d->read_only);
	assert_false(d->can_discard);
	assert_int_equal(disk_write(d, "x", 1, 0, &err), -1);
	assert_int_equal(err.errnum, EROFS);
	disk_close(d);
}

static void expect_refusal_as(const char *path, bool ro, const char *want)
{
	struct disk_open_options o = {.read_only = ro};
	struct error err = {0};

	assert_null(disk_open(path, &o, &err));
	if (!strstr(err.msg, want))
		fail_msg("message '%s' lacks '%s'", err.msg, want);
}

static void an_image_has_one_writer_or_many_readers(void **state)
{
	char *p = path_in("locked.img");
	struct disk *w, *r1, *r2;

	make_file(p, 65536, 4);
	w = open_ok(p, DISK_FORMAT_RAW, false);
	expect_refusal_as(p, false, "disk image");
	expect_refusal_as(p, false, "is in use: another program has it open");
	expect_refusal_as(p, true, "is in use: another program has it open for writing");
	disk_close(w);
	r1 = open_ok(p, DISK_FORMAT_RAW, true);
	r2 = open_ok(p, DISK_FORMAT_RAW, true);
	expect_refusal_as(p, false, "is in use");
	disk_close(r1);
	disk_close(r2);
	disk_close(open_ok(p, DISK_FORMAT_RAW, false)); /* closing let go of the locks */
}

static void expect_refusal(const char *path, const char *want)
{
	struct disk_open_options o = {0};
	struct error err = {0};

	assert_null(disk_open(path, &o, &err));
	if (!strstr(err.msg, want))
		fail_msg("message '%s' lacks '%s'", err.msg, want);
	assert_null(strchr(err.msg, '\n'));
}

static void what_is_not_an_image_is_refused_in_one_line(void **state)
{
	char *p;

	p = path_in("missing.img");
	expect_refusal(p, "cannot open disk image");
	expect_refusal(p, "No such file or directory");
	expect_refusal(dir, "is a directory");
	p = path_in("fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	expect_refusal(p, "is not a regular file or block device");
	if (geteuid() != 0) { /* root reads a file of mode 0000 anyway */
		p = path_in("unreadable.img");
		make_file(p, 512, 0);
		chmod(p, 0);
		expect_refusal(p, "Permission denied");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_raw_image_reads_and_writes_the_files_bytes),
	    cmocka_unit_test(discard_and_write_zeroes_leave_zeros),
	    cmocka_unit_test(a_read_only_image_refuses_writes),
	    cmocka_unit_test(what_is_not_an_image_is_refused_in_one_line),
	    cmocka_unit_test(an_image_has_one_writer_or_many_readers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
