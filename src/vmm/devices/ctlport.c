#include <stdatomic.h>
#include <string.h>

#include "guest/hutch-ports.h"
#include "vmm/devices/devices.h"
#include "vmm/vm.h"
#include "common/banned.h"

static void ctlport_access(void *dev, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct vm *vm = dev;
	uint64_t port = HUTCH_PORT_BASE + offset;

	if (!is_write) {
		uint32_t ws = port == HUTCH_PORT_WINSIZE ? atomic_load(&vm->winsize) : 0;
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
		atomic_store(&vm->exit_status, data[0]);
		vm_request_stop(vm, VM_STOP_EXITED, "guest command exited with status %u", data[0]);
		break;
	case HUTCH_PORT_MARKER: {
		uint64_t expected = 0;
		atomic_compare_exchange_strong(&vm->t_marker_ns, &expected, vmm_now_ns());
		break;
	}
	default:
		break;
	}
}

int ctlport_create(struct vm *vm, struct error *err)
{
	return bus_register(&vm->pio, HUTCH_PORT_BASE, HUTCH_PORT_COUNT, ctlport_access, vm,
			    "hutch-control", err);
}
