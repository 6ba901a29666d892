/* PID 1 of a box: builds the box's root, starts the program, reaps, forwards. */
#ifndef HUTCH_BOX_INIT_H
#define HUTCH_BOX_INIT_H

#include <stdbool.h>
#include <sys/types.h>

#include "box/mounts.h"

struct box_init {
	struct box_root root;
	const struct fsplan *plan;
	char **argv;
	const char *cwd;
	bool use_pty;   /* give the program a pty of the box's own */
	int sock;       /* SOCK_SEQPACKET to the host-side hutch */
	int lock_fd;    /* the host side's lock on the box, closed at once */
	mode_t umask;   /* the caller's, restored for the program */
};

/*
 * The protocol on sock: the host side sends one byte once the id maps are
 * written; with use_pty, init sends the pty master (SCM_RIGHTS) and waits
 * for one more byte (window size and modes are set) before it starts the
 * program. When the program exits, init kills what is left in the box,
 * sends its exit code (an int: the status, 128+N for signal N) and exits
 * with it. Never returns; exits 125 without sending a code after printing
 * why the box could not start.
 */
_Noreturn void box_init_main(const struct box_init *init);

/* Send and receive one fd over a unix socket. */
int send_fd(int sock, int fd);
int recv_fd(int sock);

#endif
