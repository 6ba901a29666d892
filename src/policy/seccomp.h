/*
 * The box's syscall filter (built with libseccomp) and the supervisor that
 * answers the calls it sends to user space.
 *
 * The filter returns to the supervisor (SCMP_ACT_NOTIFY) two kinds of call:
 *  - execve/execveat, connect and bind, so every program started and every
 *    network attempt is seen and logged; these continue unless --deny-exec
 *    matches (that decision reads pointer arguments, which a thread of the
 *    program may change after the check: the kernel enforces deny-exec with
 *    mounts, see access.h; the supervisor only says why, early);
 *  - the deny-list (kexec, modules, bpf, perf_event_open, keyrings,
 *    userfaultfd, mounts, new user namespaces, TIOCSTI, io_uring ...),
 *    answered EPERM and logged with the reason: the decision reads no
 *    pointer, so it cannot be raced.
 * open/read/write are never intercepted (design notes, section 3).
 */
#ifndef HUTCH_POLICY_SECCOMP_H
#define HUTCH_POLICY_SECCOMP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "policy/policy.h"

/*
 * Load the filter into the calling process (and so into everything it
 * forks); needs no_new_privs. Returns the supervisor's notification fd,
 * or -1. With FILTER_OFF nothing is loaded and 0 is returned... as
 * "no fd": check mode first.
 */
int seccomp_install(enum seccomp_mode mode, bool pin_cpus, struct error *err);

struct seccomp_notif;
struct seccomp_notif_resp;
struct eventlog;

struct supervisor {
	int notify_fd;
	struct eventlog *log;
	const struct strlist *deny_exec;
	struct seccomp_notif *req; /* sized for this kernel, allocated once */
	struct seccomp_notif_resp *resp;
	int nr_execve, nr_execveat, nr_connect, nr_bind;
	bool broken; /* the listener failed: stop */
};

int supervisor_init(struct supervisor *s, int notify_fd, struct eventlog *log,
		    const struct strlist *deny_exec, struct error *err);

/* Answer one pending notification (call when notify_fd is readable). */
void supervisor_handle(struct supervisor *s);

/*
 * Answer notifications for ever, on a thread of PID 1's own: blocking in
 * the receive ioctl, one notification costs two ioctls and no poll(2), and
 * signals or new clients never delay a program waiting on the supervisor.
 */
int supervisor_start(struct supervisor *s, struct error *err);

/* Whether a program path matches a --deny-exec pattern (glob on path or name). */
const char *deny_exec_match(const struct strlist *patterns, const char *path);

#endif
