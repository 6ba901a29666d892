/*
 * One running virtual machine: what the vCPU threads, devices and the host
 * console loop share. Internal to src/vmm/.
 */
#ifndef HUTCH_VMM_VM_H
#define HUTCH_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/arch/arch.h"
#include "vmm/alloc.h"
#include "vmm/bus.h"
#include "vmm/evloop.h"
#include "vmm/cpio.h"
#include "vmm/device.h"
#include "vmm/memory.h"
#include "vmm/vmm.h"

struct vcpu;
struct serial;

/* Devices of one VM, at most. */
#define VM_MAX_DEVICES 16

struct vm {
	int kvm_fd;
	int vm_fd;
	int stop_fd; /* eventfd, readable once a stop was requested */
	size_t run_size;
	struct guest_memory mem;
	struct bus pio;
	struct bus mmio;
	unsigned nr_vcpus;
	struct vcpu *vcpus;
	/* The devices, in the order they were added (released in reverse). */
	struct device *devices[VM_MAX_DEVICES];
	unsigned nr_devices;
	struct vm_services services; /* what the devices may ask of this VM */
	/* Interrupt lines and MMIO windows for devices that take them as they come. */
	struct irq_alloc irqs;
	struct evloop events; /* the devices' fds, served by the console loop */
	struct mmio_alloc mmio_space;
	uint64_t boot_entry; /* where the boot vCPU starts: the kernel's entry point */
	struct serial *console; /* ttyS0: guest stdout and the shell */
	struct serial *errout;	/* ttyS1: guest stderr */

	/* Rows and columns of the host terminal, for the guest's console size port. */
	_Atomic uint32_t winsize;

	/* Set by the exit port: the guest command's status, or -1 before it reports. */
	atomic_int exit_status;

	atomic_int stop_reason;
	char stop_detail[256];
	pthread_mutex_t stop_lock;

	uint64_t t_start_ns;	      /* process start, CLOCK_MONOTONIC */
	_Atomic uint64_t t_marker_ns; /* when guest init reported in */
};

/*
 * Ask every thread to stop; the first reason wins. fmt describes it for the
 * user ("guest kernel panicked"). Safe from any thread.
 */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->stop_reason) != VM_RUNNING;
}

/* Raise or lower an interrupt line of the in-kernel irqchip. */
void vm_set_irq(struct vm *vm, unsigned irq, bool level);

/*
 * Building and running a VM, in the stages of vmm_run() (run.c): the boot
 * inputs checked (load.c), the VM created (vm.c), the images loaded into
 * its memory (load.c), its devices and vCPUs (vm.c), then run (run.c).
 * Each stage unwinds with vm_release() / vm_boot_release() whatever it did.
 */
struct vm_boot {
	const char *kernel_path;
	int kernel_fd;	       /* open until its segments are in guest RAM */
	uint8_t *kernel_head;  /* the file's first VMM_KERNEL_HEAD_MAX bytes: its headers */
	const char *initrd_path;
	int initrd_fd;	       /* open until it is in guest RAM */
	uint64_t initrd_len;
	struct vmm_kernel k;
	struct cpio args;      /* the command archive, after the initramfs */
	char *cmdline;
	uint64_t total_initrd; /* initramfs, padding and the command archive */
};

int vm_boot_prepare(struct vm_boot *b, const struct vmm_config *cfg, struct error *err);
int vm_create(struct vm *vm, const struct vmm_config *cfg, struct error *err);
/* Guest RAM of memory bytes in the architecture's layout, and the boot images in it. */
int vm_boot_load(struct vm *vm, struct vm_boot *b, uint64_t memory, struct error *err);
/* Read the kernel's segments from fd (the file at path) into mem, each zeroed up to its memsz. */
int vm_load_kernel_segments(struct guest_memory *mem, const struct vmm_kernel *k, int fd,
			    const char *path, struct error *err);
int vm_create_devices(struct vm *vm, const struct vmm_config *cfg, struct error *err);
int vm_create_vcpus(struct vm *vm, struct error *err);
void vm_release(struct vm *vm);
void vm_boot_release(struct vm_boot *b);

/* Fill vm->services: the VM's side of the device interface (vmm/device.h). */
void vm_services_init(struct vm *vm);
/* Attach dev to vm's buses and take it; on failure dev is freed. */
int vm_add_device(struct vm *vm, struct device *dev, struct error *err);
/* Release every device, last added first. */
void vm_release_devices(struct vm *vm);

#endif
