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
#include "vmm/console.h"
#include "vmm/cpio.h"
#include "vmm/devices/devices.h"
#include "vmm/devices/serial.h"
#include "vmm/kvm.h"
#include "vmm/seccomp.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"
#include "common/banned.h"

#define MIB ((uint64_t)1 << 20)
/* Kernels and initramfs files larger than this are not what hutch boots. */
#define MAX_IMAGE_SIZE (1ULL << 30)
/* Smallest VM: below this not even a tiny kernel gets to init. */
#define MIN_MEMORY (32 * MIB)

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

static bool has_kernel(const char *dir)
{
	_cleanup_free_ char *p = xasprintf("%s/vmlinuz", dir);

	return access(p, R_OK) == 0;
}

char *vmm_assets_dir(void)
{
	const char *env = getenv("HUTCH_VM_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env)
		return xstrdup(env);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			_cleanup_free_ char *dir = NULL, *installed = NULL;
			*slash = '\0';
			dir = xasprintf("%s/vm", exe);
			if (has_kernel(dir))
				return steal_ptr(dir);
			/*
			 * `make install` puts them in PREFIX/lib/hutch/vm, found
			 * from PREFIX/bin/hutch with no path compiled in, so an
			 * install in a DESTDIR or a moved tree finds its own.
			 * The kernel resolved exe: its parent is exe up to the
			 * last '/'.
			 */
			slash = strrchr(exe, '/');
			if (slash) {
				*slash = '\0';
				installed = xasprintf("%s/lib/hutch/vm", exe);
				if (has_kernel(installed))
					return steal_ptr(installed);
			}
		}
	}
	if (xdg && *xdg == '/')
		return xasprintf("%s/hutch/vm", xdg);
	return xasprintf("%s/.cache/hutch/vm", home && *home ? home : "/root");
}

/* Read a whole regular file of at most max bytes. */
static uint8_t *load_file(const char *path, const char *what, uint64_t max, size_t *len,
			  struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = NULL;
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return error_set(err, errno, "cannot open %s '%s'", what, path), NULL;
	if (fstat(fd, &st) < 0)
		return error_set(err, errno, "cannot stat %s '%s'", what, path), NULL;
	if (!S_ISREG(st.st_mode))
		return error_set(err, 0, "%s '%s' is not a regular file", what, path), NULL;
	if ((uint64_t)st.st_size > max)
		return error_set(err, 0, "%s '%s' is larger than %" PRIu64 " MiB", what, path,
				 max / MIB),
		       NULL;
	buf = xmalloc((size_t)st.st_size + 1);
	n = read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return error_set(err, errno, "cannot read %s '%s'", what, path), NULL;
	*len = (size_t)n;
	return steal_ptr(buf);
}

/*
 * The run request for the guest init, as a cpio archive appended to the
 * initramfs: /hutch/cmd holds NUL-terminated strings: the mode ("run" or
 * "shell"), the host's $TERM, then the command's arguments.
 */
static void append_string(char **data, size_t *len, size_t *cap, const char *str)
{
	size_t n = strlen(str) + 1;

	while (*len + n > *cap)
		*data = xrealloc(*data, *cap *= 2);
	memcpy(*data + *len, str, n);
	*len += n;
}

static void build_command_archive(const struct vmm_config *cfg, struct cpio *c)
{
	const char *term = getenv("TERM");
	size_t len = 0, cap = 256;
	_cleanup_free_ char *data = xmalloc(cap);

	append_string(&data, &len, &cap, cfg->shell ? "shell" : "run");
	append_string(&data, &len, &cap, term && *term && cfg->shell ? term : "dumb");
	for (size_t i = 0; cfg->argv && cfg->argv[i]; i++)
		append_string(&data, &len, &cap, cfg->argv[i]);
	cpio_init(c);
	cpio_add_dir(c, "hutch", 0755);
	cpio_add_file(c, "hutch/cmd", 0644, data, len);
	cpio_finish(c);
}

static int check_host_memory(uint64_t memory, struct error *err)
{
	struct sysinfo si;
	uint64_t total;

	if (sysinfo(&si) < 0)
		return 0; /* cannot tell: let mmap and the guest decide */
	total = (uint64_t)si.totalram * si.mem_unit;
	if (memory > total)
		return error_set(
		    err, 0, "--memory %" PRIu64 " MiB is more than this host has (%" PRIu64 " MiB)",
		    memory / MIB, total / MIB);
	return 0;
}

static char *build_cmdline(const struct vmm_config *cfg)
{
	/*
	 * Kernel messages go to ttyS1, the host's stderr: stdout carries only
	 * the command's output. quiet + loglevel=1: only emergencies (panics).
	 */
	if (cfg->append && *cfg->append)
		return xasprintf("%s quiet loglevel=1 %s", vmm_arch_default_cmdline(), cfg->append);
	return xasprintf("%s quiet loglevel=1", vmm_arch_default_cmdline());
}

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

