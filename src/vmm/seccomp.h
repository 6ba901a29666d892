/*
 * The VMM's own confinement once the VM is built: no_new_privs and a
 * seccomp allow-list of the system calls its threads need to serve the
 * guest (KVM ioctls, console I/O, thread start and exit). Everything else
 * fails with EPERM; another architecture's or x32 system calls kill it.
 */
#ifndef HUTCH_VMM_SECCOMP_H
#define HUTCH_VMM_SECCOMP_H

#include "common/error.h"

int vmm_seccomp_apply(struct error *err);

#endif
