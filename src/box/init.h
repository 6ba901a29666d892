/*
 * PID 1 of a box: builds the box's root, then starts programs on request
 * (box/control.h) from the hutch run that created the box and from every
 * run that joins it, reaps orphans, and ends the box when its last program
 * has exited.
 */
#ifndef HUTCH_BOX_INIT_H
#define HUTCH_BOX_INIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/utsname.h>

#include "box/mounts.h"
#include "net/net.h"
#include "policy/limits.h"

/* What a box's PID 1 records as it builds the box, for the runs that join it. */
struct box_built {
	uint64_t plan_hash; /* fsplan_hash() of the plan the root was built from */
	struct utsname uts; /* host and domain name as the box began, put back between runs */
	struct usernet net; /* --net user's keeper of pasta (net/net.h); keeper -1: none */
};

struct box_init {
	struct box_root root;
	bool host_root; /* hutch runs as root on the host: every layer is an overlay */
	uint64_t fingerprint; /* of the creating run's policy and host view (box.c) */
	uint64_t policy_hash; /* of its policy alone (policy_hash): what a joining run must have */
	uint64_t net_hash;    /* of its network alone (policy_net_hash) */
	bool as_root;   /* the box maps its user to uid 0 */
	bool net_made;  /* PID 1 is born in its network namespace (--allow: net/net.h) */
	bool net_stub; /* --allow: resolv.conf names the stub (net/dns.h) */
	const char *cwd; /* the creating run's working directory (fsplan_add_cwd) */
	int sock;       /* stream socket to the hutch run that creates the box */
	int listener;   /* the box's control socket, bound and listening */
	int box_dirfd;  /* the box's directory, to unlink the control socket */
	int lock_fds[2]; /* the creating run's locks on the box, closed at once */
	const struct policy *policy;  /* seccomp, supervisor, limits (root.policy too) */
	const struct limits *limits;  /* how the limits are enforced */
	int log_fd;     /* the box's event log */
	struct box_built built; /* filled in by PID 1 as it builds the box */
};

/*
 * The creating run first sends 'M' on sock once the id maps are written,
 * then 'O' once the box's layers may be mounted (the previous run of the
 * box has unmounted them); then it is a client like any other. Never
 * returns. Once the last program has exited, every process in the box is
 * ended and the client told; the box then lingers for another run (see
 * control.h) and exits when none came, or when one came for another box
 * (another fingerprint) or to end it. Exits 125 after printing why the box
 * could not start. A client's last message is 'X': an int exit code, then
 * a reason when a limit ended the program.
 */
_Noreturn void box_init_main(struct box_init *init);

/* Exec argv[0] found in PATH; exits 127 when not found, 126 when not executable. */
_Noreturn void exec_search(char **argv);

#endif
