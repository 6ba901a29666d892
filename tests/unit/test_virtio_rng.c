/*
 * virtio-rng (vmm/devices/virtio_rng.c) on its transport, without KVM: a
 * driver sets it up as Linux does, offers chains, notifies; the device
 * fills every writable buffer from getrandom(), says so in the used ring
 * and interrupts; a chain that breaks the queue's rules stops the device.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/devices/devices.h"
#include "fake_vm.h"

#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define BUF 0x20000

struct fixture {
	struct fake_vm vm;
	struct vm_services svc;
	struct device *dev;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct error err = {0};

	fake_vm_init(&f->vm, &f->svc);
	f->dev = virtio_rng_create(&f->svc, &err);
	assert_non_null(f->dev);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	device_free(f->dev);
	fake_vm_release(&f->vm);
	test_free(f);
	return 0;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	f->dev->ranges[0].access(f->dev->priv, off, (uint8_t *)&v, 4, false);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	f->dev->ranges[0].access(f->dev->priv, off, (uint8_t *)&v, 4, true);
}

static uint8_t *gp(struct fixture *f, uint64_t gpa, uint64_t len)
{
	return guest_ptr(&f->vm.mem, gpa, len);
}

static void set_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = gp(f, DESC + 16 * i, 16);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void offer(struct fixture *f, unsigned n, uint16_t head)
{
	uint16_t idx = (uint16_t)(n + 1);

	memcpy(gp(f, AVAIL + 4 + 2 * (n % 8), 2), &head, 2);
	memcpy(gp(f, AVAIL + 2, 2), &idx, 2);
}

/* Linux's virtio_mmio probe and virtio-rng's one queue of 8, DRIVER_OK. */
static void bring_up(struct fixture *f)
{
	assert_int_equal(rd(f, 0x000), 0x74726976);
	assert_int_equal(rd(f, 0x008), VIRTIO_ID_RNG);
	wr(f, 0x070, 0);
	wr(f, 0x070, 3);
	wr(f, 0x024, 1);
	wr(f, 0x020, 1); /* VERSION_1 */
	wr(f, 0x024, 0);
	wr(f, 0x020, 0);
	wr(f, 0x070, 0xb);
	wr(f, 0x030, 0);
	assert_true(rd(f, 0x034) >= 8);
	wr(f, 0x030, 1);
	assert_int_equal(rd(f, 0x034), 0); /* one queue only */
	wr(f, 0x030, 0);
	wr(f, 0x038, 8);
	wr(f, 0x080, DESC);
	wr(f, 0x090, AVAIL);
	wr(f, 0x0a0, USED);
	wr(f, 0x044, 1);
	wr(f, 0x070, 0xf);
	assert_int_equal(rd(f, 0x070), 0xf);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void fills_writable_buffers(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	uint16_t used_idx;

	bring_up(f);
	set_desc(f, 2, BUF, 64, 2 | 1, 5);
	set_desc(f, 5, BUF + 0x1000, 4096, 2, 0);
	offer(f, 0, 2);
	wr(f, 0x050, 0); /* QueueNotify */
	memcpy(&used_idx, gp(f, USED + 2, 2), 2);
	memcpy(&id, gp(f, USED + 4, 4), 4);
	memcpy(&len, gp(f, USED + 8, 4), 4);
	assert_int_equal(used_idx, 1);
	assert_int_equal(id, 2);
	assert_int_equal(len, 64 + 4096);
	assert_false(all_zero(gp(f, BUF, 64), 64));
	assert_false(all_zero(gp(f, BUF + 0x1000, 4096), 4096));
	assert_true(all_zero(gp(f, BUF + 64, 64), 64)); /* nothing beyond the buffer */
	assert_int_equal(fake_vm_interrupts(&f->vm), 1);
	assert_int_equal(rd(f, 0x060), 1);
	assert_int_equal(virtio_events(virtio_of(f->dev)).broken, 0);
}

static void a_bad_chain_stops_it(void **state)
{
	struct fixture *f = *state;
	uint16_t used_idx;

	bring_up(f);
	set_desc(f, 0, 0xfffff000, 64, 2, 0); /* outside guest RAM */
	offer(f, 0, 0);
	wr(f, 0x050, 0);
	assert_true(rd(f, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(virtio_events(virtio_of(f->dev)).broken, 1);
	assert_int_equal(virtio_events(virtio_of(f->dev)).last_error, VIRTQ_BAD_BUFFER);
	memcpy(&used_idx, gp(f, USED + 2, 2), 2);
	assert_int_equal(used_idx, 0);
	/* After the reset it serves again. */
	bring_up(f);
	set_desc(f, 0, BUF, 16, 2, 0);
	offer(f, 0, 0);
	wr(f, 0x050, 0);
	memcpy(&used_idx, gp(f, USED + 2, 2), 2);
	assert_int_equal(used_idx, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(fills_writable_buffers),
	    T(a_bad_chain_stops_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
