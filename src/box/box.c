#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box/box.h"
#include "box/fsplan.h"
#include "box/init.h"
#include "box/tty.h"
#include "box/userns.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

#define BOX_CLONE_FLAGS                                                                            \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |                 \
	 CLONE_NEWCGROUP | CLONE_NEWNET)

/* Signals the host side passes on to the box's PID 1. */
static const int relayed[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
			      SIGUSR2, SIGCONT, SIGALRM};

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_HUTCH_FAILED;
}

/* Drain what the box still wrote to its terminal after its last process died. */
static void drain(int master)
{
	char buf[4096];
	ssize_t n;

	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	while ((n = read(master, buf, sizeof(buf))) > 0)
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			break;
}

/*
 * The host side's loop: pass signals to the box, relay the terminal, and
 * wait for PID 1 to send the exit code (or to die without one, when the
 * box could not start). Returns the code, or -1 with *status filled when
 * PID 1 was reaped instead.
 */
static int supervise(pid_t init, int sock, int sfd, int master, int *status)
{
	struct pollfd fds[4] = {
		{.fd = sfd, .events = POLLIN},
		{.fd = sock, .events = POLLIN},
		{.fd = master >= 0 ? STDIN_FILENO : -1, .events = POLLIN},
		{.fd = master, .events = POLLIN},
	};
	char buf[16384];

	for (;;) {
		if (poll(fds, ARRAY_SIZE(fds), -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGWINCH && master >= 0)
					tty_copy_winsize(master);
				else if (sig != SIGCHLD && sig != SIGWINCH)
					kill(init, sig);
				if (waitpid(init, status, WNOHANG) == init)
					return -1;
			}
		}
		if (fds[1].revents) {
			int code;
			if (read(sock, &code, sizeof(code)) == sizeof(code))
				return code;
			fds[1].fd = -1; /* PID 1 failed: its exit status says how */
		}
		if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0 || write_all(master, buf, (size_t)n) < 0)
				fds[2].fd = -1;
		}
		if (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n > 0)
				write_all(STDOUT_FILENO, buf, (size_t)n);
			else if (n < 0 && errno != EINTR && errno != EAGAIN)
				fds[3].fd = -1; /* EIO: no process holds the terminal */
		}
	}
	while (waitpid(init, status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

/*
 * Unmounting a box syncs each overlay's upper filesystem (ovl_sync_fs), a
 * few milliseconds that nobody needs to wait for: every process of the box
 * is gone once PID 1 sent the code. A small process outside the box keeps
 * the box's "mounted" lock until PID 1 has exited, i.e. until the kernel
 * has unmounted everything, so that the next run of this box, or a commit,
 * waits for it and never finds the layers still mounted.
 */
static void hand_over_unmount(pid_t init, int mounted_lock)
{
	_cleanup_close_ int pidfd = pidfd_open(init, 0);
	pid_t pid;

	if (pidfd < 0 || (pid = fork()) < 0) {
		int status;
		while (waitpid(init, &status, 0) < 0 && errno == EINTR)
			;
		return;
	}
	if (pid > 0)
		return;
	/* Hold nothing of the caller's: a pipe reading hutch's output ends now. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	if (dup2(mounted_lock, 3) < 0 || dup2(pidfd, 4) < 0)
		_exit(1);
	close_range(5, ~0U, 0);
	setsid();
	struct pollfd p = {.fd = 4, .events = POLLIN};
	while (poll(&p, 1, 10000) < 0 && errno == EINTR)
		;
	_exit(0);
}

int box_run(const struct store *store, const struct box_run_opts *opts, struct error *err)
{
	_cleanup_free_ char *box_dir = store_box_dir(store, opts->name);
	_cleanup_free_ char *newroot = NULL;
	_cleanup_free_ char *cwd = get_current_dir_name();
	_cleanup_close_ int running = -1;
	_cleanup_close_ int mounted = -1;
	_cleanup_close_ int sfd = -1;
	_cleanup_close_ int master = -1;
	_cleanup_close_ int sock = -1;
	struct mount_table mt;
	struct fsplan plan;
	struct box_init init;
	sigset_t set, old;
	int sv[2], status, code;
	bool created;
	pid_t pid;

	if (!cwd)
		return error_set(err, errno, "cannot find the current directory");
	newroot = xasprintf("%s/mnt", box_dir);
	created = access(box_dir, F_OK) < 0;
	if (created && mkdir_p(newroot, 0700, err) < 0)
		return error_prefix(err, "cannot create box '%s'", opts->name);
	running = box_lock(box_dir, BOX_LOCK_RUNNING, 0, err);
	if (running < 0) {
		if (err->errnum == EWOULDBLOCK)
			return error_set(err, 0, "box '%s' is already running", opts->name);
		return -1;
	}
	if (mount_table_read(&mt, err) < 0)
		return -1;
	if (fsplan_build(&plan, "", &mt, getuid() == 0, err) < 0) {
		mount_table_release(&mt);
		return -1;
	}
	mount_table_release(&mt);

	init = (struct box_init){
		.root = {.store_home = store->home, .box_dir = box_dir, .newroot = newroot},
		.plan = &plan,
		.argv = opts->argv,
		.cwd = cwd,
		.use_pty = tty_wanted(),
		.umask = umask(022),
	};
	umask(init.umask);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		fsplan_release(&plan);
		return error_set(err, errno, "cannot create a socket pair");
	}
	sock = sv[0];

	/* Block before the clone so no signal slips between it and the signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGWINCH);
	for (size_t i = 0; i < ARRAY_SIZE(relayed); i++)
		sigaddset(&set, relayed[i]);
	sigprocmask(SIG_BLOCK, &set, &old);

	pid = (pid_t)syscall(SYS_clone, BOX_CLONE_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(sv[1]);
		fsplan_release(&plan);
		userns_explain(e, err);
		if (created) {
			/* Bad input leaves nothing behind. */
			struct error ignored;
			remove_tree(box_dir, &ignored);
		}
		return -1;
	}
	if (pid == 0) {
		close(sock);
		init.sock = sv[1];
		init.lock_fd = running;
		box_init_main(&init);
	}
	close(sv[1]);
	fsplan_release(&plan);

	/* The previous run of this box may still be unmounting: wait for it. */
	mounted = box_lock(box_dir, BOX_LOCK_MOUNTED, 10000, err);
	if (mounted < 0 || userns_write_maps(pid, getuid(), getgid(), opts->as_root, err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return error_prefix(err, "cannot start box '%s'", opts->name);
	}
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	write_all(sock, "M", 1);
	if (init.use_pty) {
		master = recv_fd(sock);
		if (master >= 0) {
			tty_setup_pty(master);
			tty_make_raw();
			write_all(sock, "T", 1);
		}
	}
	code = supervise(pid, sock, sfd, master, &status);
	if (master >= 0)
		drain(master);
	tty_restore();
	/* The run is over; the unmount holder must not carry this lock on. */
	close(steal_fd(&running));
	if (code >= 0)
		hand_over_unmount(pid, mounted);
	else
		code = exit_code(status);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return code;
}
