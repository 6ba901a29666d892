#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "policy/eventlog.h"
#include "policy/seccomp.h"
#include "common/banned.h"

/*
 * The deny-list, after Docker's default profile and firejail's default
 * group: calls that reach the host kernel's most dangerous surfaces or let
 * a program out of its box. Each returns EPERM, so programs degrade as they
 * would without the privilege.
 */
static const char *const denied_default[] = {
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"create_module", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
	"userfaultfd", "open_by_handle_at", "reboot", "swapon", "swapoff", "acct",
	/* New mounts: the box's view of the filesystem is hutch's, not the program's. */
	"mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsconfig", "fsmount",
	"fspick", "open_tree", "mount_setattr",
	"setns", "quotactl", "quotactl_fd", "nfsservctl", "lookup_dcookie", "iopl", "ioperm",
	"uselib", "vhangup", "syslog", "settimeofday", "clock_settime", "clock_adjtime",
	"adjtimex", "get_kernel_syms", "query_module", "_sysctl", "vm86", "vm86old",
	"name_to_handle_at",
	/* Closed by Docker's default profile too since 2023 (moby#46762): see io_uring_why. */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
};

/*
 * io_uring runs a ring's operations (openat, connect, and more) in the
 * kernel, on the ring's own workers, without passing through seccomp:
 * the supervisor would never see them, and no filter could refuse them.
 * It has also been the largest source of kernel privilege escalations of
 * recent years (Google closed it on ChromeOS, Android and its servers in
 * 2023 for that reason). Programs that probe for it (fio, liburing users,
 * libuv, QEMU) fall back to plain syscalls on EPERM.
 */
static const char io_uring_why[] =
	"its operations (openat, connect and more) run in the kernel without passing "
	"through seccomp, so the box could neither see nor refuse them";

/* strict adds what a box rarely needs and attackers often use. */
static const char *const denied_strict[] = {
	"ptrace", "process_vm_readv", "process_vm_writev", "personality", "unshare", "kcmp",
	"memfd_secret", "pidfd_getfd",
};

/* Seen and logged by the supervisor, then let through. */
static const char *const watched[] = {"execve", "execveat", "connect", "bind"};

static int add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
	       const struct scmp_arg_cmp *cmp, struct error *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	int r;

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (r < 0 && r != -EEXIST)
		return error_set(err, -r, "cannot add '%s' to the syscall filter", name);
	return 0;
}

/*
 * The filter binds the supervisor's own thread too (it is loaded into PID
 * 1 for every program to inherit). In strict mode it sends
 * process_vm_readv to the supervisor, which would then wait on itself:
 * there the supervisor reads the programs' memory through /proc/PID/mem.
 */
static bool vm_readv_filtered;

int seccomp_install(enum seccomp_mode mode, bool pin_cpus, struct error *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	struct scmp_arg_cmp newuser = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER);
	struct scmp_arg_cmp tiocsti = SCMP_A1(SCMP_CMP_EQ, TIOCSTI);
	struct scmp_arg_cmp tioclinux = SCMP_A1(SCMP_CMP_EQ, TIOCLINUX);
	struct scmp_arg_cmp vsock = SCMP_A0(SCMP_CMP_EQ, AF_VSOCK);
	int fd = -1;

	if (!ctx)
		return error_set(err, ENOMEM, "cannot build the syscall filter");
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; i < ARRAY_SIZE(watched); i++)
		if (add(ctx, SCMP_ACT_NOTIFY, watched[i], 0, NULL, err) < 0)
			goto out;
	for (size_t i = 0; i < ARRAY_SIZE(denied_default); i++)
		if (add(ctx, SCMP_ACT_NOTIFY, denied_default[i], 0, NULL, err) < 0)
			goto out;
	vm_readv_filtered = mode == FILTER_STRICT;
	if (mode == FILTER_STRICT)
		for (size_t i = 0; i < ARRAY_SIZE(denied_strict); i++)
			if (add(ctx, SCMP_ACT_NOTIFY, denied_strict[i], 0, NULL, err) < 0)
				goto out;
	/* New user namespaces: unshare and clone by flag. */
	if ((mode != FILTER_STRICT &&
	     add(ctx, SCMP_ACT_NOTIFY, "unshare", 1, &newuser, err) < 0) ||
	    add(ctx, SCMP_ACT_NOTIFY, "clone", 1, &newuser, err) < 0 ||
	    /* Typing into the terminal of whoever reads it (CVE-2017-5226 in bwrap). */
	    add(ctx, SCMP_ACT_NOTIFY, "ioctl", 1, &tiocsti, err) < 0 ||
	    add(ctx, SCMP_ACT_NOTIFY, "ioctl", 1, &tioclinux, err) < 0)
		goto out;
	if (pin_cpus && add(ctx, SCMP_ACT_NOTIFY, "sched_setaffinity", 0, NULL, err) < 0)
		goto out;
	/*
	 * vsock is no network namespace's: from any box it reaches the
	 * hypervisor (CID 2) when the host is a VM, and the host's own vsock
	 * listeners (CID 1), past --net none and the --allow rules alike.
	 * As if the kernel had no vsock (Docker's default profile allows no
	 * socket family it does not know either).
	 */
	if (add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &vsock, err) < 0)
		goto out;
	/*
	 * clone3 passes its flags in memory, where no filter can look: answer
	 * ENOSYS, and glibc falls back to clone, whose flags are checked
	 * (Docker does the same). Not logged: every new thread would be.
	 */
	if (add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err) < 0)
		goto out;
	int r = seccomp_load(ctx);
	if (r < 0) {
		error_set(err, -r, "cannot load the syscall filter");
		goto out;
	}
	fd = seccomp_notify_fd(ctx);
	if (fd < 0)
		error_set(err, -fd, "cannot get the supervisor's notification fd");
