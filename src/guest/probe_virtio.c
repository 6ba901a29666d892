/*
 * hutch-probe virtio: a hostile virtio driver, for the VM tests. It takes
 * every virtio-mmio device away from the guest kernel's driver (unbind),
 * finds their register windows in /proc/iomem, maps them through /dev/mem
 * (allowed for a window no driver holds, even with STRICT_DEVMEM) and, on
 * each, breaks the rules of virtio 1.x one way at a time: queue sizes
 * zero, not a power of two and over the maximum; rings outside RAM,
 * wrapping around and misaligned; and, with real rings in a page of this
 * process (its physical address from /proc/self/pagemap), a looping chain,
 * an indirect table longer than any queue, a head and a next index out of
 * range, avail.idx far ahead and a buffer outside RAM. After each it
 * expects the device to say NEEDS_RESET, and resets it. Prints one line
 * a case ("virtio-probe CASE needs-reset" or "... MISSED status 0x..") and
 * exits 0 if every case was caught; the VMM's count is for the test to read
 * (--trace-io).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "guest/probe-virtio.h"

/* virtio-mmio registers (4.2.2). */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_AVAIL_LO 0x090
#define R_AVAIL_HI 0x094
#define R_USED_LO 0x0a0
#define R_USED_HI 0x0a4

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

#define QSIZE 8
#define PAGE 4096

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static volatile uint32_t *regs;
static uint8_t *ring_page; /* one locked page: desc at 0, avail at 1024, used at 2048 */
static uint64_t ring_phys;

static void w(unsigned off, uint32_t v)
{
	__sync_synchronize();
	regs[off / 4] = v;
	__sync_synchronize();
}

static uint32_t r(unsigned off)
{
	__sync_synchronize();
	return regs[off / 4];
}

static void w64(unsigned lo, uint64_t v)
{
	w(lo, (uint32_t)v);
	w(lo + 4, (uint32_t)(v >> 32));
}

/* Reset, then ACK, DRIVER, VERSION_1 (and indirect), FEATURES_OK. */
static void start(bool indirect)
{
	w(R_STATUS, 0);
	w(R_STATUS, S_ACK);
	w(R_STATUS, S_ACK | S_DRIVER);
	w(R_DRV_FEATURES_SEL, 1);
	w(R_DRV_FEATURES, 1); /* VIRTIO_F_VERSION_1 */
	w(R_DRV_FEATURES_SEL, 0);
	w(R_DEV_FEATURES_SEL, 0);
	w(R_DRV_FEATURES, indirect ? r(R_DEV_FEATURES) & (1u << 28) : 0);
	w(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
}

/* Queue 0 of size num with its rings at desc, avail, used, then DRIVER_OK. */
static void queue(uint32_t num, uint64_t desc, uint64_t avail, uint64_t used)
{
	w(R_QUEUE_SEL, 0);
	w(R_QUEUE_NUM, num);
	w64(R_DESC_LO, desc);
	w64(R_AVAIL_LO, avail);
	w64(R_USED_LO, used);
	w(R_QUEUE_READY, 1);
	w(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* Wait up to 2 s (the event loop serves notifications) for NEEDS_RESET. */
static bool needs_reset(uint32_t *status)
{
	for (int i = 0; i < 200; i++) {
		*status = r(R_STATUS);
		if (*status & S_NEEDS_RESET)
			return true;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	return false;
}

static struct desc *descs(void)
{
	return (struct desc *)ring_page;
}

/* Good rings, chain set by the caller, then head published and notified. */
static void good_rings_then_notify(uint16_t head, uint16_t avail_idx)
{
	volatile uint16_t *avail = (volatile uint16_t *)(ring_page + 1024);

	queue(QSIZE, ring_phys, ring_phys + 1024, ring_phys + 2048);
	avail[0] = 0;	 /* flags */
	avail[2] = head; /* ring[0] */
	__sync_synchronize();
	avail[1] = avail_idx; /* idx */
	w(R_QUEUE_NOTIFY, 0);
}

static void chain_defaults(void)
{
	memset(ring_page, 0, PAGE);
	for (int i = 0; i < QSIZE; i++)
		descs()[i] = (struct desc){.addr = ring_phys + 3072, .len = 16};
}

static int failures, cases;

static void expect(const char *name)
{
	uint32_t st;

	cases++;
	if (needs_reset(&st)) {
		printf("virtio-probe %s needs-reset\n", name);
	} else {
		printf("virtio-probe %s MISSED status 0x%x\n", name, st);
		failures++;
	}
	fflush(stdout);
	w(R_STATUS, 0);
}

static void hostile(void)
{
	uint32_t max;

	start(false);
	w(R_QUEUE_SEL, 0);
	max = r(R_QUEUE_NUM_MAX);

	start(false);
	queue(0, ring_phys, ring_phys + 1024, ring_phys + 2048);
	expect("size-zero");
	start(false);
	queue(3, ring_phys, ring_phys + 1024, ring_phys + 2048);
	expect("size-not-power-of-two");
	start(false);
	queue(max * 2, ring_phys, ring_phys + 1024, ring_phys + 2048);
	expect("size-over-max");
	start(false);
	queue(QSIZE, 1ULL << 46, ring_phys + 1024, ring_phys + 2048);
	expect("desc-ring-outside-ram");
	start(false);
	queue(QSIZE, ring_phys, ring_phys + 1024, 0xfffffffffffff000ULL);
	expect("used-ring-wrapping");
	start(false);
	queue(QSIZE, ring_phys + 1, ring_phys + 1024, ring_phys + 2048);
	expect("desc-ring-misaligned");

	/* A chain 0 -> 1 -> 0 ...: a loop. */
	start(false);
	chain_defaults();
	descs()[0].flags = F_NEXT;
	descs()[0].next = 1;
	descs()[1].flags = F_NEXT;
	descs()[1].next = 0;
	good_rings_then_notify(0, 1);
	expect("looping-chain");
	/* A chain through every descriptor and back into itself at the end: over-long. */
	start(false);
	chain_defaults();
	for (int i = 0; i < QSIZE; i++) {
		descs()[i].flags = F_NEXT;
		descs()[i].next = (uint16_t)((i + 1) % QSIZE);
	}
	good_rings_then_notify(3, 1);
	expect("over-long-chain");
	/* An indirect table of 4096 entries (more than any queue holds). */
	start(true);
	chain_defaults();
	descs()[0] = (struct desc){.addr = ring_phys + 3072, .len = 4096 * 16, .flags = F_INDIRECT};
	good_rings_then_notify(0, 1);
	expect("indirect-table-too-long");
	start(false);
	chain_defaults();
	good_rings_then_notify(200, 1);
	expect("head-out-of-range");
	start(false);
	chain_defaults();
	descs()[0].flags = F_NEXT;
	descs()[0].next = 9999;
	good_rings_then_notify(0, 1);
	expect("next-out-of-range");
	start(false);
	chain_defaults();
	good_rings_then_notify(0, 100);
	expect("avail-idx-far-ahead");
	start(false);
	chain_defaults();
	descs()[0] = (struct desc){.addr = 1ULL << 46, .len = 512, .flags = F_NEXT, .next = 1};
	descs()[1].flags = F_WRITE;
	good_rings_then_notify(0, 1);
	expect("buffer-outside-ram");
}

/* Unbind every virtio-mmio device from its driver; true if any was. */
static void unbind_all(void)
{
	const char *drv = "/sys/bus/platform/drivers/virtio-mmio";
	DIR *d = opendir(drv);
	struct dirent *e;
	char path[256];

	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd;

		if (strncmp(e->d_name, "LNRO0005", 8))
			continue;
		snprintf(path, sizeof(path), "%s/unbind", drv);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, e->d_name, strlen(e->d_name)) < 0)
				perror("hutch-probe: unbind");
			close(fd);
		}
	}
	closedir(d);
}

