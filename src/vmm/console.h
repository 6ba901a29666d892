/*
 * The host side of the guest console: the main thread's loop while the
 * vCPUs run. It forwards the terminal to the UART in --shell mode (raw, with
 * Ctrl-A x to leave), tracks the window size, and turns SIGINT/SIGTERM/SIGHUP
 * into a stop of the VM.
 */
#ifndef HUTCH_VMM_CONSOLE_H
#define HUTCH_VMM_CONSOLE_H

#include <stdbool.h>
#include <termios.h>

#include "common/error.h"

struct vm;

struct console {
	int sig_fd;	  /* signalfd for SIGINT, SIGTERM, SIGHUP, SIGWINCH */
	bool interactive; /* forward stdin to the guest */
	bool raw;	  /* stdin is a terminal we put in raw mode */
	struct termios saved;
	int stopped_by_signal; /* the host signal that stopped the VM, 0 if none */
};

/*
 * Block the console signals in this thread (vCPU threads inherit the mask)
 * and take them through a signalfd; with interactive, put a terminal stdin
 * in raw mode. console_release() undoes both.
 */
int console_init(struct console *con, struct vm *vm, bool interactive, struct error *err);

/* Serve the console until the VM stops (vm->stop_fd). */
void console_loop(struct console *con, struct vm *vm);

void console_release(struct console *con);

#endif
