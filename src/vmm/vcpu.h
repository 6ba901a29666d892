/*
 * vCPUs: one host thread each, running KVM_RUN and dispatching its exits
 * to the buses until the VM stops.
 */
#ifndef HUTCH_VMM_VCPU_H
#define HUTCH_VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <linux/kvm.h>

#include "common/error.h"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/* Create vCPU id (KVM_CREATE_VCPU) and map its kvm_run area. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned id, struct error *err);

/* Start the vCPU's thread. Call with the host signals blocked that only the main thread takes. */
int vcpu_start(struct vcpu *vcpu, struct error *err);

/* Make a running vCPU leave KVM_RUN and see that the VM stops. */
void vcpu_kick(struct vcpu *vcpu);

/* Wait for the thread, then unmap and close. Safe on a vCPU never created. */
void vcpu_release(struct vcpu *vcpu);

/* Install the no-op handler of the kick signal; once per process. */
int vcpu_signals_init(struct error *err);

#endif
