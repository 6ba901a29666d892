/*
 * The VM's I/O bus (vmm/bus.h): devices claim ranges that may not overlap,
 * an access reaches a device only when it lies wholly inside its range,
 * and every other access is refused: reads see all-ones, writes are
 * dropped, and the refusal is counted. And the device objects on it
 * (vmm/device.h): a device's ranges go on the bus it names, and a VM's
 * devices are released last first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/vm.h"

/* A device that records its last access and answers reads with 0xa0 + byte index. */
struct probe {
	unsigned calls;
	uint64_t offset;
	unsigned size;
	bool is_write;
	uint8_t written[8];
};

static void probe_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct probe *p = dev;

	p->calls++;
	p->offset = offset;
	p->size = size;
	p->is_write = is_write;
	for (unsigned i = 0; i < size && i < 8; i++) {
		if (is_write)
			p->written[i] = data[i];
		else
			data[i] = (uint8_t)(0xa0 + i);
	}
}

static void ranges_side_by_side_are_accepted(void **state)
{
	struct bus bus;
	struct probe a = {0}, b = {0};
	struct error err = {0};

	bus_init(&bus, "pio", false);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, probe_access, &a, "a", &err), 0);
	/* Ends where a begins, and begins where a ends. */
	assert_int_equal(bus_register(&bus, 0x3f0, 8, probe_access, &b, "below", &err), 0);
	assert_int_equal(bus_register(&bus, 0x400, 1, probe_access, &b, "above", &err), 0);
	assert_int_equal(bus.nr_ranges, 3);
}

static void overlapping_ranges_are_refused(void **state)
{
	static const struct {
		uint64_t base, len;
	} overlaps[] = {
	    {0x3f8, 8},	 /* the same range */
	    {0x3f0, 9},	 /* its last byte is the first of 0x3f8 */
	    {0x3ff, 4},	 /* its first byte is the last of 0x3f8 */
	    {0x3fa, 2},	 /* inside */
	    {0x300, 0x200}, /* around */
	};
	struct bus bus;
	struct probe a = {0};
	struct error err = {0};

	bus_init(&bus, "pio", false);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, probe_access, &a, "ttyS0", &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(overlaps); i++) {
		memset(&err, 0, sizeof(err));
		if (bus_register(&bus, overlaps[i].base, overlaps[i].len, probe_access, &a, "late",
				 &err) != -1)
			fail_msg("[0x%llx, +0x%llx) accepted over ttyS0",
				 (unsigned long long)overlaps[i].base,
				 (unsigned long long)overlaps[i].len);
		assert_string_equal(err.msg, "device 'late' overlaps 'ttyS0' on the pio bus");
	}
	/* Nothing refused was added: accesses still reach ttyS0 alone. */
	assert_int_equal(bus.nr_ranges, 1);
}

static void empty_wrapping_and_surplus_ranges_are_refused(void **state)
{
	struct bus bus;
	struct probe a = {0};
	struct error err = {0};

	bus_init(&bus, "mmio", false);
	assert_int_equal(bus_register(&bus, 0x1000, 0, probe_access, &a, "empty", &err), -1);
	assert_string_equal(err.msg, "device 'empty' has an empty or wrapping range");
	assert_int_equal(bus_register(&bus, UINT64_MAX - 3, 8, probe_access, &a, "wrap", &err), -1);
	assert_string_equal(err.msg, "device 'wrap' has an empty or wrapping range");
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&bus, 0x1000 * (i + 1), 0x10, probe_access, &a, "dev",
					      &err),
				 0);
	assert_int_equal(bus_register(&bus, 0x100000, 0x10, probe_access, &a, "one more", &err),
			 -1);
	assert_string_equal(err.msg, "too many mmio devices (at most 16)");
	assert_int_equal(bus.nr_ranges, BUS_MAX_RANGES);
}

static void accesses_at_the_edges_of_a_range_reach_the_device(void **state)
{
	struct bus bus;
	struct probe a = {0};
	struct error err = {0};
	uint8_t data[8];

	bus_init(&bus, "pio", false);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, probe_access, &a, "ttyS0", &err), 0);

	/* The first byte: offset 0. */
	data[0] = 0x41;
	assert_true(bus_access(&bus, 0x3f8, data, 1, true));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.offset, 0);
	assert_true(a.is_write);
	assert_int_equal(a.written[0], 0x41);

	/* The last byte: offset len - 1. */
	memset(data, 0, sizeof(data));
	assert_true(bus_access(&bus, 0x3ff, data, 1, false));
	assert_int_equal(a.calls, 2);
	assert_int_equal(a.offset, 7);
	assert_false(a.is_write);
	assert_int_equal(data[0], 0xa0);

	/* A wide access that ends on the last byte. */
	assert_true(bus_access(&bus, 0x3fc, data, 4, false));
	assert_int_equal(a.offset, 4);
	assert_int_equal(a.size, 4);
	assert_memory_equal(data, ((uint8_t[]){0xa0, 0xa1, 0xa2, 0xa3}), 4);
	assert_int_equal(atomic_load(&bus.refused), 0);
}

