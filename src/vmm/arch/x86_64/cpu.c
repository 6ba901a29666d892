#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/arch/arch.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/kvm.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "common/banned.h"

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING 1ULL
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

#define MAX_CPUID_ENTRIES 256

int vmm_arch_vm_init(struct vm *vm, struct error *err)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	uint64_t identity = X86_IDENTITY_MAP_ADDR;

	/* Intel VMX needs these 3 + 1 pages of guest-physical space outside RAM for real mode. */
	if (kvm_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)X86_TSS_ADDR) < 0)
		return error_set(err, errno, "cannot set the TSS address");
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
	    kvm_ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		return error_set(err, errno, "cannot set the identity map address");
	/* LAPICs, IOAPIC and 8259s in the kernel: interrupts and HLT never leave KVM. */
	if (kvm_ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL) < 0)
		return error_set(err, errno, "cannot create the in-kernel interrupt controller");
	if (kvm_ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return error_set(err, errno, "cannot create the in-kernel PIT");
	return 0;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd, struct error *err)
{
	size_t n = MAX_CPUID_ENTRIES;

	for (int tries = 0; tries < 4; tries++, n *= 2) {
		struct kvm_cpuid2 *c = xcalloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		c->nent = (uint32_t)n;
		if (kvm_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			break;
	}
	error_set(err, errno, "cannot read the CPUID KVM supports");
	return NULL;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

/* One package of nr_cpus cores with one thread each; APIC id = vCPU index. */
static void adjust_cpuid(struct kvm_cpuid2 *c, unsigned id, unsigned nr_cpus)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | ((nr_cpus & 0xff) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: level 0 threads, level 1 cores; x2APIC id in EDX. */
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {
				e->eax = bits_for(nr_cpus);
				e->ebx = nr_cpus;
				e->ecx = (2u << 8) | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x8000001e:
			e->eax = id; /* AMD extended APIC id */
			e->ebx &= ~0xffu;
			e->ebx |= id; /* compute unit id */
			break;
		default:
			break;
		}
	}
}

static int setup_lapic(struct vcpu *vcpu, struct error *err)
{
	struct kvm_lapic_state la;
	uint32_t v;

	if (kvm_ioctl(vcpu->fd, KVM_GET_LAPIC, &la) < 0)
		return error_set(err, errno, "cannot read the LAPIC of vCPU %u", vcpu->id);
	/* As a PC BIOS leaves it: LINT0 takes the 8259 (ExtINT), LINT1 is NMI. */
	memcpy(&v, la.regs + APIC_LVT0, 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(la.regs + APIC_LVT0, &v, 4);
	memcpy(&v, la.regs + APIC_LVT1, 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(la.regs + APIC_LVT1, &v, 4);
	if (kvm_ioctl(vcpu->fd, KVM_SET_LAPIC, &la) < 0)
		return error_set(err, errno, "cannot set the LAPIC of vCPU %u", vcpu->id);
	return 0;
}

static int setup_msrs(struct vcpu *vcpu, struct error *err)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[1];
	} msrs = {
	    .hdr = {.nmsrs = 1},
	    .entries = {{.index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING}},
	};
	int r = kvm_ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);

	if (r < 0)
		return error_set(err, errno, "cannot set the MSRs of vCPU %u", vcpu->id);
	if (r != 1)
		return error_set(err, 0, "KVM refused MSR 0x%x of vCPU %u", msrs.entries[r].index,
				 vcpu->id);
	return 0;
}

/* The 64-bit boot protocol's entry state (boot.rst "64-bit Boot Protocol"). */
static int setup_boot_registers(struct vcpu *vcpu, uint64_t entry, struct error *err)
{
	struct kvm_segment code = {
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = 0x10,
	    .type = 0xb,
	    .present = 1,
	    .dpl = 0,
	    .db = 0,
	    .s = 1,
	    .l = 1,
	    .g = 1,
	};
	struct kvm_segment data = {
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = 0x18,
	    .type = 0x3,
	    .present = 1,
	    .dpl = 0,
	    .db = 1,
	    .s = 1,
	    .l = 0,
	    .g = 1,
	};
	struct kvm_segment tss = {
	    .base = 0,
	    .limit = 0x67,
	    .selector = 0x20,
	    .type = 0xb,
	    .present = 1,
	    .s = 0,
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return error_set(err, errno, "cannot read the special registers of vCPU %u",
				 vcpu->id);
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = tss;
	sregs.gdt.base = X86_GDT_ADDR;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
	sregs.cr3 = X86_PML4_ADDR;
	sregs.cr4 |= CR4_PAE;
	sregs.efer |= EFER_LME | EFER_LMA;
	if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return error_set(err, errno, "cannot set the special registers of vCPU %u",
				 vcpu->id);

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry;
	regs.rsi = X86_BOOT_PARAMS_ADDR;
	regs.rsp = regs.rbp = X86_BOOT_STACK_ADDR;
	if (kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return error_set(err, errno, "cannot set the registers of vCPU %u", vcpu->id);

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (kvm_ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return error_set(err, errno, "cannot set the FPU of vCPU %u", vcpu->id);
	return 0;
}

int vmm_arch_vcpu_init(struct vm *vm, struct vcpu *vcpu, struct error *err)
{
	_cleanup_free_ struct kvm_cpuid2 *cpuid = supported_cpuid(vm->kvm_fd, err);

	if (!cpuid)
		return -1;
	adjust_cpuid(cpuid, vcpu->id, vm->nr_vcpus);
	if (kvm_ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
		return error_set(err, errno, "cannot set the CPUID of vCPU %u", vcpu->id);
	if (setup_msrs(vcpu, err) < 0 || setup_lapic(vcpu, err) < 0)
		return -1;
	/* Application processors wait for INIT/SIPI from the boot CPU in the in-kernel LAPIC. */
	if (vcpu->id == 0)
		return setup_boot_registers(vcpu, vm->boot_entry, err);
	return 0;
}
