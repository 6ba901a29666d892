#include <inttypes.h>

#include "vmm/alloc.h"
#include "common/banned.h"

void irq_alloc_init(struct irq_alloc *a, unsigned first, unsigned count)
{
	a->next = first;
	a->left = count;
}

int irq_alloc(struct irq_alloc *a, const char *who, unsigned *irq, struct error *err)
{
	if (a->left == 0)
		return error_set(err, 0, "no interrupt line left for %s", who);
	*irq = a->next++;
	a->left--;
	return 0;
}

void mmio_alloc_init(struct mmio_alloc *a, uint64_t base, uint64_t size)
{
	a->next = base;
	a->end = base + size;
}

int mmio_alloc(struct mmio_alloc *a, const char *who, uint64_t size, uint64_t align,
	       uint64_t *addr, struct error *err)
{
	uint64_t start;

	if (size == 0 || align == 0 || (align & (align - 1)))
		return error_set(err, 0,
				 "%s asks for an MMIO window of %" PRIu64 " bytes aligned to %" PRIu64,
				 who, size, align);
	/* Round next up to align; if that wraps, or leaves less than size, there is no room. */
	start = (a->next + (align - 1)) & ~(align - 1);
	if (start < a->next || start >= a->end || size > a->end - start)
		return error_set(err, 0, "no MMIO space left for %s (%" PRIu64 " bytes)", who,
				 size);
	*addr = start;
	a->next = start + size;
	return 0;
}
