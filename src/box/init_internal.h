/*
 * The parts of a box's PID 1 (box/init.h is their API): building the box
 * (init.c), the control loop (loop.c) and starting a program (program.c).
 */
#ifndef HUTCH_BOX_INIT_INTERNAL_H
#define HUTCH_BOX_INIT_INTERNAL_H

#include "box/control.h"
#include "box/init.h"
#include "policy/limits.h"
#include "policy/policy.h"

/*
 * Serve the box's runs until it ends: the creating run on init->sock,
 * later ones on init->listener. notify_fd is the seccomp listener for the
 * supervisor, or -1.
 */
_Noreturn void box_loop(const struct box_init *init, int notify_fd);

/* In the child PID 1 forks for req: become the requested program. */
_Noreturn void start_program(struct request *req, int conn, const char *pts,
			     const struct policy *policy, const struct limits *limits);

#endif
