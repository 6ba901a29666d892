#include "vmm/devices/devices.h"
#include "common/banned.h"

/* QEMU docs/specs/pvpanic.rst: bit 0 "guest panicked", bit 1 "crash kernel loaded". */
#define PVPANIC_PANICKED 0x01
#define PVPANIC_CRASH_LOADED 0x02

static void pvpanic_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	const struct vm_services *vm = dev;

	if (!is_write) {
		/* Capabilities: hutch only reports panics. */
		data[0] = PVPANIC_PANICKED;
		return;
	}
	if (data[0] & PVPANIC_PANICKED)
		vm->stop(vm->vm, VM_STOP_PANIC, "guest kernel panicked");
}

struct device *pvpanic_create(const struct vm_services *vm)
{
	struct device *dev = device_new("pvpanic", (void *)vm);

	/* "QEMU0001": Linux's pvpanic-mmio driver matches it, port or MMIO. */
	dev->acpi = (struct device_acpi){.name = "PEVT", .hid = "QEMU0001", .uid = 0};
	device_add_range(dev, DEVICE_PIO, PVPANIC_PORT, 1, pvpanic_access);
	return dev;
}
