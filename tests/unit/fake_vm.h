/*
 * Fake VM services for the virtio unit tests (vmm/device.h): 1 MiB of guest
 * RAM at 0, line 16, an MMIO window at 0xd0000000, and a record of the
 * ioeventfds, the irqfd and the event-loop sources a device asks for. No
 * KVM: a test calls a watched source's function itself, as the event loop
 * would, and reads the irqfd to count interrupts. Include after <cmocka.h>.
 */
#ifndef HUTCH_TESTS_UNIT_FAKE_VM_H
#define HUTCH_TESTS_UNIT_FAKE_VM_H

#include <unistd.h>

#include "vmm/device.h"
#include "vmm/virtio/virtio.h"

#define MIB (1ULL << 20)
#define BASE 0xd0000000ULL
#define LINE 16

struct fake_vm {
	struct guest_memory mem;
	int irq_fd;
	unsigned ioeventfds; /* assigned now */
	struct {
		int fd;
		evloop_fn *fn;
		void *arg;
	} watched[VIRTIO_MAX_QUEUES];
	unsigned nr_watched;
	uint64_t notify_addr;
};

static inline int fake_alloc_irq(void *vm, const char *who, unsigned *irq, struct error *err)
{
	*irq = LINE;
	return 0;
}

static inline int fake_alloc_mmio(void *vm, const char *who, uint64_t size, uint64_t align,
				  uint64_t *addr, struct error *err)
{
	*addr = BASE;
	return 0;
}

static inline const struct guest_memory *fake_memory(void *vm)
{
	return &((struct fake_vm *)vm)->mem;
}

static inline int fake_ioeventfd(void *opaque, int fd, uint64_t addr, unsigned len,
				 uint64_t datamatch, bool assign, struct error *err)
{
	struct fake_vm *vm = opaque;

	assert_int_equal(len, 4);
	vm->notify_addr = addr;
	if (assign)
		vm->ioeventfds++;
	else
		vm->ioeventfds--;
	return 0;
}

static inline int fake_irqfd(void *opaque, int fd, unsigned gsi, bool assign, struct error *err)
{
	struct fake_vm *vm = opaque;

	assert_int_equal(gsi, LINE);
	vm->irq_fd = assign ? fd : -1;
	return 0;
}

static inline int fake_watch(void *opaque, int fd, uint32_t events, evloop_fn *fn, void *arg,
			     struct error *err)
{
	struct fake_vm *vm = opaque;

	vm->watched[vm->nr_watched].fd = fd;
	vm->watched[vm->nr_watched].fn = fn;
	vm->watched[vm->nr_watched++].arg = arg;
	return 0;
}

static inline void fake_unwatch(void *opaque, int fd)
{
	struct fake_vm *vm = opaque;

	for (unsigned i = 0; i < vm->nr_watched; i++)
		if (vm->watched[i].fd == fd)
			vm->watched[i].fd = -1;
}

static inline void fake_vm_init(struct fake_vm *vm, struct vm_services *svc)
{
	static const struct guest_region layout[] = {{.gpa = 0, .size = 1 * MIB}};
	struct error err = {0};

	memset(vm, 0, sizeof(*vm));
	assert_int_equal(guest_memory_init(&vm->mem, 1 * MIB, layout, 1, &err), 0);
	vm->irq_fd = -1;
	*svc = (struct vm_services){
	    .vm = vm,
	    .alloc_irq = fake_alloc_irq,
	    .alloc_mmio = fake_alloc_mmio,
	    .memory = fake_memory,
	    .ioeventfd = fake_ioeventfd,
	    .irqfd = fake_irqfd,
	    .watch = fake_watch,
	    .unwatch = fake_unwatch,
	};
}

static inline void fake_vm_release(struct fake_vm *vm)
{
	guest_memory_release(&vm->mem);
}

/* Interrupts sent on the irqfd since the last look. */
static inline uint64_t fake_vm_interrupts(struct fake_vm *vm)
{
	uint64_t n = 0;

	if (read(vm->irq_fd, &n, sizeof(n)) < 0)
		return 0;
	return n;
}

#endif
