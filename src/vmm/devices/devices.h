/*
 * The small fixed devices of hutch's machine. Each registers itself on the
 * VM's port bus and keeps its state in struct vm. The port numbers are the
 * ABI shared with the guest init (src/guest/hutch-ports.h).
 */
#ifndef HUTCH_VMM_DEVICES_DEVICES_H
#define HUTCH_VMM_DEVICES_DEVICES_H

#include "common/error.h"

struct vm;

/* Exit port, boot-time marker and console size: src/guest/hutch-ports.h. */
int ctlport_create(struct vm *vm, struct error *err);

/* QEMU's pvpanic ISA device at 0x505 (ACPI _HID QEMU0001): the guest says it panicked. */
#define PVPANIC_PORT 0x505
int pvpanic_create(struct vm *vm, struct error *err);

/* Just enough i8042 for the guest to reset the machine (reboot=k writes 0xfe to 0x64). */
int i8042_create(struct vm *vm, struct error *err);

/* ACPI hardware-reduced sleep control/status register: S5 powers the VM off. */
#define ACPI_SLEEP_PORT 0x3c0
int acpi_pm_create(struct vm *vm, struct error *err);

#endif
