/* hutch vm run: a command in a KVM micro-VM (src/vmm/). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/vm_disk.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "vmm/vmm.h"
#include "common/banned.h"

static void vm_usage(FILE *f)
{
	fprintf(f,
		"usage: hutch vm run [options] [--] COMMAND [ARG...]\n"
		"       hutch vm run [options] --shell\n"
		"       hutch vm assets\n\n"
		"Boot a micro-VM under KVM, run COMMAND in it, stream its output and exit\n"
		"with its status. Guest stdout is the host's stdout, byte for byte, guest\n"
		"stderr the host's stderr; the command's stdin is empty.\n\n"
		"options:\n"
		"  --cpus N          virtual CPUs (default %d)\n"
		"  --memory SIZE     guest RAM, e.g. 512M or 2G (default %lluM)\n"
		"  --kernel FILE     kernel to boot, an ELF vmlinux or a bzImage (default:\n"
		"                    vmlinux in the asset folder)\n"
		"  --initrd FILE     initramfs (default: initramfs.cpio in the asset folder)\n"
		"  --append ARGS     extra kernel command line\n"
		"  --disk FILE[,ro][,overlay][,format=raw|qcow2]\n"
		"                    a virtio-blk disk (/dev/vda, vdb, ... in order; up to %d);\n"
		"                    overlay: writes go to a qcow2 overlay in the VM's store,\n"
		"                    the image itself is never written\n"
		"  --name NAME       the VM whose store keeps the overlays (default '%s')\n"
		"  --shell           interactive shell on the guest console (Ctrl-A x quits)\n"
		"  --trace-io        log every refused port and MMIO access, and count them\n"
		"  --timings         print when the vCPUs and guest init started, and the VM stopped\n\n"
		"The asset folder is $HUTCH_VM_DIR, else build/vm next to the hutch binary,\n"
		"else ../lib/hutch/vm from the binary's folder (where 'make install' puts\n"
		"them), else $XDG_CACHE_HOME/hutch/vm (~/.cache/hutch/vm); 'make vm-assets'\n"
		"fills it. 'hutch vm assets' prints the one in use and exits 1 when its\n"
		"kernel or initramfs is missing. See docs/vm.md.\n",
		VMM_DEFAULT_CPUS, VMM_DEFAULT_MEMORY >> 20, VMM_MAX_DISKS, VM_DEFAULT_NAME);
}

enum {
	OPT_CPUS = 256,
	OPT_MEMORY,
	OPT_KERNEL,
	OPT_INITRD,
	OPT_APPEND,
	OPT_DISK,
	OPT_NAME,
	OPT_SHELL,
	OPT_TRACE_IO,
	OPT_TIMINGS,
	OPT_HELP
};

static unsigned parse_cpus(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > 4096)
		usage_error("vm ", "invalid --cpus '%s'", s);
	if (v == 0)
		usage_error("vm ", "--cpus 0: a VM needs at least one vCPU");
	return (unsigned)v;
}

/*
 * dir/file, the default guest kernel or initramfs (what), or exit 125 if it
 * is not there to read, naming the option (--kernel, --initrd) that gives another.
 */
static char *default_asset(const char *dir, const char *file, const char *what)
{
	char *path = xasprintf("%s/%s", dir, file);
	const char *option = strcmp(what, "kernel") ? "--initrd" : "--kernel";

	if (access(path, R_OK) < 0)
		die(EXIT_HUTCH_FAILED, "no guest %s at '%s': run 'make vm-assets' or pass %s", what,
		    path, option);
	return path;
}

