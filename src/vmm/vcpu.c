#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "common/banned.h"

/* Sent with pthread_kill() to pull a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signals_init(struct error *err)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	/* No SA_RESTART: KVM_RUN must return EINTR. */
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return error_set(err, errno, "cannot install the vCPU kick handler");
	return 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id, struct error *err)
{
	void *run;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->fd = -1;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		return error_set(err, errno, "cannot create vCPU %u", id);
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		error_set(err, errno, "cannot map the run area of vCPU %u", id);
		close(vcpu->fd);
		vcpu->fd = -1;
		return -1;
	}
	vcpu->run = run;
	return 0;
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;
	/* Read each field once: the run area is shared with KVM, and its values come from the
	 * guest. */
	unsigned size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint16_t port = run->io.port;
	uint8_t *data;

	if ((size != 1 && size != 2 && size != 4) || off >= vm->run_size ||
	    (uint64_t)size * count > vm->run_size - off) {
		vm_request_stop(vm, VM_STOP_INTERNAL_ERROR,
				"vCPU %u: malformed port I/O exit (port 0x%x, size %u, count %u)",
				vcpu->id, port, size, count);
		return;
	}
	data = (uint8_t *)run + off;
	/* String I/O (rep outsb/insb) arrives as count accesses to one port. */
	for (unsigned i = 0; i < count; i++)
		bus_access(&vm->pio, port, data + (size_t)i * size, size, is_write);
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint64_t addr = run->mmio.phys_addr;
	unsigned len = run->mmio.len;
	bool is_write = run->mmio.is_write;

	if (len == 0 || len > sizeof(run->mmio.data)) {
		vm_request_stop(vcpu->vm, VM_STOP_INTERNAL_ERROR,
				"vCPU %u: malformed MMIO exit (address 0x%" PRIx64 ", length %u)",
				vcpu->id, addr, len);
		return;
	}
	bus_access(&vcpu->vm->mmio, addr, run->mmio.data, len, is_write);
}

static void handle_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	static const char *const names[] = {
	    [KVM_INTERNAL_ERROR_EMULATION] = "instruction emulation failed",
	    [KVM_INTERNAL_ERROR_SIMUL_EX] = "exception while delivering an exception",
	    [KVM_INTERNAL_ERROR_DELIVERY_EV] = "exception during event delivery",
	    [KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON] = "unexpected exit reason",
	};
	unsigned sub = run->internal.suberror;
	const char *what =
	    sub < sizeof(names) / sizeof(names[0]) && names[sub] ? names[sub] : "unknown";

	vm_request_stop(vcpu->vm, VM_STOP_INTERNAL_ERROR,
			"KVM internal error on vCPU %u: %s (suberror %u)", vcpu->id, what, sub);
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, VM_STOP_POWEROFF, "guest powered off");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, VM_STOP_REBOOT, "guest rebooted");
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		vm_request_stop(vcpu->vm, VM_STOP_PANIC, "guest kernel panicked");
		break;
	default:
		vm_request_stop(vcpu->vm, VM_STOP_INTERNAL_ERROR,
				"vCPU %u: unknown system event %u", vcpu->id,
				vcpu->run->system_event.type);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;

	while (!vm_stopping(vm)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vm_request_stop(vm, VM_STOP_HOST_ERROR, "cannot run vCPU %u: %s", vcpu->id,
					strerror(errno));
			break;
		}
		switch (vcpu->run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(vcpu);
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(vcpu);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
			/* On x86 KVM reports a triple fault this way. */
			vm_request_stop(vm, VM_STOP_TRIPLE_FAULT,
					"guest triple-faulted on vCPU %u (shutdown)", vcpu->id);
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC; hutch always has one. */
			vm_request_stop(vm, VM_STOP_POWEROFF, "guest halted");
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			handle_system_event(vcpu);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			handle_internal_error(vcpu);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			vm_request_stop(vm, VM_STOP_INTERNAL_ERROR,
					"KVM could not enter vCPU %u (hardware reason 0x%llx)",
					vcpu->id,
					(unsigned long long)
					    vcpu->run->fail_entry.hardware_entry_failure_reason);
			break;
		default:
			vm_request_stop(vm, VM_STOP_INTERNAL_ERROR,
					"vCPU %u: unexpected KVM exit reason %u", vcpu->id,
					vcpu->run->exit_reason);
		}
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu, struct error *err)
{
	int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (r)
		return error_set(err, r, "cannot start the thread of vCPU %u", vcpu->id);
	vcpu->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->run)
		return;
	/*
	 * immediate_exit covers the window between the thread's stop check and
	 * its next KVM_RUN; the signal covers a thread already inside KVM_RUN.
	 */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_release(struct vcpu *vcpu)
{
	if (vcpu->started) {
		pthread_join(vcpu->thread, NULL);
		vcpu->started = false;
	}
	if (vcpu->run) {
		munmap(vcpu->run, vcpu->vm->run_size);
		vcpu->run = NULL;
	}
	if (vcpu->fd >= 0) {
		close(vcpu->fd);
		vcpu->fd = -1;
	}
}
