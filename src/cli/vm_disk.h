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

/*
 * Check every disk of specs (n <= VMM_MAX_DISKS) as it will be opened,
 * then make the overlays of VM name and fill cfg->disks; paths[] takes the
 * strings cfg points to (freed by the caller, n of them). Nothing is
 * created unless every disk passed.
 */
int vm_disks_prepare(const struct vm_disk_spec *specs, unsigned n, const char *name,
		     struct vmm_config *cfg, char **paths, struct error *err);

#endif
