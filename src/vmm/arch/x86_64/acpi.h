/*
 * ACPI tables for hutch's machine (ACPI 6.4): RSDP, XSDT, a hardware-reduced
 * FADT, a MADT with one LAPIC per vCPU plus the IOAPIC, and a DSDT declaring
 * the S5 sleep state and every device that carries an ACPI description
 * (struct device_acpi: the UARTs, pvpanic, later virtio-mmio as LNRO0005),
 * its _CRS made from the device's ranges and line. Linux needs the MADT for SMP:
 * the Debian cloud kernel has no MP-table parser.
 */
#ifndef HUTCH_VMM_ARCH_X86_64_ACPI_H
#define HUTCH_VMM_ARCH_X86_64_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/device.h"

/* Most vCPUs the MADT can describe with xAPIC entries (8-bit ids, 0xff is broadcast). */
#define ACPI_MAX_CPUS 254
/* Most devices the DSDT describes. */
#define DSDT_MAX_DEVICES 16

/*
 * Build the tables into buf (cap bytes), as they will sit at guest-physical
 * base. Returns bytes used, with the RSDP first (at base), or -1 with err.
 */
long acpi_build(uint8_t *buf, size_t cap, uint64_t base, unsigned nr_cpus,
		const struct device *const *devices, unsigned nr_devices, struct error *err);

/* The ACPI checksum: the byte that makes len bytes sum to zero. */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif
