/* What a VM boots: the kernel, the initramfs and the command, checked, then loaded into guest RAM. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/arch/arch.h"
#include "vmm/cpio.h"
#include "vmm/vm.h"
#include "vmm/vmm.h"
#include "common/banned.h"

#define MIB ((uint64_t)1 << 20)
/* Kernels and initramfs files larger than this are not what hutch boots. */
#define MAX_IMAGE_SIZE (1ULL << 30)
/* Smallest VM: below this not even a tiny kernel gets to init. */
#define MIN_MEMORY (32 * MIB)

static bool has_kernel(const char *dir)
{
	_cleanup_free_ char *p = xasprintf("%s/vmlinux", dir);

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

/* Open a regular file of at most max bytes; its size in *size. */
static int open_image(const char *path, const char *what, uint64_t max, uint64_t *size,
		      struct error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return error_set(err, errno, "cannot open %s '%s'", what, path);
	if (fstat(fd, &st) < 0)
		return error_set(err, errno, "cannot stat %s '%s'", what, path);
	if (!S_ISREG(st.st_mode))
		return error_set(err, 0, "%s '%s' is not a regular file", what, path);
	if ((uint64_t)st.st_size > max)
		return error_set(err, 0, "%s '%s' is larger than %" PRIu64 " MiB", what, path,
				 max / MIB);
	*size = (uint64_t)st.st_size;
	return steal_fd(&fd);
}

/* Read the first at most max bytes of the file open at fd; how many in *len. */
static uint8_t *read_head(int fd, uint64_t size, uint64_t max, const char *what,
			  const char *path, size_t *len, struct error *err)
{
	size_t want = (size_t)(size < max ? size : max);
	_cleanup_free_ uint8_t *buf = xmalloc(want + 1);
	ssize_t n = read_all(fd, buf, want);

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

int vm_boot_prepare(struct vm_boot *b, const struct vmm_config *cfg, struct error *err)
{
	uint64_t min_mem, kernel_size;
	size_t head_len;

	memset(b, 0, sizeof(*b));
	b->kernel_fd = -1;
	b->initrd_fd = -1;
	build_command_archive(cfg, &b->args);
	/* Only the headers now: the segments go from the file to guest RAM at load. */
	b->kernel_path = cfg->kernel;
	b->kernel_fd = open_image(cfg->kernel, "kernel", MAX_IMAGE_SIZE, &kernel_size, err);
	if (b->kernel_fd < 0)
		return -1;
	b->kernel_head = read_head(b->kernel_fd, kernel_size, VMM_KERNEL_HEAD_MAX, "kernel",
				   cfg->kernel, &head_len, err);
	if (!b->kernel_head)
		return -1;
	if (vmm_arch_kernel_parse(b->kernel_head, head_len, kernel_size, &b->k, err) < 0)
		return error_prefix(err, "cannot boot '%s'", cfg->kernel);
	/* Opened now, copied at load: from the file to guest RAM, no copy in between. */
	b->initrd_path = cfg->initrd;
	b->initrd_fd = open_image(cfg->initrd, "initrd", MAX_IMAGE_SIZE, &b->initrd_len, err);
	if (b->initrd_fd < 0)
		return -1;
	/* The command archive follows the initramfs at the next 4-byte boundary. */
	b->total_initrd = ((b->initrd_len + 3) & ~(uint64_t)3) + b->args.len;
	min_mem = vmm_arch_min_memory(&b->k, b->total_initrd);
	if (min_mem < MIN_MEMORY)
		min_mem = MIN_MEMORY;
	if (cfg->memory < min_mem && cfg->memory >= vmm_arch_min_memory(&b->k, 0) &&
	    cfg->memory >= MIN_MEMORY)
		return error_set(err, 0,
				 "initrd '%s' (%" PRIu64 " MiB) is too large for --memory %" PRIu64
				 " MiB: booting it needs at least %" PRIu64 " MiB",
				 cfg->initrd, (uint64_t)(b->initrd_len + MIB - 1) / MIB,
				 cfg->memory / MIB, min_mem / MIB);
	if (cfg->memory < min_mem)
		return error_set(err, 0,
				 "--memory %" PRIu64 " MiB is too small: this kernel and initrd need "
				 "at least %" PRIu64 " MiB",
				 cfg->memory / MIB, min_mem / MIB);
	if (cfg->memory % 4096)
		return error_set(err, 0, "--memory must be a multiple of 4 KiB");
	if (check_host_memory(cfg->memory, err) < 0)
		return -1;
	b->cmdline = build_cmdline(cfg);
	if (strlen(b->cmdline) > b->k.cmdline_max)
		return error_set(err, 0,
				 "kernel command line is %zu bytes, this kernel takes at most %" PRIu64,
				 strlen(b->cmdline), b->k.cmdline_max);
	return 0;
}

int vm_load_kernel_segments(struct guest_memory *mem, const struct vmm_kernel *k, int fd,
			    const char *path, struct error *err)
{
	for (unsigned i = 0; i < k->nr_segments; i++) {
		const struct vmm_kernel_segment *seg = &k->segments[i];
		uint8_t *dst = guest_ptr(mem, seg->gpa, seg->memsz);

		if (!dst)
			return error_set(err, 0, "guest memory too small for the kernel");
		if (guest_memory_read_file(mem, seg->gpa, fd, seg->offset, seg->filesz) < 0)
			return errno ? error_set(err, errno, "cannot read kernel '%s'", path)
				     : error_set(err, 0, "kernel '%s' got shorter while it was loaded",
						 path);
		memset(dst + seg->filesz, 0, seg->memsz - seg->filesz);
	}
	return 0;
}

int vm_boot_load(struct vm *vm, struct vm_boot *b, uint64_t memory, struct error *err)
{
	struct guest_region layout[VMM_MAX_REGIONS];
	unsigned n = vmm_arch_memory_layout(memory, layout, VMM_MAX_REGIONS);
	uint64_t initrd_addr;
	uint8_t *dst;

	if (guest_memory_init(&vm->mem, memory, layout, n, err) < 0 ||
	    guest_memory_register(&vm->mem, vm->vm_fd, err) < 0 ||
	    vmm_arch_initrd_addr(&b->k, &vm->mem, b->total_initrd, &initrd_addr, err) < 0)
		return -1;
	dst = guest_ptr(&vm->mem, initrd_addr, b->total_initrd);
	if (!dst)
		return error_set(err, 0, "initrd does not fit in guest memory");
	if (guest_memory_read_file(&vm->mem, initrd_addr, b->initrd_fd, 0, b->initrd_len) < 0)
		return errno ? error_set(err, errno, "cannot read initrd '%s'", b->initrd_path)
			     : error_set(err, 0, "initrd '%s' got shorter while it was loaded",
					 b->initrd_path);
	memset(dst + b->initrd_len, 0, b->total_initrd - b->initrd_len - b->args.len);
	memcpy(dst + b->total_initrd - b->args.len, b->args.buf, b->args.len);
	if (vm_load_kernel_segments(&vm->mem, &b->k, b->kernel_fd, b->kernel_path, err) < 0 ||
	    vmm_arch_boot_setup(vm, &b->k, b->cmdline, initrd_addr, b->total_initrd, err) < 0)
		return -1;
	vm->boot_entry = b->k.entry;
	/* In guest RAM now: the files go. */
	close(b->kernel_fd);
	b->kernel_fd = -1;
	close(b->initrd_fd);
	b->initrd_fd = -1;
	return 0;
}

void vm_boot_release(struct vm_boot *b)
{
	if (b->kernel_fd >= 0)
		close(b->kernel_fd);
	if (b->initrd_fd >= 0)
		close(b->initrd_fd);
	free(b->kernel_head);
	free(b->cmdline);
	cpio_release(&b->args);
	memset(b, 0, sizeof(*b));
	b->kernel_fd = -1;
	b->initrd_fd = -1;
}
