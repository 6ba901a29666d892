/*
 * `hutch vm run --disk FILE[,ro][,overlay][,format=raw|qcow2]` and the VM's
 * store: each disk spec parsed, every image checked before anything is
 * made, then the overlays made (or found again) in
 * $HUTCH_HOME/vms/NAME/diskN.qcow2 (docs/vm.md).
 */
#ifndef HUTCH_CLI_VM_DISK_H
#define HUTCH_CLI_VM_DISK_H

#include <stdbool.h>

#include "common/error.h"
#include "vmm/vmm.h"

#define VM_NAME_MAX 64
#define VM_DEFAULT_NAME "default"

struct vm_disk_spec {
	char *file; /* as given */
	bool ro, overlay;
	enum disk_format format; /* AUTO unless format= */
};

/* Parse one --disk argument into *s (freed by vm_disk_spec_release). */
int vm_disk_parse(const char *arg, struct vm_disk_spec *s, struct error *err);
void vm_disk_spec_release(struct vm_disk_spec *s);

/* 1-64 of [A-Za-z0-9._+@-], not starting with '.' or '-'. */
int vm_name_check(const char *name, struct error *err);

/* What vm_disks_prepare() made in the VM's store, for vm_disks_unmake(). */
struct vm_store_made {
	char *files[2 * VMM_MAX_DISKS]; /* diskN.qcow2 and diskN.base */
	char *dirs[3];                  /* the VM's folder, vms/, the store: deepest first */
	unsigned nr_files, nr_dirs;
};

/*
 * Check every disk of specs (n <= VMM_MAX_DISKS) as it will be opened,
 * then make the overlays of VM name and fill cfg->disks; paths[] takes the
 * strings cfg points to (freed by the caller, n of them). Nothing is
 * created unless every disk passed; *made lists what was.
 */
int vm_disks_prepare(const struct vm_disk_spec *specs, unsigned n, const char *name,
		     struct vmm_config *cfg, char **paths, struct vm_store_made *made,
		     struct error *err);

/*
 * Remove what *made lists (a VM refused before its guest ran has written
 * nothing there), or with undo false only forget it; *made is released.
 */
void vm_disks_unmake(struct vm_store_made *made, bool undo);

#endif
