#include "vmm/devices/devices.h"
#include "vmm/vm.h"
#include "common/banned.h"

/* QEMU docs/specs/pvpanic.rst: bit 0 "guest panicked", bit 1 "crash kernel loaded". */
#define PVPANIC_PANICKED 0x01
#define PVPANIC_CRASH_LOADED 0x02

static void pvpanic_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct vm *vm = dev;

	if (!is_write) {
		/* Capabilities: hutch only reports panics. */
		data[0] = PVPANIC_PANICKED;
		return;
	}
	if (data[0] & PVPANIC_PANICKED)
		vm_request_stop(vm, VM_STOP_PANIC, "guest kernel panicked");
}

int pvpanic_create(struct vm *vm, struct error *err)
{
	return bus_register(&vm->pio, PVPANIC_PORT, 1, pvpanic_access, vm, "pvpanic", err);
}
