#include "vmm/devices/devices.h"
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
	const struct vm_services *vm = dev;

	if (!is_write)
		i8042_read_zero(data, size);
	else if (data[0] == I8042_CMD_RESET)
		vm->stop(vm->vm, VM_STOP_REBOOT, "guest rebooted");
}

struct device *i8042_create(const struct vm_services *vm)
{
	struct device *dev = device_new("i8042", (void *)vm);

	/* 0x60 and 0x64 but not 0x61 between them, which the in-kernel PIT owns. */
	device_add_range(dev, DEVICE_PIO, I8042_DATA, 1, i8042_data_access);
	device_add_range(dev, DEVICE_PIO, I8042_COMMAND, 1, i8042_command_access);
	return dev;
}
