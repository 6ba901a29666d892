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

/* A kernel image checked by vmm_arch_kernel_parse(); points into the caller's buffer. */
struct vmm_kernel {
	const uint8_t *image;
	size_t image_len;
	const uint8_t *payload; /* the part loaded into guest memory */
	size_t payload_len;
	uint16_t protocol;    /* boot protocol version, 0x020c = 2.12 */
	uint64_t load_addr;   /* guest-physical address of payload */
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

/* Check that image is a kernel this architecture boots; fill k. */
int vmm_arch_kernel_parse(const uint8_t *image, size_t len, struct vmm_kernel *k,
			  struct error *err);

/* Least guest RAM to boot k with an initrd of initrd_len bytes. */
uint64_t vmm_arch_min_memory(const struct vmm_kernel *k, uint64_t initrd_len);

/* Where an initrd of len bytes goes in guest memory, or -1 with err if it cannot fit. */
int vmm_arch_initrd_addr(const struct vmm_kernel *k, const struct guest_memory *mem, uint64_t len,
			 uint64_t *addr, struct error *err);

/* VM-wide setup before memory and vCPUs: TSS, in-kernel irqchip and PIT. */
int vmm_arch_vm_init(struct vm *vm, struct error *err);

/*
 * Lay the kernel, command line, initrd (already copied to initrd_addr) and
 * firmware tables (zero page, e820, ACPI, page tables) into guest memory.
 */
int vmm_arch_boot_setup(struct vm *vm, const struct vmm_kernel *k, const char *cmdline,
			uint64_t initrd_addr, uint64_t initrd_len, struct error *err);

/* Per-vCPU state: CPUID, MSRs, LAPIC, and for the boot vCPU the entry registers. */
int vmm_arch_vcpu_init(struct vm *vm, struct vcpu *vcpu, struct error *err);

/* Kernel command line the architecture needs before any user --append. */
const char *vmm_arch_default_cmdline(void);

#endif
