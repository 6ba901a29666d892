#include "vmm/devices/devices.h"
#include "common/banned.h"

#define I8042_DATA 0x60
#define I8042_COMMAND 0x64
#define I8042_CMD_RESET 0xfe
/*
 * The status register hutch's i8042 shows: output buffer full (OBF) and
 * input buffer empty (IBF clear). IBF clear lets the kernel's reboot
 * (kb_wait() in arch/x86/kernel/reboot.c, reboot=k) write the reset
 * command at once. OBF set forever makes Linux's i8042 driver give up at
 * its first step: i8042_flush() reads the data port I8042_BUFFER_SIZE (16)
 * times, sees OBF still set and the probe ends with "i8042: No controller
 * found", some 33 port accesses. With status 0 (OBF clear) the driver went
 * on to read the controller's configuration byte and waited 10000 polls of
 * the status port for an answer hutch never gives: 1.37 s of the boot in
 * the L1 test guest, one VM exit per poll.
 */
#define I8042_STATUS 0x01
/* What the data port reads: no key, no answer. */
#define I8042_NO_DATA 0xff

static void fill(uint8_t *data, unsigned size, uint8_t value)
{
	for (unsigned i = 0; i < size; i++)
		data[i] = value;
}

static void i8042_data_access(void *dev, uint64_t offset, uint8_t *data, unsigned size,
			      bool is_write)
{
	if (!is_write)
		fill(data, size, I8042_NO_DATA);
}

static void i8042_command_access(void *dev, uint64_t offset, uint8_t *data, unsigned size,
				 bool is_write)
{
	const struct vm_services *vm = dev;

	if (!is_write)
		fill(data, size, I8042_STATUS);
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
