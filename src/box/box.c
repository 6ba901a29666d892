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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box/box.h"
#include "box/control.h"
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

/* A joining run retries when the box stopped between its connect and its request. */
#define JOIN_ATTEMPTS 3
#define RETRY -2

/* Signals passed on to the program (SIGWINCH resizes its terminal instead). */
static const int relayed[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
			      SIGUSR2, SIGCONT, SIGALRM, SIGWINCH};

extern char **environ;

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
 * Relay signals and the terminal until the box sends the program's exit
 * code on conn. Returns the code, or -1 when the box went away without one.
 */
static int relay(int conn, int sfd, int pidfd, int master)
{
	struct pollfd fds[4] = {
		{.fd = sfd, .events = POLLIN},
		{.fd = conn, .events = POLLIN},
		{.fd = master >= 0 ? STDIN_FILENO : -1, .events = POLLIN},
		{.fd = master, .events = POLLIN},
	};
	char buf[16384];

	for (;;) {
		if (poll(fds, ARRAY_SIZE(fds), -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGWINCH) {
					if (master >= 0)
						tty_copy_winsize(master);
				} else if (sig != SIGCHLD) {
					pidfd_send_signal(pidfd, sig, NULL, 0);
				}
			}
		}
		if (fds[1].revents) {
			int code;
			return read_all(conn, &code, sizeof(code)) == sizeof(code) ? code : -1;
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
}

/*
 * Ask the box's PID 1 on conn to run opts->argv, and stay with the program
 * until it exits. Returns its exit code; -1 with err filled when the box
 * refused; RETRY when the box went away before answering.
 */
static int run_program(int conn, int sfd, const struct box_run_opts *opts, struct error *err)
{
	_cleanup_free_ char *cwd = get_current_dir_name();
	_cleanup_close_ int pidfd = -1;
	_cleanup_close_ int master = -1;
	struct request req = {
		.flags = (tty_wanted() ? REQUEST_PTY : 0) | (opts->as_root ? REQUEST_ROOT : 0),
		.argv = opts->argv,
		.envp = environ,
	};
	char msg[4097], tag;
	int fds[CONTROL_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;
	int code;

	if (!cwd)
		return error_set(err, errno, "cannot find the current directory");
	req.cwd = cwd;
	req.umask = umask(022);
	umask((mode_t)req.umask);
	if (request_send(conn, &req, err) < 0)
		return errno == EPIPE || errno == ECONNRESET ? RETRY : -1;
	n = control_recv(conn, &tag, msg, sizeof(msg) - 1, fds, &nfds);
	if (n < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return RETRY;
	}
	if (tag == 'E') {
		msg[n] = '\0';
		return error_set(err, 0, "cannot run in box '%s': %s", opts->name, msg);
	}
	if (tag != 'P' || nfds < 1) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return error_set(err, EPROTO, "cannot run in box '%s'", opts->name);
	}
	pidfd = fds[0];
	if (nfds > 1) {
		master = fds[1];
		tty_setup_pty(master);
		tty_make_raw();
	}
	if (write_all(conn, "G", 1) < 0)
		return RETRY;
	code = relay(conn, sfd, pidfd, master);
	if (master >= 0)
		drain(master);
	tty_restore();
	return code;
}

/*
 * Unmounting a box syncs each overlay's upper filesystem (ovl_sync_fs), a
 * few milliseconds that nobody needs to wait for: every process of the box
 * is gone once PID 1 sent the last code. A small process outside the box
 * keeps the box's "mounted" lock until PID 1 has exited, i.e. until the
 * kernel has unmounted everything, so that the next run of this box, or a
 * commit, waits for it and never finds the layers still mounted.
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
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* "/proc/self/fd/N/control": sun_path is short, a store path need not be. */
static void control_addr(int box_dirfd, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/control", box_dirfd);
}

static int connect_box(int box_dirfd)
{
	struct sockaddr_un addr;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	control_addr(box_dirfd, &addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int listen_box(int box_dirfd, struct error *err)
{
	struct sockaddr_un addr;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* Left by a box that was killed: nothing listens on it any more. */
	unlinkat(box_dirfd, "control", 0);
	control_addr(box_dirfd, &addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0)
		return error_set(err, errno, "cannot create the box's control socket");
	return steal_fd(&fd);
}

/* Start the box's PID 1 and run the program as its first client. */
static int create_and_run(const struct store *store, const struct box_run_opts *opts,
			  const char *box_dir, int box_dirfd, int *running, int *setup, int sfd,
			  bool created, struct error *err)
{
	_cleanup_free_ char *newroot = xasprintf("%s/mnt", box_dir);
	_cleanup_close_ int listener = -1;
	_cleanup_close_ int mounted = -1;
	_cleanup_close_ int sock = -1;
	struct mount_table mt;
	struct fsplan plan;
	struct box_init init;
	int sv[2], status, code;
	pid_t pid;

	listener = listen_box(box_dirfd, err);
	if (listener < 0)
		return -1;
	if (mount_table_read(&mt, err) < 0)
		return -1;
	if (fsplan_build(&plan, "", &mt, getuid() == 0, err) < 0) {
		mount_table_release(&mt);
		return -1;
	}
	mount_table_release(&mt);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fsplan_release(&plan);
		return error_set(err, errno, "cannot create a socket pair");
	}
	sock = sv[0];
	init = (struct box_init){
		.root = {.store_home = store->home, .box_dir = box_dir, .newroot = newroot},
		.plan = &plan,
		.as_root = opts->as_root,
		.sock = sv[1],
		.listener = listener,
		.box_dirfd = box_dirfd,
		.lock_fds = {*running, *setup},
	};

	pid = (pid_t)syscall(SYS_clone, BOX_CLONE_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;
		close(sv[1]);
		fsplan_release(&plan);
		userns_explain(e, err);
		unlinkat(box_dirfd, "control", 0);
		if (created) {
			/* Bad input leaves nothing behind. */
			struct error ignored;
			remove_tree(box_dir, &ignored);
		}
		return -1;
	}
	if (pid == 0) {
		close(sock);
		box_init_main(&init);
	}
	close(sv[1]);
	fsplan_release(&plan);
	/* PID 1 listens now: later runs may queue up to join. */
	close(steal_fd(setup));

	/* The previous run of this box may still be unmounting: wait for it. */
	mounted = box_lock(box_dir, BOX_LOCK_MOUNTED, BOX_LOCK_EXCLUSIVE, 10000, err);
	if (mounted < 0 || userns_write_maps(pid, getuid(), getgid(), opts->as_root, err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		unlinkat(box_dirfd, "control", 0);
		return error_prefix(err, "cannot start box '%s'", opts->name);
	}
	if (write_all(sock, "M", 1) < 0) {
		waitpid(pid, &status, 0);
		return exit_code(status);
	}
	code = run_program(sock, sfd, opts, err);
	if (code == -1)
		kill(pid, SIGKILL);
	if (code < 0) {
		/* PID 1 failed to set the box up (and said why) or was killed. */
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return code == -1 ? -1 : exit_code(status);
	}
	/* The run is over; the unmount holder must not carry this lock on. */
	close(steal_fd(running));
	hand_over_unmount(pid, mounted);
	return code;
}

int box_run(const struct store *store, const struct box_run_opts *opts, struct error *err)
{
	_cleanup_free_ char *box_dir = store_box_dir(store, opts->name);
	_cleanup_free_ char *newroot = xasprintf("%s/mnt", box_dir);
	_cleanup_close_ int box_dirfd = -1;
	_cleanup_close_ int running = -1;
	_cleanup_close_ int sfd = -1;
	bool created = access(box_dir, F_OK) < 0;
	sigset_t set, old;
	int code = RETRY;

	if (created && mkdir_p(newroot, 0700, err) < 0)
		return error_prefix(err, "cannot create box '%s'", opts->name);
	box_dirfd = open(box_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (box_dirfd < 0)
		return error_set(err, errno, "cannot open box '%s'", opts->name);
	/* Shared with every other run of the box; a commit or reset takes it alone. */
	running = box_lock(box_dir, BOX_LOCK_RUNNING, BOX_LOCK_SHARED, 2000, err);
	if (running < 0 && err->errnum == EWOULDBLOCK) {
		warn("waiting for box '%s': a commit, reset or rm is using it", opts->name);
		running = box_lock(box_dir, BOX_LOCK_RUNNING, BOX_LOCK_SHARED, -1, err);
	}
	if (running < 0)
		return error_prefix(err, "cannot use box '%s'", opts->name);
	struct stat st;
	if (fstat(box_dirfd, &st) < 0 || st.st_nlink == 0)
		return error_set(err, 0, "box '%s' was removed while this run waited for it",
				 opts->name);
	futimens(running, NULL); /* "last used", for hutch list */

	/* Blocked before any child exists, so no signal slips past the signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(relayed); i++)
		sigaddset(&set, relayed[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);

	for (int attempt = 0; attempt < JOIN_ATTEMPTS && code == RETRY; attempt++) {
		_cleanup_close_ int setup = -1;
		_cleanup_close_ int conn = -1;

		setup = box_lock(box_dir, BOX_LOCK_SETUP, BOX_LOCK_EXCLUSIVE, 10000, err);
		if (setup < 0) {
			code = -1;
			break;
		}
		conn = connect_box(box_dirfd);
		if (conn >= 0) {
			close(steal_fd(&setup));
			code = run_program(conn, sfd, opts, err);
		} else {
			code = create_and_run(store, opts, box_dir, box_dirfd, &running, &setup,
					      sfd, created, err);
		}
	}
	if (code == RETRY)
		code = error_set(err, 0, "box '%s' stopped while this run was joining it",
				 opts->name);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return code;
}
