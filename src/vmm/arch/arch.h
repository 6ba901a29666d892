/*
 * What the generic VMM asks of an architecture. Implementations live under
 * arch/<name>/ and are the only code named vmm_arch_*().
 */
#ifndef HUTCH_VMM_ARCH_ARCH_H
#define HUTCH_VMM_ARCH_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/memory.h"

struct vm;
struct vcpu;

/* At most this many loadable segments in an ELF kernel (Linux's vmlinux has 4 or 5). */
#define VMM_KERNEL_MAX_SEGMENTS 16

/*
 * What vmm_arch_kernel_parse() sees of a kernel file: its first bytes, where
 * the headers are. The segments go from the file straight to guest memory
 * (vm_boot_load()), never through a copy of the whole image.
 */
#define VMM_KERNEL_HEAD_MAX (64 * 1024)

/* A piece of the kernel file that goes to guest memory: filesz bytes, then zeros to memsz. */
struct vmm_kernel_segment {
	uint64_t offset; /* in the file */
	uint64_t gpa;
	uint64_t filesz, memsz;
};

enum vmm_kernel_format {
	VMM_KERNEL_BZIMAGE, /* decompresses itself, entered through its setup header */
	VMM_KERNEL_ELF,	    /* an uncompressed vmlinux, its segments loaded where they ask */
};

/* A kernel image checked by vmm_arch_kernel_parse(); points into the caller's buffer. */
struct vmm_kernel {
	enum vmm_kernel_format format;
	const uint8_t *head; /* the file's first head_len bytes */
	size_t head_len;
	uint64_t file_len;
	struct vmm_kernel_segment segments[VMM_KERNEL_MAX_SEGMENTS];
	unsigned nr_segments;
	uint64_t entry;	      /* guest-physical address the boot vCPU starts at */
	uint16_t protocol;    /* boot protocol version, 0x020c = 2.12 */
	uint64_t load_addr;   /* lowest guest-physical address of the kernel */
	uint64_t init_size;   /* memory the kernel needs from load_addr while booting */
	uint64_t initrd_max;  /* highest address an initrd byte may occupy */
	uint64_t cmdline_max; /* longest command line, without its NUL */
};

/*
 * Where devices created at run time go (vmm/alloc.h): irq_count interrupt
 * lines from irq_first that no fixed device uses, and an MMIO window with no
 * RAM, firmware or interrupt controller in it.
 */
struct vmm_device_space {
	unsigned irq_first, irq_count;
	uint64_t mmio_base, mmio_size;
};
void vmm_arch_device_space(struct vmm_device_space *space);

/* Split size bytes of RAM into guest-physical regions; returns how many (<= max). */
unsigned vmm_arch_memory_layout(uint64_t size, struct guest_region *regions, unsigned max);

/*
 * Check that a kernel file of file_len bytes, whose first head_len bytes
 * (all of it, or at least VMM_KERNEL_HEAD_MAX) are head, is one this
 * architecture boots (a bzImage or an ELF vmlinux); fill k, which points
 * into head.
 */
int vmm_arch_kernel_parse(const uint8_t *head, size_t head_len, uint64_t file_len,
			  struct vmm_kernel *k, struct error *err);

/* Least guest RAM to boot k with an initrd of initrd_len bytes. */
uint64_t vmm_arch_min_memory(const struct vmm_kernel *k, uint64_t initrd_len);

/* Where an initrd of len bytes goes in guest memory, or -1 with err if it cannot fit. */
int vmm_arch_initrd_addr(const struct vmm_kernel *k, const struct guest_memory *mem, uint64_t len,
			 uint64_t *addr, struct error *err);

/* VM-wide setup before memory and vCPUs: TSS, in-kernel irqchip and PIT. */
int vmm_arch_vm_init(struct vm *vm, struct error *err);

/*
 * Lay the command line and firmware tables (zero page, e820, ACPI, page
 * tables) into guest memory, around the kernel's segments and the initrd
 * (at initrd_addr) already there.
 */
int vmm_arch_boot_setup(struct vm *vm, const struct vmm_kernel *k, const char *cmdline,
			uint64_t initrd_addr, uint64_t initrd_len, struct error *err);

/* Per-vCPU state: CPUID, MSRs, LAPIC, and for the boot vCPU the entry registers. */
int vmm_arch_vcpu_init(struct vm *vm, struct vcpu *vcpu, struct error *err);

/* Kernel command line the architecture needs before any user --append. */
const char *vmm_arch_default_cmdline(void);

#endif