static void print_timings(const struct vm *vm, const struct vmm_config *cfg)
{
	uint64_t marker = atomic_load(&vm->t_marker_ns), now = vmm_now_ns();

	if (marker)
		dprintf(STDERR_FILENO,
			"hutch: vm: timings: guest init after %.1f ms, stop after %.1f ms\n",
			(double)(marker - cfg->t_start_ns) / 1e6,
			(double)(now - cfg->t_start_ns) / 1e6);
	else
		dprintf(STDERR_FILENO,
			"hutch: vm: timings: guest init never reported, stop after %.1f ms\n",
			(double)(now - cfg->t_start_ns) / 1e6);
}

static void print_refused(const struct vm *vm)
{
	dprintf(STDERR_FILENO, "hutch: vm: refused %lu port and %lu MMIO accesses\n",
		(unsigned long)atomic_load(&vm->pio.refused),
		(unsigned long)atomic_load(&vm->mmio.refused));
}

static int create_devices(struct vm *vm, const struct vmm_config *cfg, struct error *err)
{
	if (serial_create(vm, SERIAL_COM1_BASE, SERIAL_COM1_IRQ, STDOUT_FILENO, "ttyS0",
			  &vm->console, err) < 0 ||
	    serial_create(vm, SERIAL_COM2_BASE, SERIAL_COM2_IRQ, STDERR_FILENO, "ttyS1",
			  &vm->errout, err) < 0 ||
	    ctlport_create(vm, err) < 0 || pvpanic_create(vm, err) < 0 ||
	    i8042_create(vm, err) < 0 || acpi_pm_create(vm, err) < 0)
		return error_prefix(err, "cannot create devices");
	return 0;
}

