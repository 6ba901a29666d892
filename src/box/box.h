/*
 * Running a program in a box, from the host's side.
 *
 * box_run() is what `hutch run` does. It is made of steps that a front end
 * with a lifecycle of its own (an OCI runtime: create, start, wait, delete)
 * calls one by one:
 *
 *   box_open()        lock the box for this run, open its log, block the
 *                     signals the run relays
 *   box_create()      start the box's PID 1 and build the box; it then
 *                     waits for its first program
 *   box_join()        or, instead: connect to the box that is up already
 *   box_start()       start the program in the box
 *   box_wait()        relay signals and the terminal until it exits
 *   box_teardown()    end a box box_create() made: it unmounts after the
 *                     run returns (or kill it, when its program never ran)
 *   box_close()       release what box_open() took
 *
 * Each step returns a enum box_step; the exit code hutch should exit with
 * is in box->code once box_wait() or box_teardown() has set it.
 */
#ifndef HUTCH_BOX_BOX_H
#define HUTCH_BOX_BOX_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "box/store.h"
#include "common/error.h"
#include "policy/limits.h"
#include "policy/policy.h"

/* What a box is started with. */
struct box_start {
	const struct store *store;
	const char *name;             /* validated box name */
	bool as_root;                 /* map the caller to uid/gid 0 inside */
	const struct policy *policy;  /* what the box may do */
};

/* How a step ended. */
enum box_step {
	BOX_OK,     /* done; go on with the next step */
	BOX_FAILED, /* err says why */
	BOX_EXITED, /* the box's PID 1 ended having said why; box->code is the exit code */
	BOX_RETRY,  /* the box went away before it answered: join or create again */
	BOX_LOST,   /* the box went away while the program ran (its PID 1 was killed) */
};

/* One run of a box, host side. Fields are the steps' own. */
struct box {
	struct box_start start;
	char *dir;              /* boxes/NAME */
	int dirfd;
	bool created;           /* the box did not exist before this run */
	int running;            /* the "running" lock, shared */
	int setup;              /* the "setup" lock, while deciding to join or create */
	int log_fd;
	off_t log_start;        /* the log's size when the program was asked for */
	int sfd;                /* signalfd of the relayed signals */
	sigset_t old_mask;
	uint64_t fingerprint;   /* of the policy and the host view (box.c) */
	uint64_t policy_hash;   /* of the policy alone: a running box takes only its own */
	uint64_t net_hash;      /* of the network alone: to say what differs */
	char *cwd;
	/* box_create() */
	pid_t init;             /* the box's PID 1 when this run made it, else -1 */
	pid_t keeper;           /* with --allow: the keeper of its network (net/net.h), else -1 */
	int keeper_sock;        /* to the keeper, until its rules are in force */
	struct limits limits;
	bool limits_held;       /* limits to release (not handed over) */
	int mounted;            /* the "mounted" lock */
	int ns_fds[2];          /* PID 1's user and mount namespaces, for the holder */
	/* box_create() or box_join() */
	int conn;               /* to the box's PID 1 */
	bool joins;             /* the box was up before this run */
	uint64_t plan_hash;     /* when it joins: fsplan_hash_host() */
	/* box_start() */
	int pidfd, master, timer;
	int code;               /* the exit code, once known */
};

int box_open(struct box *box, const struct box_start *start, struct error *err);
/*
 * Make and build the box, under its "setup" lock (taken here unless the
 * caller holds it in box->setup, deciding to join or create); the lock is
 * released once PID 1 listens for later runs.
 */
enum box_step box_create(struct box *box, struct error *err);
/* Join the box that is up, on conn (from control_connect); takes conn. */
enum box_step box_join(struct box *box, int conn, struct error *err);
/* Start argv in the box (the caller's environment, cwd and stdio). */
enum box_step box_start(struct box *box, char **argv, struct error *err);
/* Stay with the program until it exits: box->code. */
enum box_step box_wait(struct box *box, struct error *err);
/*
 * After box_create(), and what came of the run (last, the step that ended
 * it): hand the box over to its unmount holder (BOX_OK), or end it. Returns
 * the run's exit code, or -1 with err filled (with BOX_FAILED: the failed
 * step filled it; the box is killed, as one whose program never ran).
 */
int box_teardown(struct box *box, enum box_step last, struct error *err);
/* Release what box_open() took (and a joined box's connection). */
void box_close(struct box *box);

/* What `hutch run` and `hutch shell` ask for. */
struct box_run_opts {
	const char *name;   /* validated box name */
	char **argv;        /* the command, NULL-terminated */
	bool as_root;       /* map the caller to uid/gid 0 inside */
	struct policy *policy; /* what the box may do (NULL: defaults) */
	bool seccomp_set;   /* policy->seccomp was given on the command line */
};

/*
 * Run opts->argv in the box and return the exit status hutch should exit
 * with: the program's own, 128+N if a signal N killed it, 125 when hutch
 * failed (err filled, or the message already printed by the box), 126 or
 * 127 when the command cannot be executed or found.
 */
int box_run(const struct store *store, const struct box_run_opts *opts, struct error *err);

#endif
