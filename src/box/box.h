/* Running a program in a box. */
#ifndef HUTCH_BOX_BOX_H
#define HUTCH_BOX_BOX_H

#include <stdbool.h>

#include "box/store.h"
#include "common/error.h"
#include "policy/policy.h"

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

/* Explain why creating a user namespace failed with errnum (sysctl, AppArmor). */
void userns_explain(int errnum, struct error *err);

#endif