int vmm_run(const struct vmm_config *cfg, struct error *err)
{
	_cleanup_free_ uint8_t *kernel_image = NULL, *initrd_image = NULL;
	_cleanup_free_ char *cmdline = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	uint64_t total_initrd, initrd_addr, min_mem;
	struct vmm_kernel k;
	struct cpio args;
	struct console con;
	struct vm vm;
	unsigned max_cpus;
	int ret = -1;

	err->errnum = 0;
	err->msg[0] = '\0';
	memset(&vm, 0, sizeof(vm));
	memset(&con, 0, sizeof(con));
	con.sig_fd = -1;
	vm.kvm_fd = vm.vm_fd = vm.stop_fd = -1;
	atomic_init(&vm.exit_status, -1);
	atomic_init(&vm.stop_reason, VM_RUNNING);
	pthread_mutex_init(&vm.stop_lock, NULL);
	bus_init(&vm.pio, "pio", cfg->trace_io);
	bus_init(&vm.mmio, "mmio", cfg->trace_io);
	build_command_archive(cfg, &args);

	/* Stage 1: the inputs, checked before anything is created. */
	kernel_image = load_file(cfg->kernel, "kernel", MAX_IMAGE_SIZE, &kernel_len, err);
	if (!kernel_image)
		goto out_args;
	if (vmm_arch_kernel_parse(kernel_image, kernel_len, &k, err) < 0) {
		error_prefix(err, "cannot boot '%s'", cfg->kernel);
		goto out_args;
	}
	initrd_image = load_file(cfg->initrd, "initrd", MAX_IMAGE_SIZE, &initrd_len, err);
	if (!initrd_image)
		goto out_args;
	/* The command archive follows the initramfs at the next 4-byte boundary. */
	total_initrd = ((initrd_len + 3) & ~(uint64_t)3) + args.len;
	min_mem = vmm_arch_min_memory(&k, total_initrd);
	if (min_mem < MIN_MEMORY)
		min_mem = MIN_MEMORY;
	if (cfg->memory < min_mem && cfg->memory >= vmm_arch_min_memory(&k, 0) &&
	    cfg->memory >= MIN_MEMORY) {
		error_set(err, 0,
			  "initrd '%s' (%" PRIu64 " MiB) is too large for --memory %" PRIu64
			  " MiB: booting it needs at least %" PRIu64 " MiB",
			  cfg->initrd, (uint64_t)(initrd_len + MIB - 1) / MIB, cfg->memory / MIB,
			  min_mem / MIB);
		goto out_args;
	}
	if (cfg->memory < min_mem) {
		error_set(err, 0,
			  "--memory %" PRIu64 " MiB is too small: this kernel and initrd need at "
			  "least %" PRIu64 " MiB",
			  cfg->memory / MIB, min_mem / MIB);
		goto out_args;
	}
	if (cfg->memory % 4096) {
		error_set(err, 0, "--memory must be a multiple of 4 KiB");
		goto out_args;
	}
	if (check_host_memory(cfg->memory, err) < 0)
		goto out_args;
	cmdline = build_cmdline(cfg);
	if (strlen(cmdline) > k.cmdline_max) {
		error_set(err, 0,
			  "kernel command line is %zu bytes, this kernel takes at most %" PRIu64,
			  strlen(cmdline), k.cmdline_max);
		goto out_args;
	}

	/* Stage 2: KVM and the VM. */
	vm.kvm_fd = kvm_open(err);
	if (vm.kvm_fd < 0)
		goto out_args;
	max_cpus = kvm_max_vcpus(vm.kvm_fd);
	if (max_cpus > 254)
		max_cpus = 254; /* xAPIC ids in the MADT */
	if (cfg->cpus == 0 || cfg->cpus > max_cpus) {
		error_set(err, 0, "--cpus %u is out of range: KVM here allows 1 to %u", cfg->cpus,
			  max_cpus);
		goto out_kvm;
	}
	vm.nr_vcpus = cfg->cpus;
	{
		int n = ioctl(vm.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
		if (n <= 0) {
			error_set(err, errno, "cannot get the size of the vCPU run area");
			goto out_kvm;
		}
		vm.run_size = (size_t)n;
	}
	vm.vm_fd = ioctl(vm.kvm_fd, KVM_CREATE_VM, 0);
	if (vm.vm_fd < 0) {
		error_set(err, errno, "cannot create a KVM virtual machine");
		goto out_kvm;
	}
	vm.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm.stop_fd < 0) {
		error_set(err, errno, "cannot create an eventfd");
		goto out_vm;
	}
	if (vmm_arch_vm_init(&vm, err) < 0)
		goto out_vm;

	/* Stage 3: memory, then the boot images in it. */
	if (guest_memory_init(&vm.mem, cfg->memory, err) < 0)
		goto out_vm;
	if (guest_memory_register(&vm.mem, vm.vm_fd, err) < 0)
		goto out_mem;
	if (vmm_arch_initrd_addr(&k, &vm.mem, total_initrd, &initrd_addr, err) < 0)
		goto out_mem;
	{
		uint8_t *dst = guest_ptr(&vm.mem, initrd_addr, total_initrd);
		if (!dst) {
			error_set(err, 0, "initrd does not fit in guest memory");
			goto out_mem;
		}
		memcpy(dst, initrd_image, initrd_len);
		memset(dst + initrd_len, 0, total_initrd - initrd_len - args.len);
		memcpy(dst + total_initrd - args.len, args.buf, args.len);
	}
	if (vmm_arch_boot_setup(&vm, &k, cmdline, initrd_addr, total_initrd, err) < 0)
		goto out_mem;
	free(steal_ptr(kernel_image));
	free(steal_ptr(initrd_image));

	/* Stage 4: devices and vCPUs. */
	if (create_devices(&vm, cfg, err) < 0)
		goto out_devices;
	vm.vcpus = xcalloc(vm.nr_vcpus, sizeof(*vm.vcpus));
	for (unsigned i = 0; i < vm.nr_vcpus; i++)
		vm.vcpus[i].fd = -1;
	for (unsigned i = 0; i < vm.nr_vcpus; i++) {
		if (vcpu_create(&vm, &vm.vcpus[i], i, err) < 0 ||
		    vmm_arch_vcpu_init(&vm, &vm.vcpus[i], err) < 0)
			goto out_vcpus;
	}
	if (vcpu_signals_init(err) < 0)
		goto out_vcpus;

	/* Stage 5: run. The console takes the signals; vCPU threads inherit the mask. */
	if (console_init(&con, &vm, cfg->shell, err) < 0)
		goto out_console;
	/* From here on the VMM only serves the guest: no privilege gain, few syscalls. */
	if (vmm_seccomp_apply(err) < 0)
		goto out_console;
	vm.t_start_ns = cfg->t_start_ns;
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
		print_timings(&vm, cfg);
	if (cfg->trace_io)
		print_refused(&vm);
	ret = report_stop(&vm, &con, err);

out_console:
	console_release(&con);
out_vcpus:
	if (vm.vcpus) {
		for (unsigned i = 0; i < vm.nr_vcpus; i++) {
			vcpu_kick(&vm.vcpus[i]);
			vcpu_release(&vm.vcpus[i]);
		}
		free(vm.vcpus);
	}
out_devices:
	serial_free(vm.console);
	serial_free(vm.errout);
out_mem:
	guest_memory_release(&vm.mem);
out_vm:
	if (vm.stop_fd >= 0)
		close(vm.stop_fd);
	if (vm.vm_fd >= 0)
		close(vm.vm_fd);
out_kvm:
	close(vm.kvm_fd);
out_args:
	cpio_release(&args);
	pthread_mutex_destroy(&vm.stop_lock);
	return ret;
}