static int vm_run(int argc, char **argv, uint64_t t_start)
{
	static const struct option opts[] = {
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"kernel", required_argument, NULL, OPT_KERNEL},
	    {"initrd", required_argument, NULL, OPT_INITRD},
	    {"append", required_argument, NULL, OPT_APPEND},
	    {"disk", required_argument, NULL, OPT_DISK},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"shell", no_argument, NULL, OPT_SHELL},
	    {"trace-io", no_argument, NULL, OPT_TRACE_IO},
	    {"timings", no_argument, NULL, OPT_TIMINGS},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct vmm_config cfg = {
	    .memory = VMM_DEFAULT_MEMORY,
	    .cpus = VMM_DEFAULT_CPUS,
	    .t_start_ns = t_start,
	};
	_cleanup_free_ char *dir = NULL, *kernel = NULL, *initrd = NULL;
	struct vm_disk_spec disks[VMM_MAX_DISKS];
	char *disk_paths[VMM_MAX_DISKS];
	struct vm_store_made made;
	bool started;
	unsigned nr_disks = 0;
	const char *name = VM_DEFAULT_NAME;
	struct error err = {0};
	int c, status;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CPUS:
			cfg.cpus = parse_cpus(optarg);
			break;
		case OPT_MEMORY:
			if (parse_size("--memory", optarg, &cfg.memory, &err) < 0) {
				error_print(&err);
				return EXIT_HUTCH_FAILED;
			}
			break;
		case OPT_KERNEL:
			cfg.kernel = optarg;
			break;
		case OPT_INITRD:
			cfg.initrd = optarg;
			break;
		case OPT_APPEND:
			cfg.append = optarg;
			break;
		case OPT_DISK:
			if (nr_disks == VMM_MAX_DISKS)
				usage_error("vm ", "too many disks: at most %d --disk", VMM_MAX_DISKS);
			if (vm_disk_parse(optarg, &disks[nr_disks], &err) < 0)
				usage_error("vm ", "%s", err.msg);
			nr_disks++;
			break;
		case OPT_NAME:
			if (vm_name_check(optarg, &err) < 0)
				usage_error("vm ", "%s", err.msg);
			name = optarg;
			break;
		case OPT_SHELL:
			cfg.shell = true;
			break;
		case OPT_TRACE_IO:
			cfg.trace_io = true;
			break;
		case OPT_TIMINGS:
			cfg.timings = true;
			break;
		case 'h':
		case OPT_HELP:
			vm_usage(stdout);
			return 0;
		default:
			if (optopt)
				usage_error("vm ", "unknown or incomplete option '%s'",
					    argv[optind - 1]);
			usage_error("vm ", "unknown option '%s'", argv[optind - 1]);
		}
	}
	cfg.argv = argv + optind;
	if (cfg.shell && optind < argc)
		usage_error("vm ", "--shell takes no command");
	if (!cfg.shell && optind >= argc)
		usage_error("vm ", "missing command to run in the VM");
	if (!cfg.kernel || !cfg.initrd) {
		dir = vmm_assets_dir();
		if (!cfg.kernel)
			cfg.kernel = kernel = default_asset(dir, "vmlinux", "kernel");
		if (!cfg.initrd)
			cfg.initrd = initrd = default_asset(dir, "initramfs.cpio", "initramfs");
	}
	if (vm_disks_prepare(disks, nr_disks, name, &cfg, disk_paths, &made, &err) < 0) {
		error_print(&err);
		return EXIT_HUTCH_FAILED;
	}
	status = vmm_run(&cfg, &started, &err);
	if (err.msg[0])
		error_print(&err);
	/* Refused before the guest ran: the overlays this run made go again. */
	vm_disks_unmake(&made, !started);
	for (unsigned i = 0; i < nr_disks; i++) {
		free(disk_paths[i]);
		vm_disk_spec_release(&disks[i]);
	}
	return status < 0 ? EXIT_HUTCH_FAILED : status;
}

/*
 * hutch vm assets: the folder the defaults come from, so that a user (and
 * the install test) can see where an installed hutch looks without a VM.
 */
static int vm_assets(int argc, char **argv)
{
	_cleanup_free_ char *dir = NULL;
	static const char *const needed[] = {"vmlinux", "initramfs.cpio"};
	int status = 0;

	if (argc > 1)
		usage_error("vm ", "unexpected argument '%s'", argv[1]);
	dir = vmm_assets_dir();
	printf("%s\n", dir);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_errno(EXIT_HUTCH_FAILED, "cannot write the asset folder");
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, needed[i]);
		if (access(p, R_OK) < 0) {
			fprintf(stderr, "hutch: no '%s' in '%s': %s (run 'make vm-assets')\n",
				needed[i], dir, strerror(errno));
			status = 1;
		}
	}
	return status;
}

int cmd_vm(int argc, char **argv)
{
	uint64_t t_start = vmm_now_ns();

	if (argc < 2)
		usage_error("vm ", "missing subcommand (run or assets)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		vm_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return vm_run(argc - 1, argv + 1, t_start);
	if (!strcmp(argv[1], "assets"))
		return vm_assets(argc - 1, argv + 1);
	usage_error("vm ", "unknown subcommand '%s'", argv[1]);
}
