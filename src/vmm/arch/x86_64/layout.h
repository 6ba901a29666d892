/*
 * Guest-physical layout of hutch's x86-64 machine. Everything the VMM
 * writes for boot lives below 1 MiB; the kernel is loaded at 1 MiB.
 */
#ifndef HUTCH_VMM_ARCH_X86_64_LAYOUT_H
#define HUTCH_VMM_ARCH_X86_64_LAYOUT_H

#define X86_GDT_ADDR 0x500
#define X86_BOOT_PARAMS_ADDR 0x7000
#define X86_BOOT_STACK_ADDR 0x8ff0
#define X86_PML4_ADDR 0x9000
#define X86_PDPT_ADDR 0xa000
#define X86_PD_ADDR 0xb000 /* four pages: 2 MiB pages identity-map 4 GiB */
#define X86_PD_PAGES 4
#define X86_CMDLINE_ADDR 0x20000
#define X86_CMDLINE_MAX 0x10000
/* The EBDA and BIOS area, reserved in the e820 map; the ACPI tables live in it. */
#define X86_EBDA_START 0x9fc00
#define X86_ACPI_ADDR 0xe0000 /* where Linux also scans for the RSDP */
#define X86_ACPI_MAX 0x20000
#define X86_HIGH_MEM 0x100000
/* Linux's LOAD_PHYSICAL_ADDR: a relocatable kernel decompresses at or above it. */
#define X86_KERNEL_MIN_RUN_ADDR 0x1000000
/* No RAM between 3 GiB and 4 GiB: LAPIC, IOAPIC and KVM's TSS live there. */
#define X86_MMIO_GAP_START 0xc0000000ULL
#define X86_MMIO_GAP_END 0x100000000ULL
/*
 * Devices' MMIO windows (virtio-mmio): the bottom 256 MiB of the gap, far
 * below the IOAPIC, the LAPIC and KVM's TSS at its top.
 */
#define X86_DEVICE_MMIO_BASE 0xd0000000ULL
#define X86_DEVICE_MMIO_SIZE 0x10000000ULL
/*
 * Devices' interrupt lines: IOAPIC pins 16-23, above the 16 ISA lines the
 * fixed devices and the PIT use; KVM's IOAPIC has 24 pins.
 */
#define X86_DEVICE_IRQ_FIRST 16
#define X86_DEVICE_IRQ_COUNT 8
#define X86_TSS_ADDR 0xfffbd000ULL
#define X86_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define X86_IOAPIC_ADDR 0xfec00000ULL
#define X86_LAPIC_ADDR 0xfee00000ULL

#endif