static int ring_setup(void)
{
	uint64_t entry;
	int fd;

	ring_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ring_page == MAP_FAILED || mlock(ring_page, PAGE) < 0)
		return perror("hutch-probe: ring page"), -1;
	memset(ring_page, 0, PAGE);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || pread(fd, &entry, sizeof(entry), (off_t)((uintptr_t)ring_page / PAGE * 8)) !=
			  (ssize_t)sizeof(entry))
		return perror("hutch-probe: pagemap"), -1;
	close(fd);
	if (!(entry >> 63) || !(entry & ((1ULL << 55) - 1))) {
		fprintf(stderr, "hutch-probe: no physical address for the ring page\n");
		return -1;
	}
	ring_phys = (entry & ((1ULL << 55) - 1)) * PAGE;
	return 0;
}

int probe_virtio(void)
{
	char line[256];
	FILE *f;
	int mem, found = 0;

	unbind_all();
	if (ring_setup() < 0)
		return 1;
	mem = open("/dev/mem", O_RDWR | O_SYNC);
	f = fopen("/proc/iomem", "r");
	if (mem < 0 || !f)
		return perror("hutch-probe: /dev/mem or /proc/iomem"), 1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long base, end;
		void *map;

		if (!strstr(line, "LNRO0005") || sscanf(line, " %llx-%llx", &base, &end) != 2)
			continue;
		map = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mem, (off_t)base);
		if (map == MAP_FAILED) {
			fprintf(stderr, "hutch-probe: mmap /dev/mem at 0x%llx: %s\n", base,
				strerror(errno));
			return 1;
		}
		regs = map;
		if (r(R_MAGIC) != 0x74726976 || r(R_VERSION) != 2 || r(R_DEVICE_ID) == 0) {
			munmap(map, PAGE);
			continue;
		}
		printf("virtio-probe device %u at 0x%llx\n", r(R_DEVICE_ID), base);
		found++;
		hostile();
		munmap(map, PAGE);
	}
	fclose(f);
	if (!found) {
		fprintf(stderr, "hutch-probe: no virtio-mmio device found\n");
		return 1;
	}
	printf("virtio-probe %d of %d cases caught\n", cases - failures, cases);
	return failures ? 1 : 0;
}