static void accesses_outside_every_range_are_refused(void **state)
{
	static const struct {
		uint64_t addr;
		unsigned size;
	} outside[] = {
	    {0x3f7, 1},		/* the byte below */
	    {0x400, 1},		/* the byte above */
	    {0x3f7, 2},		/* starts below, ends inside */
	    {0x3fe, 4},		/* starts inside, ends above */
	    {0x3ff, 8},		/* the last byte and beyond */
	    {UINT64_MAX - 1, 8}, /* would wrap the address space */
	    {0, 1},
	};
	struct bus bus;
	struct probe a = {0};
	struct error err = {0};
	uint8_t data[8];

	bus_init(&bus, "pio", false);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, probe_access, &a, "ttyS0", &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		memset(data, 0x11, sizeof(data));
		if (bus_access(&bus, outside[i].addr, data, outside[i].size, false))
			fail_msg("read of %u at 0x%llx reached the device", outside[i].size,
				 (unsigned long long)outside[i].addr);
		/* A refused read sees all-ones, as an unclaimed ISA port does. */
		for (unsigned j = 0; j < outside[i].size; j++)
			assert_int_equal(data[j], 0xff);
		/* ... and not a byte more than it asked for. */
		for (unsigned j = outside[i].size; j < sizeof(data); j++)
			assert_int_equal(data[j], 0x11);

		memset(data, 0x22, sizeof(data));
		assert_false(bus_access(&bus, outside[i].addr, data, outside[i].size, true));
		/* A refused write is dropped and its data left as it was. */
		assert_int_equal(data[0], 0x22);
	}
	assert_int_equal(a.calls, 0);
	assert_int_equal(atomic_load(&bus.refused), 2 * ARRAY_SIZE(outside));
}

static void an_empty_bus_refuses_everything(void **state)
{
	struct bus bus;
	uint8_t data[4] = {0};

	bus_init(&bus, "mmio", false);
	assert_false(bus_access(&bus, 0xfee00000, data, 4, false));
	assert_memory_equal(data, ((uint8_t[]){0xff, 0xff, 0xff, 0xff}), 4);
	assert_int_equal(atomic_load(&bus.refused), 1);
}

static void each_access_reaches_the_device_whose_range_holds_it(void **state)
{
	struct bus bus;
	struct probe a = {0}, b = {0};
	struct error err = {0};
	uint8_t data[1] = {0x5a};

	bus_init(&bus, "pio", false);
	assert_int_equal(bus_register(&bus, 0x2f8, 8, probe_access, &a, "ttyS1", &err), 0);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, probe_access, &b, "ttyS0", &err), 0);
	assert_true(bus_access(&bus, 0x3f9, data, 1, true));
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.offset, 1);
	assert_true(bus_access(&bus, 0x2ff, data, 1, true));
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.offset, 7);
	assert_int_equal(b.calls, 1);
}

/* The order in which devices were released. */
static char released[8];
static size_t nreleased;

static void note_release(struct device *dev)
{
	released[nreleased++] = dev->name[0];
}

static void a_device_lands_on_its_buses_and_is_released_last_first(void **state)
{
	struct probe port = {0}, mem = {0};
	struct device *a = device_new("a", &port), *b = device_new("b", &mem);
	struct vm vm;
	struct error err;
	uint8_t v = 1;

	memset(&vm, 0, sizeof(vm));
	bus_init(&vm.pio, "pio", false);
	bus_init(&vm.mmio, "mmio", false);
	a->release = b->release = note_release;
	device_add_range(a, DEVICE_PIO, 0x70, 2, probe_access);
	device_add_range(b, DEVICE_MMIO, 0xd0000000, 0x1000, probe_access);
	assert_int_equal(vm_add_device(&vm, a, &err), 0);
	assert_int_equal(vm_add_device(&vm, b, &err), 0);
	assert_true(bus_access(&vm.pio, 0x71, &v, 1, true));
	assert_true(bus_access(&vm.mmio, 0xd0000ffc, &v, 1, false));
	assert_false(bus_access(&vm.mmio, 0x70, &v, 1, false)); /* a port is not an address */
	assert_int_equal(port.calls, 1);
	assert_int_equal(mem.calls, 1);
	/* One that overlaps a claimed range is refused, by name, and is released with the rest. */
	struct device *c = device_new("c", NULL);
	c->release = note_release;
	device_add_range(c, DEVICE_PIO, 0x71, 1, probe_access);
	assert_int_equal(vm_add_device(&vm, c, &err), -1);
	assert_non_null(strstr(err.msg, "cannot add device 'c'"));
	vm_release_devices(&vm);
	assert_int_equal(nreleased, 3);
	assert_memory_equal(released, "cba", 3);
	assert_int_equal(vm.nr_devices, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ranges_side_by_side_are_accepted),
	    cmocka_unit_test(overlapping_ranges_are_refused),
	    cmocka_unit_test(empty_wrapping_and_surplus_ranges_are_refused),
	    cmocka_unit_test(accesses_at_the_edges_of_a_range_reach_the_device),
	    cmocka_unit_test(accesses_outside_every_range_are_refused),
	    cmocka_unit_test(an_empty_bus_refuses_everything),
	    cmocka_unit_test(each_access_reaches_the_device_whose_range_holds_it),
	    cmocka_unit_test(a_device_lands_on_its_buses_and_is_released_last_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
