/*
 * x86-64 Linux boot: bzImage and ELF checks, the e820 map and the zero page
 * (Documentation/arch/x86/boot.rst, 64-bit boot protocol).
 */
#ifndef HUTCH_VMM_ARCH_X86_64_BOOT_H
#define HUTCH_VMM_ARCH_X86_64_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/arch/arch.h"
#include "vmm/arch/x86_64/bootparam.h"
#include "vmm/memory.h"

/* Oldest boot protocol hutch boots: 2.12 brought XLF_KERNEL_64 (64-bit entry). */
#define X86_MIN_BOOT_PROTOCOL 0x020c

/* Where a bzImage's 64-bit entry point is, from the start of its protected-mode part. */
#define X86_BZIMAGE_ENTRY_64 0x200

/*
 * The boot protocol hutch's zero page claims for an ELF kernel, which has no
 * setup header of its own: 2.15, whose fields (ext_*, acpi_rsdp_addr) hutch fills.
 */
#define X86_ELF_BOOT_PROTOCOL 0x020f

/*
 * Check an uncompressed ELF64 x86-64 kernel (Linux's vmlinux) and fill k with
 * its loadable segments and entry point; k is zeroed by the caller.
 */
int x86_elf_parse(const uint8_t *head, size_t head_len, uint64_t file_len, struct vmm_kernel *k,
		  struct error *err);

/* Fill table (cap entries) with the e820 map of mem; returns the entry count. */
unsigned x86_e820_build(const struct guest_memory *mem, struct boot_e820_entry *table,
			unsigned cap);

#endif
