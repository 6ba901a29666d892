/*
 * The VM's two resource allocators for devices added at run time (virtio-mmio
 * and later): interrupt lines from a fixed range of the IOAPIC's pins, and
 * MMIO windows from a hole in guest-physical space with no RAM in it. Both
 * hand out in increasing order and never free: devices are created once,
 * before the vCPUs start, and live as long as the VM. The architecture says
 * which lines and which hole (vmm_arch_device_space()).
 */
#ifndef HUTCH_VMM_ALLOC_H
#define HUTCH_VMM_ALLOC_H

#include <stdint.h>

#include "common/error.h"

struct irq_alloc {
	unsigned next; /* the next line to hand out */
	unsigned left; /* how many there are from next on */
};

struct mmio_alloc {
	uint64_t next; /* the lowest address not handed out */
	uint64_t end;  /* one past the window */
};

/* count lines from first on. */
void irq_alloc_init(struct irq_alloc *a, unsigned first, unsigned count);

/* The next free line in *irq, or -1 with err when all are taken. */
int irq_alloc(struct irq_alloc *a, const char *who, unsigned *irq, struct error *err);

/* The window [base, base + size); base + size must not wrap. */
void mmio_alloc_init(struct mmio_alloc *a, uint64_t base, uint64_t size);

/*
 * size bytes aligned to align (a power of two, at least 1) in *addr, or -1
 * with err when size is 0, align is not a power of two, or the window has
 * no room left. Checked without overflow.
 */
int mmio_alloc(struct mmio_alloc *a, const char *who, uint64_t size, uint64_t align,
	       uint64_t *addr, struct error *err);

#endif