out:
	seccomp_release(ctx);
	return fd;
}

/* read_mem() where process_vm_readv is filtered: pread of /proc/PID/mem (the box's /proc). */
static ssize_t read_mem_proc(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || addr > (uint64_t)INT64_MAX)
		return -1;
	n = pread(fd, buf, len, (off_t)addr);
	if (n >= 0 || errno != EIO || len <= 1)
		return n;
	/* A string near the end of a mapping: what is there, up to the page's end. */
	size_t page = 4096, first = page - (addr % page);
	return first < len ? pread(fd, buf, first, (off_t)addr) : -1;
}

/*
 * Read len bytes at addr in pid's memory: one process_vm_readv, no /proc
 * file to open. Whatever is read may change right after; see the header.
 */
static ssize_t read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};

	if (vm_readv_filtered)
		return read_mem_proc(pid, addr, buf, len);
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n >= 0 || errno != EFAULT || len <= 1)
		return n;
	/* A string near the end of a mapping: read what is there, page by page. */
	size_t page = 4096, first = page - (addr % page);
	if (first >= len)
		return -1;
	local.iov_len = remote.iov_len = first;
	return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

/* A NUL-terminated string at addr (truncated to cap-1 bytes). */
static bool read_string(pid_t pid, uint64_t addr, char *buf, size_t cap)
{
	ssize_t n = addr ? read_mem(pid, addr, buf, cap - 1) : -1;

	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strnlen(buf, (size_t)n)] = '\0';
	return true;
}

const char *deny_exec_match(const struct strlist *patterns, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < patterns->n; i++) {
		const char *p = patterns->v[i];
		if (fnmatch(p, strchr(p, '/') ? path : base, 0) == 0)
			return p;
	}
	return NULL;
}

static char *describe_sockaddr(pid_t pid, uint64_t addr, uint64_t len)
{
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN];

	if (len > sizeof(ss))
		len = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (len < sizeof(sa_family_t) || read_mem(pid, addr, &ss, len) < (ssize_t)sizeof(sa_family_t))
		return xstrdup("{}");
	if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		return xasprintf("{\"family\":\"inet\",\"address\":\"%s\",\"port\":%u}", host,
				 ntohs(in->sin_port));
	}
	if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		return xasprintf("{\"family\":\"inet6\",\"address\":\"%s\",\"port\":%u}", host,
				 ntohs(in6->sin6_port));
	}
	if (ss.ss_family == AF_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		char path[sizeof(un->sun_path) + 2];
		bool abstract = n > 0 && un->sun_path[0] == '\0';
		memcpy(path, un->sun_path + abstract, n - abstract);
		path[n - abstract] = '\0';
		_cleanup_free_ char *q = json_quote(path);
		return xasprintf("{\"family\":\"unix\",\"path\":%s%s}", q,
				 abstract ? ",\"abstract\":true" : "");
	}
	return xasprintf("{\"family\":%u}", ss.ss_family);
}

/* The program's path and up to 16 arguments, as a JSON object. */
static char *describe_exec(pid_t pid, const struct seccomp_data *d, bool at, char *path,
			   size_t cap)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t argv_addr = at ? d->args[2] : d->args[1];

	if (!read_string(pid, at ? d->args[1] : d->args[0], path, cap))
		path[0] = '\0';
	if (!f)
		return xstrdup("{}");
	fputs("{\"path\":", f);
	json_write_string(f, path);
	fputs(",\"argv\":[", f);
	for (int i = 0; i < 16 && argv_addr; i++) {
		uint64_t p;
		char arg[256];
		if (read_mem(pid, argv_addr + 8 * (uint64_t)i, &p, sizeof(p)) != sizeof(p) || !p)
			break;
		if (!read_string(pid, p, arg, sizeof(arg)))
			break;
		if (i)
			fputc(',', f);
		json_write_string(f, arg);
	}
	fputs("]}", f);
	fclose(f);
	return buf;
}

