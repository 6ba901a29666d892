/*
 * /dev/kvm: opening it with an actionable error, and asking what it allows.
 */
#ifndef HUTCH_VMM_KVM_H
#define HUTCH_VMM_KVM_H

#include "common/error.h"

/* The device path: $HUTCH_KVM_DEVICE if set (tests point it elsewhere), else /dev/kvm. */
const char *kvm_device_path(void);

/*
 * Open the KVM device read-write and check its API version. On failure the
 * message says whether the device is missing or not accessible, and how to
 * fix that.
 */
int kvm_open(struct error *err);

/* Most vCPUs one VM may have (KVM_CAP_MAX_VCPUS, else KVM_CAP_NR_VCPUS, else 4). */
unsigned kvm_max_vcpus(int kvm_fd);

/* ioctl() retried on EINTR. */
int kvm_ioctl(int fd, unsigned long req, void *arg);

#endif
