/*
 * x86-64 Linux boot: bzImage checks, the e820 map and the zero page
 * (Documentation/arch/x86/boot.rst, 64-bit boot protocol).
 */
#ifndef HUTCH_VMM_ARCH_X86_64_BOOT_H
#define HUTCH_VMM_ARCH_X86_64_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/arch/x86_64/bootparam.h"
#include "vmm/memory.h"

/* Oldest boot protocol hutch boots: 2.12 brought XLF_KERNEL_64 (64-bit entry). */
#define X86_MIN_BOOT_PROTOCOL 0x020c

/* Fill table (cap entries) with the e820 map of mem; returns the entry count. */
unsigned x86_e820_build(const struct guest_memory *mem, struct boot_e820_entry *table,
			unsigned cap);

#endif
