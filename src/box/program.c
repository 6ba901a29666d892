/* Becoming a box's program: in the child PID 1 forks for each request. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include "box/control.h"
#include "box/init.h"
#include "box/init_internal.h"
#include "policy/limits.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "common/banned.h"

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
void exec_search(char **argv)
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

_Noreturn void start_program(struct request *req, int conn, const char *pts,
				    const struct policy *policy, const struct limits *limits)
{
	sigset_t none;
	char go;

	sigemptyset(&none);
	/* Dispositions stay the caller's, as if it ran the program itself. */
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own session: terminal signals and job control belong to it alone. */
	setsid();
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		if (req->fds[i] >= 0 && dup2(req->fds[i], i) < 0)
			_exit(EXIT_HUTCH_FAILED);
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
	/* With a terminal, wait until the client has set its size. */
	if (pts && (read_all(conn, &go, 1) != 1 || go != CONTROL_GO))
		_exit(EXIT_HUTCH_FAILED);
	umask((mode_t)req->umask);
	limits_apply_child(policy, limits);
	/*
	 * Nothing of PID 1's may reach the program (its fds are close-on-exec
	 * anyway), and the supervisor must read the program's memory at its
	 * execve: dumpable again, as PID 1 is not (box_init_main).
	 */
	close_range(3, ~0U, 0);
	prctl(PR_SET_DUMPABLE, 1);
	if (chdir(req->cwd) < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot enter the working directory '%s' in the box",
			  req->cwd);
	environ = req->envp;
	exec_search(req->argv);
}
