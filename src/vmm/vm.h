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

#include "vmm/bus.h"
#include "vmm/memory.h"
#include "vmm/vmm.h"

struct vcpu;
struct serial;

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_EXITED,		/* guest init reported the command's status on the exit port */
	VM_STOP_POWEROFF,	/* ACPI S5 */
	VM_STOP_REBOOT,		/* i8042 reset or KVM_SYSTEM_EVENT_RESET */
	VM_STOP_PANIC,		/* pvpanic */
	VM_STOP_TRIPLE_FAULT,	/* KVM_EXIT_SHUTDOWN */
	VM_STOP_INTERNAL_ERROR, /* KVM could not run the guest */
	VM_STOP_INTERRUPTED,	/* the host asked: Ctrl-C, SIGTERM, the console escape */
	VM_STOP_HOST_ERROR,	/* hutch itself failed while running */
};

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

#endif
