/*
 * syscall_probe NAME...: make each named call with harmless arguments and
 * print "NAME ERRNO-NAME" (or "NAME ok"), one line each, so a test reads
 * what the box's filter answered without parsing a program's messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

static long call(const char *name)
{
	if (!strcmp(name, "kexec_load"))
		return syscall(SYS_kexec_load, 0, 0, NULL, 0);
	if (!strcmp(name, "init_module"))
		return syscall(SYS_init_module, NULL, 0, "");
	if (!strcmp(name, "finit_module"))
		return syscall(SYS_finit_module, -1, "", 0);
	if (!strcmp(name, "delete_module"))
		return syscall(SYS_delete_module, "hutch_none", 0);
	if (!strcmp(name, "bpf"))
		return syscall(SYS_bpf, 0, NULL, 0);
	if (!strcmp(name, "perf_event_open"))
		return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
	if (!strcmp(name, "keyctl"))
		return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
	if (!strcmp(name, "add_key"))
		return syscall(SYS_add_key, "user", "hutch", "x", 1, KEY_SPEC_SESSION_KEYRING);
	if (!strcmp(name, "request_key"))
		return syscall(SYS_request_key, "user", "hutch", NULL, 0);
	if (!strcmp(name, "userfaultfd"))
		return syscall(SYS_userfaultfd, 0);
	if (!strcmp(name, "open_by_handle_at"))
		return syscall(SYS_open_by_handle_at, -1, NULL, 0);
	if (!strcmp(name, "reboot"))
		return syscall(SYS_reboot, 0, 0, 0, NULL);
	if (!strcmp(name, "swapon"))
		return syscall(SYS_swapon, "/nonexistent", 0);
	if (!strcmp(name, "swapoff"))
		return syscall(SYS_swapoff, "/nonexistent");
	if (!strcmp(name, "acct"))
		return syscall(SYS_acct, NULL);
	if (!strcmp(name, "mount"))
		return mount("none", "/", "tmpfs", 0, NULL);
	if (!strcmp(name, "unshare-user"))
		return unshare(CLONE_NEWUSER);
	if (!strcmp(name, "clone-user"))
		return syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
	if (!strcmp(name, "tiocsti")) {
		char c = 'x';
		return ioctl(STDIN_FILENO, TIOCSTI, &c);
	}
	/* A ring of one entry, as liburing's probes make: params zeroed. */
	if (!strcmp(name, "io_uring_setup")) {
		long params[15] = {0}; /* struct io_uring_params is 120 bytes */
		long fd = syscall(SYS_io_uring_setup, 1, params);
		if (fd >= 0)
			close((int)fd);
		return fd < 0 ? -1 : 0;
	}
	if (!strcmp(name, "io_uring_enter"))
		return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
	if (!strcmp(name, "io_uring_register"))
		return syscall(SYS_io_uring_register, -1, 0, NULL, 0);
	if (!strcmp(name, "getpid"))
		return syscall(SYS_getpid) > 0 ? 0 : -1;
	/* On itself: allowed wherever a filter does not refuse the call. */
	if (!strcmp(name, "process_vm_readv")) {
		char from = 'x', to = 0;
		struct iovec local = {.iov_base = &to, .iov_len = 1};
		struct iovec remote = {.iov_base = &from, .iov_len = 1};
		return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) == 1 ? 0 : -1;
	}
	if (!strcmp(name, "ptrace"))
		return syscall(SYS_ptrace, PTRACE_PEEKUSER, getppid(), NULL, NULL);
	/* The box's PID 1: its supervisor's notification fd is its fd 3 or above. */
	if (!strcmp(name, "attach-pid1"))
		return syscall(SYS_ptrace, PTRACE_ATTACH, 1, NULL, NULL);
	if (!strcmp(name, "getfd-pid1")) {
		long pidfd = syscall(SYS_pidfd_open, 1, 0);
		if (pidfd < 0)
			return -1;
		for (int fd = 3; fd < 64; fd++) {
			long got = syscall(SYS_pidfd_getfd, (int)pidfd, fd, 0);
			if (got >= 0 || errno != EBADF) {
				close((int)pidfd);
				return got;
			}
		}
		close((int)pidfd);
		return -1;
	}
	errno = EINVAL;
	return -2;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		errno = 0;
		long r = call(argv[i]);
		if (r == -2) {
			printf("%s unknown-probe\n", argv[i]);
		} else if (r == 0 && !strcmp(argv[i], "clone-user")) {
			_exit(0); /* the child, had the clone worked */
		} else if (r >= 0) {
			printf("%s ok\n", argv[i]);
		} else {
			printf("%s %s\n", argv[i], strerrorname_np(errno));
		}
		fflush(stdout);
	}
	return 0;
}
