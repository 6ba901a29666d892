#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vmm/console.h"
#include "vmm/devices/serial.h"
#include "vmm/vm.h"
#include "common/banned.h"

#define ESCAPE_CHAR 0x01 /* Ctrl-A, then x: leave the VM (QEMU's convention) */

static void update_winsize(struct vm *vm)
{
	struct winsize ws;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		atomic_store(&vm->winsize, ((uint32_t)ws.ws_row << 16) | ws.ws_col);
}

/* The signals the console loop takes from the whole VMM. */
static void console_signals(sigset_t *set)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};

	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
}

int console_init(struct console *con, struct vm *vm, bool interactive, struct error *err)
{
	sigset_t set;

	memset(con, 0, sizeof(*con));
	con->sig_fd = -1;
	console_signals(&set);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return error_set(err, errno, "cannot block signals");
	con->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (con->sig_fd < 0)
		return error_set(err, errno, "cannot create a signalfd");
	/* A closed stdout must fail the write, not kill hutch before it can report. */
	signal(SIGPIPE, SIG_IGN);
	con->interactive = interactive;
	update_winsize(vm);
	if (interactive && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &con->saved) == 0) {
		struct termios raw = con->saved;

		/* The guest's tty does the line discipline: Ctrl-C, echo, \r\n. */
		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			con->raw = true;
	}
	return 0;
}

void console_release(struct console *con)
{
	sigset_t set;

	if (con->raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &con->saved);
		con->raw = false;
	}
	if (con->sig_fd >= 0) {
		close(con->sig_fd);
		con->sig_fd = -1;
	}
	console_signals(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void handle_signals(struct console *con, struct vm *vm)
{
	struct signalfd_siginfo si;

	while (read(con->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			update_winsize(vm);
			continue;
		}
		if (!con->stopped_by_signal && !vm_stopping(vm))
			con->stopped_by_signal = (int)si.ssi_signo;
		vm_request_stop(vm, VM_STOP_INTERRUPTED, "stopped by %s on the host",
				strsignal((int)si.ssi_signo));
	}
}

/* Forward what fits of stdin to the console UART; false at end of input. */
static bool forward_input(struct vm *vm, bool *escape)
{
	uint8_t in[64], out[64];
	size_t room = serial_rx_room(vm->console), n_out = 0;
	ssize_t n;

	if (room > sizeof(in))
		room = sizeof(in);
	n = read(STDIN_FILENO, in, room);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	for (ssize_t i = 0; i < n; i++) {
		if (*escape) {
			*escape = false;
			if (in[i] == 'x' || in[i] == 'X') {
				vm_request_stop(vm, VM_STOP_INTERRUPTED,
						"stopped from the console (Ctrl-A x)");
				return true;
			}
			if (in[i] != ESCAPE_CHAR)
				out[n_out++] = ESCAPE_CHAR;
			out[n_out++] = in[i];
		} else if (in[i] == ESCAPE_CHAR) {
			*escape = true;
		} else {
			out[n_out++] = in[i];
		}
	}
	/* The read was bounded by the room left, and escapes only shrink it. */
	serial_receive(vm->console, out, n_out);
	return true;
}

void console_loop(struct console *con, struct vm *vm)
{
	bool stdin_open = con->interactive, escape = false;

	for (;;) {
		struct pollfd fds[4] = {
		    {.fd = vm->stop_fd, .events = POLLIN},
		    {.fd = con->sig_fd, .events = POLLIN},
		    {.fd = vm->events.epoll_fd, .events = POLLIN}, /* the devices' fds */
		    {.fd = STDIN_FILENO, .events = POLLIN},
		};
		/*
		 * Hold input until guest init runs and the tty driver listens
		 * (serial_rx_room() is 0 before): bytes queued earlier would be
		 * flushed when the driver opens the port.
		 */
		bool want_input = stdin_open && atomic_load(&vm->t_marker_ns) != 0 &&
				  serial_rx_room(vm->console) > 0;
		int timeout = -1;

		if (stdin_open && !want_input)
			timeout = 10; /* not ready, or the receive queue is full */
		if (poll(fds, want_input ? 4 : 3, timeout) < 0) {
			if (errno == EINTR)
				continue;
			vm_request_stop(vm, VM_STOP_HOST_ERROR, "cannot poll the console: %s",
					strerror(errno));
			return;
		}
		if (fds[0].revents)
			return;
		if (fds[1].revents)
			handle_signals(con, vm);
		if (fds[2].revents) {
			struct error err = {0};
			if (evloop_dispatch(&vm->events, 0, &err) < 0) {
				vm_request_stop(vm, VM_STOP_HOST_ERROR, "%s", err.msg);
				return;
			}
		}
		if (want_input && fds[3].revents) {
			if (!forward_input(vm, &escape))
				stdin_open = false;
		}
		if (vm_stopping(vm))
			return;
	}
}
