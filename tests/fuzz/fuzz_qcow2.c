/*
 * libFuzzer target: a qcow2 image as vmm/disk opens it (issue 12 item 6).
 * Images are untrusted (a user hands hutch any file as --disk), so every
 * header field, extension, table entry and offset must be checked before
 * use. The input is the image file, in a memfd opened by its
 * /proc/self/fd path; it is opened read-only and read at a few offsets,
 * then writable: written, zeroed and discarded, and each write must read
 * back (checked below), or the input counts as a crash.
 *
 *   make fuzz && build/tests/fuzz/fuzz_qcow2 tests/fuzz/corpus/qcow2
 *
 * tests/run-all runs it for a bounded time; a crash it finds becomes a
 * case in tests/unit/test_qcow2.c. A backing file name in an input is
 * resolved like any other; the seeds name none.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "common/banned.h"
#include "vmm/disk/disk.h"

static uint8_t buf[8192], back[8192];

static void read_some(struct disk *d)
{
	struct error err = {0};
	uint64_t offs[3] = {0, d->size / 2, d->size > sizeof(buf) ? d->size - sizeof(buf) : 0};

	for (int i = 0; i < 3; i++) {
		size_t n =
		    d->size - offs[i] < sizeof(buf) ? (size_t)(d->size - offs[i]) : sizeof(buf);

		disk_read(d, buf, n, offs[i], &err);
	}
}

static void write_some(struct disk *d)
{
	struct error err = {0};
	uint64_t off = d->size / 3;
	size_t n = d->size - off < 5000 ? (size_t)(d->size - off) : 5000;

	memset(buf, 0xa5, n);
	if (disk_write(d, buf, n, off, &err) == 0 && disk_read(d, back, n, off, &err) == 0)
		CHECK(memcmp(buf, back, n) == 0);
	if (d->size >= 3 * 65536 && d->ops->write_zeroes(d, 65536 - 100, 65536 + 200, &err) == 0 &&
	    disk_read(d, back, 300, 65536 - 150, &err) == 0) {
		for (size_t i = 50; i < 250; i++)
			CHECK(back[i] == 0);
	}
	if (d->size >= 4 * 65536)
		d->ops->discard(d, 2 * 65536, 2 * 65536, &err);
	d->ops->flush(d, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk_open_options o = {.format = DISK_FORMAT_QCOW2, .read_only = true};
	struct error err = {0};
	struct disk *d;
	char path[64];
	int fd;

	fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	d = disk_open(path, &o, &err);
	if (d) {
		read_some(d);
		disk_close(d);
		o.read_only = false;
		d = disk_open(path, &o, &err);
		if (d) {
			write_some(d);
			disk_close(d);
		}
	} else {
		/* A refusal is one line. */
		CHECK(err.msg[0] && !strchr(err.msg, '\n'));
	}
	close(fd);
	return 0;
}
