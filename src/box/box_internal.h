/*
 * The parts of the host side of a run (box/box.h is their API): the steps
 * in box.c, the relay (relay.c), the unmount holder (holder.c) and what a
 * run says to its user (say.c).
 */
#ifndef HUTCH_BOX_BOX_INTERNAL_H
#define HUTCH_BOX_BOX_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "box/box.h"
#include "policy/limits.h"
#include "policy/policy.h"

/* --- relay.c --- */

/* How relay() ended. */
enum relay_end {
	RELAY_EXITED,  /* the box sent the program's exit code */
	RELAY_LOST,    /* the box went away without one */
	RELAY_TIMEOUT, /* --timeout expired first */
};

/*
 * Relay signals and the terminal until the box sends the program's exit
 * code on conn (into *code; and, if a limit ended it, why: into why,
 * NUL-terminated).
 */
enum relay_end relay(int conn, int sfd, int pidfd, int master, int timer, int *code, char *why,
		     size_t len);
/* Drain what the box still wrote to its terminal after its last process died. */
void relay_drain(int master);

/* --- holder.c --- */

/* Opened while PID 1 lives, they keep the box's mounts until the holder detaches them. */
void box_ns_open(pid_t init, int ns_fds[2]);
void box_ns_close(int ns_fds[2]);
/*
 * Unmounting a box syncs each overlay's upper filesystem (ovl_sync_fs), a
 * few milliseconds that nobody needs to wait for: every process of the box
 * is gone once PID 1 sent the last code. A small process outside the box
 * keeps the box's "mounted" lock until the box is unmounted, so that the
 * next run of this box, or a commit, waits for it and never finds the
 * layers still mounted. It holds the box's mount namespace open, so PID 1
 * exits at once; then it detaches the overlays on parallel threads (one
 * sync's time instead of one per overlay, which the next run would wait
 * for), moves the layers' work dirs out of the way (box_work_release) and,
 * the lock released, empties the box's trash.
 */
void box_hand_over_unmount(pid_t init, int mounted_lock, int box_dirfd, struct limits *limits,
			   int ns_fds[2]);

/* --- say.c --- */

/* -v: what is in force for the box. */
void box_say_policy(const char *name, const struct policy *p, const struct limits *limits);
/*
 * An unprivileged box maps only the caller's uid and primary gid, and the
 * kernel cannot copy up a file owned by any other: writing to it fails
 * with EOVERFLOW ("Value too large for defined data type"), which says
 * nothing of why. Folders of that kind in and around the working directory
 * are layers of their own (fsplan_add_cwd), so new files there work; the
 * files themselves cannot be helped, so say so before the program runs.
 */
void box_explain_cwd(const char *cwd);

#endif
