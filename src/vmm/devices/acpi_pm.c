#include "vmm/devices/devices.h"
#include "common/banned.h"

/* ACPI 6.4 section 4.8.3.7-8: sleep control register, SLP_TYPx in bits 2-4, SLP_EN bit 5. */
#define SLP_EN 0x20
#define SLP_TYP(v) (((v) >> 2) & 7)
/* The _S5_ package in our DSDT (arch/x86_64/acpi.c) names sleep type 5. */
#define ACPI_S5_TYPE 5

static void acpi_pm_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	const struct vm_services *vm = dev;

	if (!is_write) {
		data[0] = 0; /* sleep status: never woken */
		return;
	}
	if ((data[0] & SLP_EN) && SLP_TYP(data[0]) == ACPI_S5_TYPE)
		vm->stop(vm->vm, VM_STOP_POWEROFF, "guest powered off");
}

struct device *acpi_pm_create(const struct vm_services *vm)
{
	struct device *dev = device_new("acpi-sleep", (void *)vm);

	device_add_range(dev, DEVICE_PIO, ACPI_SLEEP_PORT, 1, acpi_pm_access);
	return dev;
}
