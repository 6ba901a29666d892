/*
 * disktool: drives vmm/disk from the shell for tests/integration/qcow2.bats,
 * which compares what it reads and writes with qemu-img and qemu-io. A test
 * helper, not a user command.
 *
 *   disktool info FILE                 format and virtual size
 *   disktool dump FILE OUT             the whole virtual disk into OUT (raw)
 *   disktool write FILE OFF < DATA     stdin written at OFF, then flushed
 *   disktool zero|discard FILE OFF LEN write-zeroes or discard, then flush
 *   disktool create-overlay FILE BACKING raw|qcow2
 *   disktool stress FILE SEED [N]      N (default: endless) random writes of
 *                                      random lengths, a flush every few; for
 *                                      the crash test, which kills it
 *
 * A crash at an exact point: with DISKTOOL_CRASH_AFTER=K in the environment
 * disktool exits (status 99) when it is about to make its K-th pwrite, pwritev or
 * fdatasync (counted together), as a kill -9 there would. With DISKTOOL_POWER_LOSS=SEED too, it
 * loses some of the writes not yet made durable by fdatasync (chosen by SEED, the newest first,
 * never one a kept later write overlaps), as a power cut would: what the fdatasync barriers of
 * vmm/disk/qcow2 must survive. disktool stands in for pwrite, pwritev and fdatasync for that (the
 * executable's definitions win over libc's for every caller in it).
 *
 * Failures print "disktool: MESSAGE" and exit 125, as hutch does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/error.h"
#include "vmm/disk/disk.h"

/* The writes since the last fdatasync, with the bytes they replaced. */
struct undo {
	int fd;
	off_t off;
	size_t len;
	char *old;
};

static struct undo *undo;
static size_t nundo, undo_cap;
static long crash_after = -1, pwrites;
static unsigned long long loss_seed;
static bool power_loss;

static void crash_setup(void)
{
	const char *k = getenv("DISKTOOL_CRASH_AFTER"), *s = getenv("DISKTOOL_POWER_LOSS");

	if (k)
		crash_after = atol(k);
	if (s) {
		power_loss = true;
		loss_seed = strtoull(s, NULL, 0) * 6364136223846793005ull + 1;
	}
}

static bool overlap(const struct undo *a, const struct undo *b)
{
	return a->fd == b->fd && a->off < b->off + (off_t)b->len && b->off < a->off + (off_t)a->len;
}

static _Noreturn void crash(void)
{
	bool *kept = calloc(nundo + 1, 1);

	for (size_t i = nundo; power_loss && i-- > 0;) {
		loss_seed = loss_seed * 6364136223846793005ull + 1442695040888963407ull;
		kept[i] = (loss_seed >> 33) & 1;
		for (size_t j = i + 1; j < nundo && !kept[i]; j++)
			if (kept[j] && overlap(&undo[i], &undo[j]))
				kept[i] = true;
		if (!kept[i])
			syscall(SYS_pwrite64, undo[i].fd, undo[i].old, undo[i].len, undo[i].off);
	}
	_exit(99);
}

/* The n bytes at off of fd, before a write not yet made durable replaces them. */
static void remember(int fd, size_t n, off_t off)
{
	struct undo *u;
	ssize_t r;

	if (nundo == undo_cap) {
		undo_cap = undo_cap ? 2 * undo_cap : 256;
		undo = realloc(undo, undo_cap * sizeof(*undo));
	}
	u = &undo[nundo++];
	u->fd = fd;
	u->off = off;
	u->len = n;
	u->old = calloc(1, n ? n : 1);
	r = syscall(SYS_pread64, fd, u->old, n, off);
	(void)r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
int fdatasync(int fd);

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (crash_after >= 0 && ++pwrites >= crash_after)
		crash();
	if (power_loss)
		remember(fd, n, off);
	return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

/* The data of guest writes goes out with pwritev: one write, as for pwrite. */
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off);
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off);

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	if (crash_after >= 0 && ++pwrites >= crash_after)
		crash();
	if (power_loss)
		remember(fd, n, off);
	return syscall(SYS_pwritev, fd, iov, cnt, (unsigned long)off, 0ul);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

int fdatasync(int fd)
{
	/* A crash during the sync: what it had not yet made durable may be lost. */
	if (crash_after >= 0 && ++pwrites >= crash_after)
		crash();
	for (size_t i = 0; i < nundo; i++)
		free(undo[i].old);
	nundo = 0;
	return (int)syscall(SYS_fdatasync, fd);
}

