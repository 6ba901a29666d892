#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "box/init.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "common/banned.h"

int send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = {0};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return errno = EPROTO, -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int wait_byte(int sock)
{
	char byte;
	ssize_t n;

	do
		n = read(sock, &byte, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

/* Signals PID 1 passes on to the program; the rest keep their defaults. */
static const int forwarded[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
				SIGUSR2, SIGWINCH, SIGCONT, SIGALRM};

/* execv, running a script without #! with /bin/sh as execvp does. */
static void exec_file(const char *path, char **argv)
{
	size_t argc = 0;

	execv(path, argv);
	if (errno != ENOEXEC)
		return;
	while (argv[argc])
		argc++;
	char **sh_argv = xcalloc(argc + 2, sizeof(*sh_argv));
	sh_argv[0] = (char *)"sh";
	sh_argv[1] = (char *)path;
	for (size_t i = 1; i < argc; i++)
		sh_argv[i + 1] = argv[i];
	execv("/bin/sh", sh_argv);
	errno = ENOEXEC;
}

/*
 * Search PATH like execvp, but tell "not found" (127) from "found and not
 * executable" (126) by the first match that exists, as a shell does;
 * execvp reports EACCES for any unreadable PATH entry on the way.
 */
static _Noreturn void exec_search(char **argv)
{
	const char *name = argv[0];
	const char *path = getenv("PATH");
	int found_errno = 0;

	if (strchr(name, '/')) {
		exec_file(name, argv);
		if (errno == ENOENT || errno == ENOTDIR)
			die(EXIT_NOT_FOUND, "'%s': no such file", name);
		die_errno(EXIT_CANNOT_EXECUTE, "cannot execute '%s'", name);
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (;;) {
		const char *end = strchrnul(path, ':');
		size_t dirlen = (size_t)(end - path);
		_cleanup_free_ char *file = xasprintf("%.*s%s%s", (int)dirlen, path,
						      dirlen ? "/" : "", name);
		struct stat st;

		if (stat(file, &st) == 0 && !S_ISDIR(st.st_mode)) {
			exec_file(file, argv);
			found_errno = errno;
			break;
		}
		if (!*end)
			break;
		path = end + 1;
	}
	if (!found_errno)
		die(EXIT_NOT_FOUND, "'%s': command not found", name);
	errno = found_errno;
	die_errno(EXIT_CANNOT_EXECUTE, "cannot execute '%s'", name);
}

static _Noreturn void exec_program(const struct box_init *init, const char *pts)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Its own session: terminal signals and job control belong to it alone. */
	setsid();
	if (pts) {
		int fd = open(pts, O_RDWR | O_NOCTTY);
		if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
			die_errno(EXIT_HUTCH_FAILED, "cannot open the box's terminal");
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (isatty(STDERR_FILENO))
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	umask(init->umask);
	exec_search(init->argv);
}

static int status_to_exit(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_HUTCH_FAILED;
}

/*
 * The program is done: so is the box. End every process left in it, and
 * only then tell the host side the status: nothing in the box can write
 * after hutch has returned. What remains is the kernel unmounting the box
 * when PID 1 exits, which the host side need not wait for.
 */
static _Noreturn void finish(int sock, int code)
{
	int status;

	kill(-1, SIGKILL);
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
	write_all(sock, &code, sizeof(code));
	_exit(code);
}

void box_init_main(const struct box_init *init)
{
	_cleanup_free_ char *pts = NULL;
	struct error err;
	sigset_t set;
	pid_t child;

	/* If hutch dies, the box dies with it: PID 1's exit ends every process in it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Else the lock outlives the run until this process has fully exited. */
	close(init->lock_fd);
	if (wait_byte(init->sock) < 0)
		_exit(EXIT_HUTCH_FAILED); /* the host side already said why */
	setsid();
	umask(0);
	if (box_root_mount(&init->root, init->plan, &err) < 0 || net_loopback_up(&err) < 0) {
		error_print(&err);
		_exit(EXIT_HUTCH_FAILED);
	}
	if (chdir(init->cwd) < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot enter the working directory '%s' in the box",
			  init->cwd);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot set no_new_privs");
	if (init->use_pty) {
		int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		char name[64];
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
		    ptsname_r(master, name, sizeof(name)) != 0)
			die_errno(EXIT_HUTCH_FAILED, "cannot create the box's terminal");
		pts = xstrdup(name);
		if (send_fd(init->sock, master) < 0 || wait_byte(init->sock) < 0)
			_exit(EXIT_HUTCH_FAILED);
		close(master);
	}

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);

	child = fork();
	if (child < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot start '%s'", init->argv[0]);
	if (child == 0)
		exec_program(init, pts);

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&set, &info);

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			/* To the program's process group, as a terminal would. */
			if (kill(-child, sig) < 0)
				kill(child, sig);
			continue;
		}
		/* PID 1 inherits every orphan in the box: reap them all. */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			if (pid == child)
				finish(init->sock, status_to_exit(status));
		}
	}
}
