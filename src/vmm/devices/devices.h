/*
 * The small fixed devices of hutch's machine (vmm/device.h). Each is a
 * struct device on the port bus whose only state is the VM services it
 * calls. The port numbers are the ABI shared with the guest init
 * (src/guest/hutch-ports.h).
 */
#ifndef HUTCH_VMM_DEVICES_DEVICES_H
#define HUTCH_VMM_DEVICES_DEVICES_H

#include "vmm/device.h"

/* Exit port, boot-time marker and console size: src/guest/hutch-ports.h. */
struct device *ctlport_create(const struct vm_services *vm);

/* QEMU's pvpanic ISA device at 0x505 (ACPI _HID QEMU0001): the guest says it panicked. */
#define PVPANIC_PORT 0x505
struct device *pvpanic_create(const struct vm_services *vm);

/* Just enough i8042 for the guest to reset the machine (reboot=k writes 0xfe to 0x64). */
struct device *i8042_create(const struct vm_services *vm);

/* ACPI hardware-reduced sleep control/status register: S5 powers the VM off. */
#define ACPI_SLEEP_PORT 0x3c0
struct device *acpi_pm_create(const struct vm_services *vm);

/* virtio-rng on virtio-mmio: guest entropy from the host's getrandom(). NULL with err. */
struct device *virtio_rng_create(const struct vm_services *vm, struct error *err);

#endif
