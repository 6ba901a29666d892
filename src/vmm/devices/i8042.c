#include "vmm/devices/devices.h"
#include "vmm/vm.h"
#include "common/banned.h"

#define I8042_DATA 0x60
#define I8042_COMMAND 0x64
#define I8042_CMD_RESET 0xfe

static void i8042_read_zero(uint8_t *data, unsigned size)
{
	/* Status 0: no data, input buffer empty, so kb_wait() in the guest returns. */
	for (unsigned i = 0; i < size; i++)
		data[i] = 0;
}

static void i8042_data_access(void *dev, uint64_t offset, uint8_t *data, unsigned size,
			      bool is_write)
{
	if (!is_write)
		i8042_read_zero(data, size);
}

static void i8042_command_access(void *dev, uint64_t offset, uint8_t *data, unsigned size,
				 bool is_write)
{
	struct vm *vm = dev;

	if (!is_write)
		i8042_read_zero(data, size);
	else if (data[0] == I8042_CMD_RESET)
		vm_request_stop(vm, VM_STOP_REBOOT, "guest rebooted");
}

int i8042_create(struct vm *vm, struct error *err)
{
	/* 0x60 and 0x64 but not 0x61 between them, which the in-kernel PIT owns. */
	if (bus_register(&vm->pio, I8042_DATA, 1, i8042_data_access, vm, "i8042", err) < 0)
		return -1;
	return bus_register(&vm->pio, I8042_COMMAND, 1, i8042_command_access, vm, "i8042", err);
}