static _Noreturn void fail(const struct error *err)
{
	fprintf(stderr, "disktool: %s\n", err->msg);
	exit(125);
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "disktool: bad number '%s'\n", s);
		exit(125);
	}
	return v;
}

static struct disk *open_disk(const char *path, bool ro)
{
	struct disk_open_options o = {.read_only = ro};
	struct error err = {0};
	struct disk *d = disk_open(path, &o, &err);

	if (!d)
		fail(&err);
	return d;
}

static void check(struct disk *d, int r, struct error *err)
{
	(void)d;
	if (r < 0)
		fail(err);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int stress(const char *path, uint64_t seed, uint64_t n)
{
	struct disk *d = open_disk(path, false);
	struct error err = {0};
	static char buf[256 << 10];
	uint64_t s = seed * 2654435761u + 1;

	for (uint64_t i = 0; n == 0 || i < n; i++) {
		uint64_t len = rnd(&s) % sizeof(buf) + 1, off, kind = rnd(&s) % 16;

		if (len > d->size)
			len = d->size;
		off = rnd(&s) % (d->size - len + 1);
		memset(buf, (int)(rnd(&s) & 0xff), len);
		if (kind == 0)
			check(d, d->ops->write_zeroes(d, off, len, &err), &err);
		else if (kind == 1)
			check(d, d->ops->discard(d, off, len, &err), &err);
		else
			check(d, disk_write(d, buf, len, off, &err), &err);
		if (kind == 2)
			check(d, d->ops->flush(d, &err), &err);
	}
	check(d, d->ops->flush(d, &err), &err);
	disk_close(d);
	return 0;
}

int main(int argc, char **argv)
{
	struct error err = {0};
	struct disk *d;
	static char buf[1 << 20];

	crash_setup();
	if (argc < 3) {
		fprintf(stderr, "usage: disktool "
				"info|dump|write|zero|discard|create-overlay|stress FILE ...\n");
		return 2;
	}
	if (!strcmp(argv[1], "info")) {
		d = open_disk(argv[2], true);
		printf("%s %llu\n", d->format == DISK_FORMAT_QCOW2 ? "qcow2" : "raw",
		       (unsigned long long)d->size);
		disk_close(d);
	} else if (!strcmp(argv[1], "dump") && argc == 4) {
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		d = open_disk(argv[2], true);
		if (fd < 0) {
			perror("disktool: open");
			return 125;
		}
		for (uint64_t off = 0; off < d->size;) {
			size_t n = d->size - off < sizeof(buf) ? d->size - off : sizeof(buf);

			check(d, disk_read(d, buf, n, off, &err), &err);
			if (write(fd, buf, n) != (ssize_t)n) {
				perror("disktool: write");
				return 125;
			}
			off += n;
		}
		close(fd);
		disk_close(d);
	} else if (!strcmp(argv[1], "write") && argc == 4) {
		uint64_t off = num(argv[3]);
		ssize_t n;

		d = open_disk(argv[2], false);
		while ((n = read(0, buf, sizeof(buf))) > 0) {
			check(d, disk_write(d, buf, (size_t)n, off, &err), &err);
			off += (uint64_t)n;
		}
		check(d, d->ops->flush(d, &err), &err);
		disk_close(d);
	} else if ((!strcmp(argv[1], "zero") || !strcmp(argv[1], "discard")) && argc == 5) {
		d = open_disk(argv[2], false);
		if (argv[1][0] == 'z')
			check(d, d->ops->write_zeroes(d, num(argv[3]), num(argv[4]), &err), &err);
		else
			check(d, d->ops->discard(d, num(argv[3]), num(argv[4]), &err), &err);
		check(d, d->ops->flush(d, &err), &err);
		disk_close(d);
	} else if (!strcmp(argv[1], "create-overlay") && argc == 5) {
		enum disk_format f =
		    !strcmp(argv[4], "qcow2") ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;

		if (disk_create_overlay(argv[2], argv[3], f, &err) < 0)
			fail(&err);
	} else if (!strcmp(argv[1], "stress") && argc >= 4) {
		return stress(argv[2], num(argv[3]), argc > 4 ? num(argv[4]) : 0);
	} else {
		fprintf(stderr, "disktool: unknown command or wrong arguments\n");
		return 2;
	}
	return 0;
}
