/* The run's side of a program in a box: signals, the terminal, the exit code. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "box/box_internal.h"
#include "box/control.h"
#include "box/tty.h"
#include "common/util.h"
#include "common/banned.h"

void relay_drain(int master)
{
	char buf[4096];
	ssize_t n;

	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	while ((n = read(master, buf, sizeof(buf))) > 0)
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			break;
}

enum relay_end relay(int conn, int sfd, int pidfd, int master, int timer, int *code, char *why,
		    size_t len)
{
	struct pollfd fds[5] = {
		{.fd = sfd, .events = POLLIN},
		{.fd = conn, .events = POLLIN},
		{.fd = master >= 0 ? STDIN_FILENO : -1, .events = POLLIN},
		{.fd = master, .events = POLLIN},
		{.fd = timer, .events = POLLIN},
	};
	char buf[16384];

	why[0] = '\0';
	for (;;) {
		if (poll(fds, ARRAY_SIZE(fds), -1) < 0) {
			if (errno == EINTR)
				continue;
			return RELAY_LOST;
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
			char msg[sizeof(int) + 512], tag;
			int fdv[CONTROL_MAX_FDS];
			size_t nfds = 0;
			ssize_t n = control_recv(conn, &tag, msg, sizeof(msg), fdv, &nfds);
			for (size_t i = 0; i < nfds; i++)
				close(fdv[i]);
			if (n < (ssize_t)sizeof(int) || tag != CONTROL_EXIT)
				return RELAY_LOST;
			memcpy(code, msg, sizeof(int));
			n -= (ssize_t)sizeof(int);
			if (n > 0 && (size_t)n < len) {
				memcpy(why, msg + sizeof(int), (size_t)n);
				why[n] = '\0';
			}
			return RELAY_EXITED;
		}
		if (fds[4].revents & POLLIN)
			return RELAY_TIMEOUT;
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
