#include <stdio.h>
#include <string.h>

#include "guest/hutch-ports.h"
#include "vmm/devices/devices.h"
#include "common/banned.h"

static void ctlport_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	const struct vm_services *vm = dev;
	uint64_t port = HUTCH_PORT_BASE + offset;

	if (!is_write) {
		uint32_t ws = port == HUTCH_PORT_WINSIZE ? vm->console_size(vm->vm) : 0;
		for (unsigned i = 0; i < size; i++)
			data[i] = i < 4 ? (uint8_t)(ws >> (8 * i)) : 0;
		return;
	}
	switch (port) {
	case HUTCH_PORT_EXIT:
		/*
		 * Only the low byte: an exit status is 0-255 whatever the guest
		 * writes. The run is over: init has drained the consoles and has
		 * nothing left to do but power off, so stop now; the kernel's
		 * shutdown messages never reach the user's output.
		 */
		vm->guest_exited(vm->vm, data[0]);
		break;
	case HUTCH_PORT_MARKER:
		vm->guest_marker(vm->vm);
		break;
	default:
		break;
	}
}

struct device *ctlport_create(const struct vm_services *vm)
{
	struct device *dev = device_new("hutch-control", (void *)vm);

	device_add_range(dev, DEVICE_PIO, HUTCH_PORT_BASE, HUTCH_PORT_COUNT, ctlport_access);
	return dev;
}
