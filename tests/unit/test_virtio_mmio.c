/*
 * The virtio-mmio transport (vmm/virtio/mmio.c) without KVM: its registers
 * driven as Linux's virtio_mmio driver (or a hostile one) drives them,
 * against a fake device type and fake VM services that record the
 * ioeventfds, the irqfd and the event-loop sources the transport asks for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/virtio/virtio.h"
#include "fake_vm.h"

/* --- a fake device type --- */

struct fake_dev {
	unsigned activated, notified[2], resets, released;
	int refuse_activate;
	struct virtio_dev *vdev;
};

static void fake_config_read(void *priv, uint32_t off, void *buf, uint32_t len)
{
	static const uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	memcpy(buf, config + off, len);
}

static int fake_activate(void *priv, struct virtio_dev *vdev)
{
	struct fake_dev *d = priv;

	d->activated++;
	d->vdev = vdev;
	return d->refuse_activate;
}

static void fake_notify(void *priv, struct virtio_dev *vdev, unsigned q)
{
	struct fake_dev *d = priv;

	d->notified[q]++;
}

static void fake_reset(void *priv)
{
	((struct fake_dev *)priv)->resets++;
}

static void fake_release(void *priv)
{
	((struct fake_dev *)priv)->released++;
}

static const struct virtio_device_ops fake_ops = {
    .device_id = VIRTIO_ID_RNG,
    .features = 1, /* a device feature, bit 0 */
    .nr_queues = 2,
    .queue_max = 8,
    .config_len = 8,
    .config_read = fake_config_read,
    .activate = fake_activate,
    .notify = fake_notify,
    .reset = fake_reset,
    .release = fake_release,
};

struct fixture {
	struct fake_vm vm;
	struct vm_services svc;
	struct fake_dev d;
	struct device *dev;
	struct virtio_dev *vdev;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct error err = {0};

	fake_vm_init(&f->vm, &f->svc);
	f->dev = virtio_mmio_create(&f->svc, "virtio-test", &fake_ops, &f->d, &err);
	assert_non_null(f->dev);
	f->vdev = virtio_of(f->dev);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	device_free(f->dev);
	assert_int_equal(f->d.released, 1);
	assert_int_equal(f->vm.ioeventfds, 0);
	assert_int_equal(f->vm.irq_fd, -1);
	fake_vm_release(&f->vm);
	test_free(f);
	return 0;
}

static void reg_access(struct fixture *f, uint64_t off, void *data, unsigned size, bool is_write)
{
	f->dev->ranges[0].access(f->dev->priv, off, data, size, is_write);
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v;

	reg_access(f, off, &v, 4, false);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	reg_access(f, off, &v, 4, true);
}

/* Interrupts sent on the irqfd since the last look. */
static uint64_t interrupts(struct fixture *f)
{
	return fake_vm_interrupts(&f->vm);
}

