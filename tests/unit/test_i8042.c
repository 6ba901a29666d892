/*
 * hutch vm's i8042 (vmm/devices/i8042.c), driven through the VM's port bus
 * the way Linux drives it: its keyboard reset (reboot=k) must stop the VM
 * as a reboot at once, and its i8042 driver must find no controller at its
 * first step (i8042_flush()) instead of polling for answers hutch never
 * gives, which cost the boot 1.37 s in the L1 test guest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/devices/devices.h"

#define DATA 0x60
#define STATUS 0x64
#define STR_OBF 0x01
#define STR_IBF 0x02
/* drivers/input/serio/i8042.h */
#define I8042_BUFFER_SIZE 16

struct kbc {
	struct vm_services vm;
	struct bus pio, mmio;
	struct device *dev;
};

static unsigned stops;
static enum vm_stop_reason stop_reason;

static void stop(void *vm, enum vm_stop_reason reason, const char *detail)
{
	stops++;
	stop_reason = reason;
}

static int setup(void **state)
{
	static struct kbc k;
	struct error err = {0};

	memset(&k, 0, sizeof(k));
	k.vm = (struct vm_services){.stop = stop};
	bus_init(&k.pio, "pio", false);
	bus_init(&k.mmio, "mmio", false);
	k.dev = i8042_create(&k.vm);
	if (device_attach(k.dev, &k.pio, &k.mmio, &err) < 0) {
		print_error("%s\n", err.msg);
		return -1;
	}
	stops = 0;
	*state = &k;
	return 0;
}

static int teardown(void **state)
{
	struct kbc *k = *state;

	device_free(k->dev);
	return 0;
}

static uint8_t inb(struct kbc *k, uint16_t port)
{
	uint8_t v = 0;

	assert_true(bus_access(&k->pio, port, &v, 1, false));
	return v;
}

static void outb(struct kbc *k, uint16_t port, uint8_t v)
{
	assert_true(bus_access(&k->pio, port, &v, 1, true));
}

static void the_reset_command_stops_the_vm_as_a_reboot(void **state)
{
	struct kbc *k = *state;

	/* arch/x86/kernel/reboot.c kb_wait(): the input buffer must be empty at once. */
	assert_int_equal(inb(k, STATUS) & STR_IBF, 0);
	outb(k, STATUS, 0xfe);
	assert_int_equal(stops, 1);
	assert_int_equal(stop_reason, VM_STOP_REBOOT);
}

static void other_writes_do_not_stop_the_vm(void **state)
{
	struct kbc *k = *state;

	/* What i8042_platform_init() sends on x86: A20 on (0xd1, 0xdf) and a null command. */
	outb(k, STATUS, 0xd1);
	outb(k, DATA, 0xdf);
	outb(k, STATUS, 0xff);
	outb(k, DATA, 0xf2);
	assert_int_equal(stops, 0);
}

static void linux_finds_no_controller_in_its_flush(void **state)
{
	struct kbc *k = *state;
	unsigned reads = 0, count = 0;
	int ret = 0;

	/* drivers/input/serio/i8042.c i8042_flush(), as in Linux 6.1. */
	while (inb(k, STATUS) & STR_OBF) {
		reads++;
		if (count++ < I8042_BUFFER_SIZE) {
			(void)inb(k, DATA);
			reads++;
		} else {
			ret = -5; /* -EIO: "i8042: No controller found" */
			break;
		}
	}
	assert_int_equal(ret, -5);
	assert_true(reads <= 2 * I8042_BUFFER_SIZE + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(the_reset_command_stops_the_vm_as_a_reboot, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(other_writes_do_not_stop_the_vm, setup, teardown),
	    cmocka_unit_test_setup_teardown(linux_finds_no_controller_in_its_flush, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