int supervisor_init(struct supervisor *s, int notify_fd, struct eventlog *log,
		    const struct strlist *deny_exec, struct error *err)
{
	s->notify_fd = notify_fd;
	s->log = log;
	s->deny_exec = deny_exec;
	if (seccomp_notify_alloc(&s->req, &s->resp) < 0)
		return error_set(err, ENOMEM, "cannot start the supervisor");
	s->nr_execve = seccomp_syscall_resolve_name("execve");
	s->nr_execveat = seccomp_syscall_resolve_name("execveat");
	s->nr_connect = seccomp_syscall_resolve_name("connect");
	s->nr_bind = seccomp_syscall_resolve_name("bind");
	return 0;
}

void supervisor_handle(struct supervisor *s)
{
	struct seccomp_notif *req = s->req;
	struct seccomp_notif_resp *resp = s->resp;
	char path[4096];
	_cleanup_free_ char *args = NULL;
	_cleanup_free_ char *why = NULL;
	const char *event;
	bool deny, read_memory = true;
	int nr;

	memset(req, 0, sizeof(*req));
	if (seccomp_notify_receive(s->notify_fd, req) < 0) {
		/* ENOENT: the caller died first. EINTR: again. Else: the end. */
		if (errno != ENOENT && errno != EINTR)
			s->broken = true;
		return;
	}
	nr = req->data.nr;
	resp->id = req->id;
	resp->val = 0;
	resp->error = 0;
	resp->flags = 0;

	if (nr == s->nr_execve || nr == s->nr_execveat) {
		const char *pattern;
		args = describe_exec(req->pid, &req->data, nr == s->nr_execveat, path, sizeof(path));
		pattern = deny_exec_match(s->deny_exec, path);
		deny = pattern != NULL;
		event = "exec";
		if (deny)
			why = xasprintf("'%s' matches --deny-exec '%s'", path, pattern);
	} else if (nr == s->nr_connect || nr == s->nr_bind) {
		args = describe_sockaddr(req->pid, req->data.args[1], req->data.args[2]);
		deny = false;
		read_memory = req->data.args[1] != 0;
		event = nr == s->nr_connect ? "connect" : "bind";
	} else {
		/* The deny-list: decided on the call alone, nothing read from the program. */
		_cleanup_free_ char *name = seccomp_syscall_resolve_num_arch(req->data.arch, nr);
		_cleanup_free_ char *q = json_quote(name ? name : "?");
		args = xasprintf("{\"syscall\":%s,\"nr\":%d}", q, nr);
		deny = true;
		read_memory = false;
		event = "syscall";
		bool uring = name && !strncmp(name, "io_uring_", strlen("io_uring_"));
		why = xasprintf("%s is denied by the box's syscall filter%s%s",
				name ? name : "the call", uring ? ": " : "", uring ? io_uring_why : "");
	}
	/* The process may have died, and its pid been reused, while we read. */
	if (read_memory && seccomp_notify_id_valid(s->notify_fd, req->id) < 0)
		return;
	if (deny)
		resp->error = -EPERM;
	else
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	/*
	 * Logged before the answer: a program refused here may exit at once,
	 * and PID 1 may write the log and end before this thread, were it to
	 * log after answering, had added the event.
	 */
	eventlog_add(s->log, (pid_t)req->pid, event, args, deny ? "denied" : "allowed", why);
	seccomp_notify_respond(s->notify_fd, resp);
}

static void *supervisor_thread(void *arg)
{
	struct supervisor *s = arg;

	while (!s->broken)
		supervisor_handle(s);
	return NULL;
}

/* Linux 6.6; Debian 12's headers (6.1) predate it. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS _IOW('!', 4, uint64_t)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP 1
#endif

int supervisor_start(struct supervisor *s, struct error *err)
{
	pthread_t thread;
	sigset_t all, old;
	int r;

	/*
	 * The program waits while the supervisor answers: with synchronous
	 * wake-ups the kernel switches straight between the two (6.6) instead
	 * of going through the scheduler, which costs several microseconds a
	 * call on a nested VM. Older kernels do without.
	 */
	ioctl(s->notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (uint64_t)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	/* Signals are the main loop's: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&thread, NULL, supervisor_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return error_set(err, r, "cannot start the supervisor");
	pthread_detach(thread);
	return 0;
}
