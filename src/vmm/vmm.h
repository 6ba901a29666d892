/*
 * hutch's KVM virtual machine monitor: boot a Linux micro-VM, run one
 * command (or a shell) inside it, and return its exit status.
 */
#ifndef HUTCH_VMM_VMM_H
#define HUTCH_VMM_VMM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "vmm/disk/disk.h"

#define VMM_DEFAULT_MEMORY (256ULL << 20)
#define VMM_DEFAULT_CPUS 1
#define VMM_MAX_DISKS 8

/* A disk the guest gets as a virtio-blk device (/dev/vda, /dev/vdb, ... in order). */
struct vmm_disk {
	const char *path;	  /* the image (for ,overlay: the overlay in the VM's store) */
	enum disk_format format; /* AUTO: probed */
	bool read_only;
};

struct vmm_config {
	const char *kernel; /* bzImage path */
	const char *initrd; /* initramfs path (hutch's own by default) */
	const char *append; /* extra kernel command line, may be NULL */
	uint64_t memory;    /* guest RAM in bytes: exactly what the guest gets */
	unsigned cpus;
	bool shell;	     /* interactive shell on the console instead of argv */
	bool trace_io;	     /* log every refused port/MMIO access */
	bool timings;	     /* print boot timings on stderr */
	char *const *argv;   /* command to run in the guest, NULL-terminated */
	unsigned nr_disks;
	struct vmm_disk disks[VMM_MAX_DISKS];
	uint64_t t_start_ns; /* when hutch started (CLOCK_MONOTONIC), for --timings */
};

/*
 * Run the VM described by cfg until it stops. Returns the guest command's
 * exit status (0-255, 128+N if a signal killed it in the guest). Returns -1
 * with err filled on failure or when the guest stops without reporting a
 * status (panic, reboot, triple fault, KVM error): hutch exits 125. When a
 * host signal stopped the VM it returns 128+signal with err saying so.
 * Whenever err->msg is not empty the caller should print it. Prints nothing
 * itself except --timings and --trace-io output. *started says whether the
 * guest ran at all (false: refused before any vCPU started, so the guest
 * wrote nothing to its disks).
 */
int vmm_run(const struct vmm_config *cfg, bool *started, struct error *err);

/*
 * The folder holding the default guest kernel and initramfs: $HUTCH_VM_DIR,
 * else vm/ beside the hutch binary (build/vm) if it has a kernel, else
 * ../lib/hutch/vm from the binary's folder (PREFIX/lib/hutch/vm, where
 * `make install` puts them) if it has one, else $XDG_CACHE_HOME/hutch/vm
 * (~/.cache/hutch/vm). Caller frees.
 */
char *vmm_assets_dir(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t vmm_now_ns(void);

#endif
