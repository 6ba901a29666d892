/* One VM: create, the services its devices call, its devices, release. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/arch/arch.h"
#include "vmm/devices/devices.h"
#include "vmm/devices/serial.h"
#include "vmm/devices/virtio_blk.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"
#include "common/banned.h"

#define MIB ((uint64_t)1 << 20)

uint64_t vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;
	va_list ap;

	pthread_mutex_lock(&vm->stop_lock);
	if (atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason)) {
		va_start(ap, fmt);
		vsnprintf(vm->stop_detail, sizeof(vm->stop_detail), fmt, ap);
		va_end(ap);
		if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
			/* An eventfd write only fails on overflow: a stop is pending anyway. */
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

void vm_set_irq(struct vm *vm, unsigned irq, bool level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level ? 1 : 0};

	kvm_ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

static void services_set_irq(void *vm, unsigned irq, bool level)
{
	vm_set_irq(vm, irq, level);
}

static void services_stop(void *vm, enum vm_stop_reason reason, const char *detail)
{
	vm_request_stop(vm, reason, "%s", detail);
}

static void services_guest_exited(void *opaque, unsigned status)
{
	struct vm *vm = opaque;

	/*
	 * The run is over: init has drained the consoles and has nothing left
	 * to do but power off, so stop now; the kernel's shutdown messages
	 * never reach the user's output.
	 */
	atomic_store(&vm->exit_status, (int)status);
	vm_request_stop(vm, VM_STOP_EXITED, "guest command exited with status %u", status);
}

static void services_guest_marker(void *opaque)
{
	struct vm *vm = opaque;
	uint64_t expected = 0;

	atomic_compare_exchange_strong(&vm->t_marker_ns, &expected, vmm_now_ns());
}

static int services_watch(void *opaque, int fd, uint32_t events, evloop_fn *fn, void *arg,
			  struct error *err)
{
	struct vm *vm = opaque;

	return evloop_add(&vm->events, fd, events, fn, arg, err);
}

static void services_unwatch(void *opaque, int fd)
{
	struct vm *vm = opaque;

	evloop_remove(&vm->events, fd);
}

static uint32_t services_console_size(void *opaque)
{
	struct vm *vm = opaque;

	return atomic_load(&vm->winsize);
}

static int services_alloc_irq(void *opaque, const char *who, unsigned *irq, struct error *err)
{
	struct vm *vm = opaque;

	return irq_alloc(&vm->irqs, who, irq, err);
}

static int services_alloc_mmio(void *opaque, const char *who, uint64_t size, uint64_t align,
			       uint64_t *addr, struct error *err)
{
	struct vm *vm = opaque;

	return mmio_alloc(&vm->mmio_space, who, size, align, addr, err);
}

static const struct guest_memory *services_memory(void *opaque)
{
	struct vm *vm = opaque;

	return &vm->mem;
}

static int services_ioeventfd(void *opaque, int fd, uint64_t addr, unsigned len,
			      uint64_t datamatch, bool assign, struct error *err)
{
	struct vm *vm = opaque;
	struct kvm_ioeventfd io = {
	    .datamatch = datamatch,
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (kvm_ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return error_set(err, errno, "cannot %s an ioeventfd at 0x%" PRIx64,
				 assign ? "register" : "remove", addr);
	return 0;
}

static int services_irqfd(void *opaque, int fd, unsigned gsi, bool assign, struct error *err)
{
	struct vm *vm = opaque;
	struct kvm_irqfd irq = {
	    .fd = (uint32_t)fd,
	    .gsi = gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (kvm_ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0)
		return error_set(err, errno, "cannot %s an irqfd for line %u",
				 assign ? "register" : "remove", gsi);
	return 0;
}

void vm_services_init(struct vm *vm)
{
	vm->services = (struct vm_services){
		.vm = vm,
		.set_irq = services_set_irq,
		.stop = services_stop,
		.guest_exited = services_guest_exited,
		.guest_marker = services_guest_marker,
		.console_size = services_console_size,
		.watch = services_watch,
		.unwatch = services_unwatch,
		.alloc_irq = services_alloc_irq,
		.alloc_mmio = services_alloc_mmio,
		.memory = services_memory,
		.ioeventfd = services_ioeventfd,
		.irqfd = services_irqfd,
	};
}

int vm_add_device(struct vm *vm, struct device *dev, struct error *err)
{
	if (vm->nr_devices == VM_MAX_DEVICES) {
		device_free(dev);
		return error_set(err, 0, "more than %d devices", VM_MAX_DEVICES);
	}
	/* Taken first: the buses may already point at it when a later range fails. */
	vm->devices[vm->nr_devices++] = dev;
	if (device_attach(dev, &vm->pio, &vm->mmio, err) < 0)
		return error_prefix(err, "cannot add device '%s'", dev->name);
	return 0;
}

void vm_release_devices(struct vm *vm)
{
	while (vm->nr_devices > 0)
		device_free(vm->devices[--vm->nr_devices]);
	vm->console = vm->errout = NULL;
}

/*
 * Add dev, made by a *_create() just now; NULL if it could not be added or
 * was not made (that *_create() then set err).
 */
static struct device *add(struct vm *vm, struct device *dev, struct error *err)
{
	if (!dev)
		return NULL;
	return vm_add_device(vm, dev, err) < 0 ? NULL : dev;
}

/* --disk N: its image opened as the user asked, as virtio-blk vda, vdb, ... */
static struct device *disk_create(struct vm *vm, const struct vmm_disk *vd, unsigned n,
				  struct error *err)
{
	struct disk_open_options o = {.format = vd->format, .read_only = vd->read_only};
	struct disk *d = disk_open(vd->path, &o, err);
	char name[8];

	if (!d)
		return NULL;
	snprintf(name, sizeof(name), "vd%c", 'a' + n);
	return virtio_blk_create(&vm->services, name, d, vd->read_only, err);
}

/* The machine's devices: one line each. */
int vm_create_devices(struct vm *vm, const struct vmm_config *cfg, struct error *err)
{
	const struct vm_services *svc = &vm->services;
	struct device *com1, *com2;
	struct vmm_device_space space;

	vmm_arch_device_space(&space);
	irq_alloc_init(&vm->irqs, space.irq_first, space.irq_count);
	mmio_alloc_init(&vm->mmio_space, space.mmio_base, space.mmio_size);

	if (!(com1 = add(vm, serial_create(svc, SERIAL_COM1_BASE, SERIAL_COM1_IRQ, STDOUT_FILENO,
					   "ttyS0"), err)) ||
	    !(com2 = add(vm, serial_create(svc, SERIAL_COM2_BASE, SERIAL_COM2_IRQ, STDERR_FILENO,
					   "ttyS1"), err)) ||
	    !add(vm, ctlport_create(svc), err) || !add(vm, pvpanic_create(svc), err) ||
	    !add(vm, i8042_create(svc), err) || !add(vm, acpi_pm_create(svc), err) ||
	    !add(vm, virtio_rng_create(svc, err), err))
		return error_prefix(err, "cannot create devices");
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		if (!add(vm, disk_create(vm, &cfg->disks[i], i, err), err))
			return error_prefix(err, "cannot create disk %u", i);
	vm->console = serial_of(com1);
	vm->errout = serial_of(com2);
	return 0;
}

int vm_create(struct vm *vm, const struct vmm_config *cfg, struct error *err)
{
	unsigned max_cpus;
	int n;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	vm->events.epoll_fd = -1;
	atomic_init(&vm->exit_status, -1);
	atomic_init(&vm->stop_reason, VM_RUNNING);
	pthread_mutex_init(&vm->stop_lock, NULL);
	bus_init(&vm->pio, "pio", cfg->trace_io);
	bus_init(&vm->mmio, "mmio", cfg->trace_io);
	vm_services_init(vm);

	vm->kvm_fd = kvm_open(err);
	if (vm->kvm_fd < 0)
		return -1;
	max_cpus = kvm_max_vcpus(vm->kvm_fd);
	if (max_cpus > 254)
		max_cpus = 254; /* xAPIC ids in the MADT */
	if (cfg->cpus == 0 || cfg->cpus > max_cpus)
		return error_set(err, 0, "--cpus %u is out of range: KVM here allows 1 to %u",
				 cfg->cpus, max_cpus);
	vm->nr_vcpus = cfg->cpus;
	n = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (n <= 0)
		return error_set(err, errno, "cannot get the size of the vCPU run area");
	vm->run_size = (size_t)n;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return error_set(err, errno, "cannot create a KVM virtual machine");
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return error_set(err, errno, "cannot create an eventfd");
	if (evloop_init(&vm->events, err) < 0)
		return -1;
	return vmm_arch_vm_init(vm, err);
}

int vm_create_vcpus(struct vm *vm, struct error *err)
{
	vm->vcpus = xcalloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_create(vm, &vm->vcpus[i], i, err) < 0 ||
		    vmm_arch_vcpu_init(vm, &vm->vcpus[i], err) < 0)
			return -1;
	}
	return vcpu_signals_init(err);
}

void vm_release(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			vcpu_kick(&vm->vcpus[i]);
			vcpu_release(&vm->vcpus[i]);
		}
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	vm_release_devices(vm);
	/* After the devices: their release may still take their fds out of it. */
	evloop_release(&vm->events);
	guest_memory_release(&vm->mem);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->stop_fd = vm->vm_fd = vm->kvm_fd = -1;
	pthread_mutex_destroy(&vm->stop_lock);
}