/* What Linux does up to FEATURES_OK, accepting features. */
static void negotiate(struct fixture *f, uint64_t features)
{
	wr(f, 0x070, 0);
	wr(f, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(f, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, 0x024, 1);
	wr(f, 0x020, (uint32_t)(features >> 32));
	wr(f, 0x024, 0);
	wr(f, 0x020, (uint32_t)features);
	wr(f, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void setup_queue(struct fixture *f, unsigned q, uint32_t size, uint64_t desc)
{
	wr(f, 0x030, q);
	assert_int_equal(rd(f, 0x044), 0);
	wr(f, 0x038, size);
	wr(f, 0x080, (uint32_t)desc);
	wr(f, 0x084, (uint32_t)(desc >> 32));
	wr(f, 0x090, (uint32_t)desc + 0x1000);
	wr(f, 0x094, 0);
	wr(f, 0x0a0, (uint32_t)desc + 0x2000);
	wr(f, 0x0a4, 0);
	wr(f, 0x044, 1);
}

#define V1 (1ULL << VIRTIO_F_VERSION_1)
#define ALL_OK                                                                                     \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

/* Negotiated, both queues set up, DRIVER_OK. */
static void bring_up(struct fixture *f)
{
	negotiate(f, V1 | 1);
	setup_queue(f, 0, 8, 0x10000);
	setup_queue(f, 1, 4, 0x20000);
	wr(f, 0x070, ALL_OK);
	assert_int_equal(rd(f, 0x070), ALL_OK);
}

static void identifies_itself(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, 0x000), 0x74726976);
	assert_int_equal(rd(f, 0x004), 2);
	assert_int_equal(rd(f, 0x008), VIRTIO_ID_RNG);
	assert_int_not_equal(rd(f, 0x00c), 0);
	wr(f, 0x030, 0);
	assert_int_equal(rd(f, 0x034), 8);
	wr(f, 0x030, 2); /* no third queue */
	assert_int_equal(rd(f, 0x034), 0);
	assert_int_equal(rd(f, 0x0b0), 0xffffffff); /* no shared memory */
	/* Where the DSDT says it is, and its notify address. */
	assert_string_equal(f->dev->acpi.hid, "LNRO0005");
	assert_string_equal(f->dev->acpi.name, "VR16");
	assert_int_equal(f->dev->irq, LINE);
	assert_int_equal(f->dev->ranges[0].base, BASE);
	assert_int_equal(f->dev->ranges[0].len, 0x200);
	assert_int_equal(f->vm.notify_addr, BASE + 0x50);
	assert_int_equal(f->vm.ioeventfds, 2);
	assert_int_equal(f->vm.nr_watched, 2);
}

static void offers_version_1_and_its_features(void **state)
{
	struct fixture *f = *state;

	wr(f, 0x014, 0);
	assert_int_equal(rd(f, 0x010), 1 | 1U << VIRTIO_F_INDIRECT_DESC | 1U << VIRTIO_F_EVENT_IDX);
	wr(f, 0x014, 1);
	assert_int_equal(rd(f, 0x010), 1); /* VERSION_1 is bit 32 */
	wr(f, 0x014, 2);
	assert_int_equal(rd(f, 0x010), 0);
}

static void features_ok_needs_version_1(void **state)
{
	struct fixture *f = *state;

	negotiate(f, 1); /* a legacy driver */
	assert_false(rd(f, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(virtio_events(f->vdev).bad_features, 1);
	negotiate(f, V1 | 1 << 5); /* bit 5 not offered */
	assert_false(rd(f, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(f, V1 | 1ULL << 40); /* nor bit 40 */
	assert_false(rd(f, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(virtio_events(f->vdev).bad_features, 3);
	negotiate(f, V1 | 1);
	assert_true(rd(f, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(virtio_features(f->vdev), V1 | 1);
	/* Final now. */
	wr(f, 0x024, 0);
	wr(f, 0x020, 0);
	assert_int_equal(virtio_features(f->vdev), V1 | 1);
	assert_int_equal(virtio_events(f->vdev).frozen_writes, 1);
}

static void status_in_order_only(void **state)
{
	struct fixture *f = *state;

	/* DRIVER_OK before FEATURES_OK, DRIVER before ACKNOWLEDGE: refused. */
	wr(f, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_false(rd(f, 0x070) & VIRTIO_STATUS_DRIVER_OK);
	wr(f, 0x070, 0);
	wr(f, 0x070, VIRTIO_STATUS_DRIVER);
	assert_int_equal(rd(f, 0x070), 0);
	assert_int_equal(f->d.activated, 0);
	bring_up(f);
	assert_int_equal(f->d.activated, 1);
	/* Clearing bits without a reset: ignored. */
	wr(f, 0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(rd(f, 0x070), ALL_OK);
	assert_int_equal(virtio_events(f->vdev).bad_status, 3);
	/* The reset. */
	wr(f, 0x070, 0);
	assert_int_equal(rd(f, 0x070), 0);
	assert_true(f->d.resets >= 1);
	assert_false(virtio_queue(f->vdev, 0)->started);
	assert_int_equal(virtio_features(f->vdev), 0);
}

static void queues_start_at_driver_ok_and_are_frozen(void **state)
{
	struct fixture *f = *state;
	struct virtq *q0 = virtio_queue(f->vdev, 0), *q1 = virtio_queue(f->vdev, 1);

	bring_up(f);
	assert_true(q0->started && q1->started);
	assert_int_equal(q0->size, 8);
	assert_int_equal(q1->desc_gpa, 0x20000);
	assert_int_equal(q1->used_gpa, 0x22000);
	assert_false(q0->indirect); /* not negotiated */
	wr(f, 0x030, 0);
	assert_int_equal(rd(f, 0x044), 1);
	/* Changing a running queue: ignored, counted. */
	wr(f, 0x038, 2);
	wr(f, 0x080, 0x30000);
	wr(f, 0x044, 0);
	assert_int_equal(q0->size, 8);
	assert_int_equal(q0->desc_gpa, 0x10000);
	assert_int_equal(rd(f, 0x044), 1);
	assert_int_equal(virtio_events(f->vdev).frozen_writes, 3);
	assert_null(virtio_queue(f->vdev, 2));
}

static void a_bad_queue_needs_reset(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint32_t size;
		uint64_t desc;
	} bad[] = {
	    {16, 0x10000},	     /* over QueueNumMax */
	    {3, 0x10000},	     /* not a power of two */
	    {0, 0x10000},	     /* zero */
	    {8, 2 * MIB},	     /* outside RAM */
	    {8, 0x10008},	     /* misaligned */
	    {8, 0xfffffffffffff000}, /* wraps */
	    {0x10008, 0x10000},	     /* more than 16 bits */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		negotiate(f, V1);
		setup_queue(f, 0, bad[i].size, bad[i].desc);
		wr(f, 0x070, ALL_OK);
		assert_true(rd(f, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
		/* A config-change interrupt says so. */
		assert_int_equal(rd(f, 0x060) & 2, 2);
		assert_int_equal(interrupts(f), 1);
		assert_int_equal(virtio_events(f->vdev).bad_queue, i + 1);
		assert_int_equal(f->d.activated, 0);
		/* Not served. */
		wr(f, 0x050, 0);
		assert_int_equal(f->d.notified[0], 0);
	}
	/* The reset makes it usable again. */
	bring_up(f);
	assert_false(rd(f, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(rd(f, 0x060), 0);
}

static void refused_activate_needs_reset(void **state)
{
	struct fixture *f = *state;

	f->d.refuse_activate = -1;
	negotiate(f, V1);
	setup_queue(f, 0, 8, 0x10000);
	wr(f, 0x070, ALL_OK);
	assert_true(rd(f, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(virtio_events(f->vdev).broken, 1);
}

static void notifications(void **state)
{
	struct fixture *f = *state;
	uint64_t one = 1;

	/* Before DRIVER_OK nothing is served. */
	wr(f, 0x050, 0);
	assert_int_equal(f->d.notified[0], 0);
	bring_up(f);
	/* Through the ioeventfd of queue 1, as KVM would signal it. */
	assert_int_equal(write(f->vm.watched[1].fd, &one, 8), 8);
	f->vm.watched[1].fn(f->vm.watched[1].arg, f->vm.watched[1].fd, 1);
	assert_int_equal(f->d.notified[1], 1);
	/* A spurious wakeup: the eventfd is empty. */
	f->vm.watched[1].fn(f->vm.watched[1].arg, f->vm.watched[1].fd, 1);
	assert_int_equal(f->d.notified[1], 1);
	/* Through the register, when the write reaches the VMM. */
	wr(f, 0x050, 0);
	assert_int_equal(f->d.notified[0], 1);
	wr(f, 0x050, 7); /* no such queue */
	assert_int_equal(virtio_events(f->vdev).bad_access, 1);
}

static void interrupts_and_ack(void **state)
{
	struct fixture *f = *state;
	struct virtq *q;
	uint8_t *ring;

	bring_up(f);
	q = virtio_queue(f->vdev, 0);
	/* Nothing pushed: no interrupt. */
	virtio_interrupt(f->vdev, 0);
	assert_int_equal(interrupts(f), 0);
	/* One used entry (what virtq_push does), then the interrupt. */
	ring = guest_ptr(&f->vm.mem, 0x12000, 16);
	ring[2] = 1;
	q->used_idx = 1;
	virtio_interrupt(f->vdev, 0);
	assert_int_equal(interrupts(f), 1);
	assert_int_equal(rd(f, 0x060), 1);
	wr(f, 0x064, 1);
	assert_int_equal(rd(f, 0x060), 0);
}

static void a_broken_queue_stops_the_device(void **state)
{
	struct fixture *f = *state;

	bring_up(f);
	virtio_broken(f->vdev, 1, VIRTQ_BAD_NEXT);
	assert_int_equal(virtio_status(f->vdev), ALL_OK | VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(rd(f, 0x060), 2);
	assert_int_equal(interrupts(f), 1);
	assert_int_equal(virtio_events(f->vdev).broken, 1);
	assert_int_equal(virtio_events(f->vdev).last_error, VIRTQ_BAD_NEXT);
	assert_false(virtio_queue(f->vdev, 0)->started);
	wr(f, 0x050, 0);
	assert_int_equal(f->d.notified[0], 0);
	/* The driver cannot clear NEEDS_RESET by writing status. */
	wr(f, 0x070, ALL_OK);
	assert_true(rd(f, 0x070) & VIRTIO_STATUS_NEEDS_RESET);
	/* Broken again: counted, one interrupt only for the first. */
	virtio_broken(f->vdev, 0, VIRTQ_BAD_HEAD);
	assert_int_equal(virtio_events(f->vdev).broken, 2);
	assert_int_equal(interrupts(f), 0);
	bring_up(f);
	wr(f, 0x050, 0);
	assert_int_equal(f->d.notified[0], 1);
	/* Counts survive resets. */
	assert_int_equal(virtio_events(f->vdev).broken, 2);
}

static void bad_accesses(void **state)
{
	struct fixture *f = *state;
	uint8_t b[8];
	uint16_t h;

	/* The registers are 32-bit only. */
	h = 0x1234;
	reg_access(f, 0x000, &h, 2, false);
	assert_int_equal(h, 0);
	reg_access(f, 0x072, &h, 2, true);
	reg_access(f, 0x002, b, 4, false); /* misaligned */
	assert_int_equal(virtio_events(f->vdev).bad_access, 3);
	/* Write-only and read-only registers, and holes. */
	rd(f, 0x050);
	wr(f, 0x000, 1);
	rd(f, 0x0f0);
	assert_int_equal(virtio_events(f->vdev).bad_access, 6);
	/* Config space: bytes, words, inside only. */
	reg_access(f, 0x100, b, 1, false);
	assert_int_equal(b[0], 1);
	reg_access(f, 0x104, b, 4, false);
	assert_memory_equal(b, "\x05\x06\x07\x08", 4);
	memset(b, 0xaa, sizeof(b));
	reg_access(f, 0x106, b, 4, false); /* runs past the end */
	assert_memory_equal(b, "\0\0\0\0", 4);
	reg_access(f, 0x1f0, b, 8, false);
	reg_access(f, 0x100, b, 4, true); /* read-only: ignored */
	assert_int_equal(virtio_events(f->vdev).bad_access, 8);
	assert_int_equal(rd(f, 0x0fc), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(identifies_itself),
	    T(offers_version_1_and_its_features),
	    T(features_ok_needs_version_1),
	    T(status_in_order_only),
	    T(queues_start_at_driver_ok_and_are_frozen),
	    T(a_bad_queue_needs_reset),
	    T(refused_activate_needs_reset),
	    T(notifications),
	    T(interrupts_and_ack),
	    T(a_broken_queue_stops_the_device),
	    T(bad_accesses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
