#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "common/util.h"
#include "vmm/seccomp.h"
#include "common/banned.h"

#ifndef __x86_64__
#error "the seccomp allow-list is written for x86-64"
#endif

#define X32_SYSCALL_BIT 0x40000000

static const int allowed[] = {
    /* Serving the guest. */
    SYS_ioctl,
    SYS_read,
    SYS_write,
    SYS_poll,
    SYS_ppoll,
    /* The devices' event loop (vmm/evloop.c): waiting, and a handler dropping its fd. */
    SYS_epoll_wait,
    SYS_epoll_pwait,
    SYS_epoll_ctl,
    SYS_close,
    /* virtio-rng fills the guest's buffers (vmm/devices/virtio_rng.c). */
    SYS_getrandom,
    SYS_lseek,
    SYS_clock_gettime,
    SYS_clock_nanosleep,
    SYS_nanosleep,
    SYS_futex,
    SYS_sched_yield,
    SYS_getpid,
    SYS_gettid,
    SYS_tgkill,
    SYS_rt_sigreturn,
    SYS_rt_sigprocmask,
    SYS_rt_sigaction,
    SYS_sigaltstack,
    SYS_restart_syscall,
    /* Disks (vmm/disk) served by virtio-blk in the event loop. */
    SYS_pread64,
    SYS_pwrite64,
    SYS_preadv,
    SYS_pwritev,
    SYS_fdatasync,
    SYS_fsync,
    SYS_fallocate,
    /* Memory: malloc, thread stacks. */
    SYS_brk,
    SYS_mmap,
    SYS_munmap,
    SYS_mprotect,
    SYS_madvise,
    SYS_mremap,
    /* Starting and ending vCPU threads and the process. */
    SYS_clone,
    SYS_clone3,
    SYS_set_robust_list,
    SYS_rseq,
    SYS_exit,
    SYS_exit_group,
    SYS_sched_getaffinity,
    /* stdio on stdout/stderr. */
    SYS_fstat,
    SYS_newfstatat,
};

int vmm_seccomp_apply(struct error *err)
{
	size_t n = ARRAY_SIZE(allowed), len = 0;
	struct sock_filter *f = xcalloc(n + 8, sizeof(*f));
	struct sock_fprog prog;
	int r;

	f[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						offsetof(struct seccomp_data, arch));
	f[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						offsetof(struct seccomp_data, nr));
	f[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
	f[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	for (size_t i = 0; i < n; i++)
		/* Equal: skip to the ALLOW at the end; else fall through to the next test. */
		f[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							(unsigned)allowed[i], (uint8_t)(n - i), 0);
	f[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
	f[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)len;
	prog.filter = f;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		free(f);
		return error_set(err, errno, "cannot set no_new_privs");
	}
	/* Without TSYNC: the vCPU threads start after this and inherit the filter. */
	r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	free(f);
	if (r < 0)
		return error_set(err, errno, "cannot install the VMM's seccomp filter");
	return 0;
}
