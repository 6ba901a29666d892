/* hutch vm run: the stages of vmm_run(), and how the run ended. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/console.h"
#include "vmm/seccomp.h"
#include "vmm/vcpu.h"
#include "vmm/virtio/virtio.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"
#include "common/banned.h"

static int report_stop(struct vm *vm, const struct console *con, struct error *err)
{
	int reason = atomic_load(&vm->stop_reason);
	int status = atomic_load(&vm->exit_status);

	if (status >= 0 &&
	    (reason == VM_STOP_EXITED || reason == VM_STOP_POWEROFF || reason == VM_STOP_REBOOT))
		return status;
	if (reason == VM_STOP_INTERRUPTED && con->stopped_by_signal) {
		error_set(err, 0, "vm: %s", vm->stop_detail);
		return 128 + con->stopped_by_signal;
	}
	if (reason == VM_STOP_POWEROFF)
		return error_set(err, 0, "vm: %s before the command reported its status",
				 vm->stop_detail);
	return error_set(err, reason == VM_STOP_HOST_ERROR ? EIO : 0, "vm: %s", vm->stop_detail);
}

/* From hutch's start: the vCPUs' start (VM built, images loaded), init's marker, the stop. */
static void print_timings(const struct vm *vm, const struct vmm_config *cfg, uint64_t t_run)
{
	uint64_t marker = atomic_load(&vm->t_marker_ns), now = vmm_now_ns();
	double run_ms = (double)(t_run - cfg->t_start_ns) / 1e6;

	if (marker)
		dprintf(STDERR_FILENO,
			"hutch: vm: timings: vCPUs started after %.1f ms, guest init after %.1f ms, "
			"stop after %.1f ms\n",
			run_ms, (double)(marker - cfg->t_start_ns) / 1e6,
			(double)(now - cfg->t_start_ns) / 1e6);
	else
		dprintf(STDERR_FILENO,
			"hutch: vm: timings: vCPUs started after %.1f ms, guest init never reported, "
			"stop after %.1f ms\n",
			run_ms, (double)(now - cfg->t_start_ns) / 1e6);
}

static void print_refused(const struct vm *vm)
{
	dprintf(STDERR_FILENO, "hutch: vm: refused %lu port and %lu MMIO accesses\n",
		(unsigned long)atomic_load(&vm->pio.refused),
		(unsigned long)atomic_load(&vm->mmio.refused));
}

/* What each virtio device's driver did against the rules (the first was logged as it came). */
static void print_virtio_events(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_devices; i++) {
		struct device *dev = vm->devices[i];
		struct virtio_events e;

		if (!dev->acpi.hid || strcmp(dev->acpi.hid, "LNRO0005"))
			continue;
		e = virtio_events(virtio_of(dev));
		dprintf(STDERR_FILENO,
			"hutch: vm: %s: virtio events: %lu broken queue, %lu bad queue config, %lu "
			"frozen writes, %lu bad features, %lu bad status, %lu bad access\n",
			dev->name, e.broken, e.bad_queue, e.frozen_writes, e.bad_features,
			e.bad_status, e.bad_access);
	}
}

int vmm_run(const struct vmm_config *cfg, bool *started, struct error *err)
{
	struct vm_boot boot;
	struct console con = {.sig_fd = -1};
	struct vm vm;
	uint64_t t_run = 0;
	int ret = -1;

	*started = false;
	err->errnum = 0;
	err->msg[0] = '\0';
	/* Stage 1: the inputs, checked before anything is created. */
	if (vm_boot_prepare(&boot, cfg, err) < 0) {
		vm_boot_release(&boot);
		return -1;
	}
	/*
	 * Stage 2: KVM and the VM, and its devices (the firmware tables list
	 * them); stage 3: memory, then the boot images in it; stage 4: vCPUs.
	 */
	if (vm_create(&vm, cfg, err) < 0 || vm_create_devices(&vm, cfg, err) < 0 ||
	    vm_boot_load(&vm, &boot, cfg->memory, err) < 0 || vm_create_vcpus(&vm, err) < 0)
		goto out;
	/* Stage 5: run. The console takes the signals; vCPU threads inherit the mask. */
	if (console_init(&con, &vm, cfg->shell, err) < 0)
		goto out;
	/* From here on the VMM only serves the guest: no privilege gain, few syscalls. */
	if (vmm_seccomp_apply(err) < 0)
		goto out;
	vm.t_start_ns = cfg->t_start_ns;
	*started = true;
	t_run = vmm_now_ns();
	for (unsigned i = 0; i < vm.nr_vcpus; i++) {
		if (vcpu_start(&vm.vcpus[i], err) < 0) {
			vm_request_stop(&vm, VM_STOP_HOST_ERROR, "%s", err->msg);
			break;
		}
	}
	console_loop(&con, &vm);
	for (unsigned i = 0; i < vm.nr_vcpus; i++)
		vcpu_kick(&vm.vcpus[i]);
	for (unsigned i = 0; i < vm.nr_vcpus; i++)
		vcpu_release(&vm.vcpus[i]);
	console_release(&con);
	if (cfg->timings)
		print_timings(&vm, cfg, t_run);
	if (cfg->trace_io) {
		print_refused(&vm);
		print_virtio_events(&vm);
	}
	ret = report_stop(&vm, &con, err);
out:
	console_release(&con);
	vm_release(&vm);
	vm_boot_release(&boot);
	return ret;
}
