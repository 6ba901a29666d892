/*
 * The box's network: the network namespace its programs live in, and
 * what is set up in it. Today a box has only loopback (--net none); user-
 * mode networking through pasta and an nftables allow-list loaded from an
 * outer user namespace (issue 11, docs/architecture.md) set up the same
 * namespace further, before the box joins it.
 */
#ifndef HUTCH_NET_NET_H
#define HUTCH_NET_NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/*
 * Make a new network namespace for the calling thread (unshare(2) acts on
 * the thread alone) with its loopback interface up, and return an fd of
 * it, O_CLOEXEC, for the box to join with setns(2); -1 on error. The
 * thread stays in it.
 */
int netns_create(struct error *err);

/*
 * Move the calling process into a fresh network namespace with loopback
 * up: what a lingering box does before its next run, so that no socket or
 * TIME_WAIT of the last run's is seen by the next.
 */
int netns_renew(struct error *err);

/* Bring up the loopback interface of the current network namespace. */
int net_loopback_up(struct error *err);

/*
 * --net user in the structure where PID 1 makes the box's network
 * namespaces (net/pasta.h says what pasta does). PID 1 cannot start pasta
 * itself once it has joined the box's namespace: pasta's sockets must live
 * in the host's network namespace, which PID 1 can never enter again. So,
 * while still in it, PID 1 starts a keeper: a child that stays in the
 * host's network namespace, in a mount namespace of its own with the
 * host's files (pasta, /dev/net/tun, the host's resolv.conf; the box's
 * root is built after), that starts a fresh pasta for each network
 * namespace PID 1 hands it and ends the one before.
 *
 * Nothing of it outlives the box: the keeper and every pasta are in the
 * box's pid namespace, which the kernel empties when PID 1 exits (and both
 * have PR_SET_PDEATHSIG, the keeper ends when PID 1's socket closes). The
 * box's programs cannot signal or ptrace them: they were started before
 * PID 1 scoped itself with Landlock. Its exit signal is 0, so PID 1's
 * waitpid(-1) after its programs does not wait for it.
 */
struct usernet {
	pid_t keeper;
	int sock; /* PID 1's end */
};

struct pasta_config;

/*
 * Start the keeper for pasta cfg (copied); call from a single-threaded
 * process in the host's network namespace, in the user namespace that
 * owns the box's network namespaces, with all capabilities there.
 */
int usernet_start(struct usernet *u, const struct pasta_config *cfg, struct error *err);

/*
 * Have the keeper connect the network namespace netns_fd through a new
 * pasta, ending the previous one. It works meanwhile (pasta takes 20-70
 * ms): usernet_ready() waits until that namespace is configured, or
 * returns -1 with pasta's reason.
 */
int usernet_attach(const struct usernet *u, int netns_fd, struct error *err);
int usernet_ready(const struct usernet *u, struct error *err);

/*
 * Whether the event log of the box at box_dirfd holds, after offset from, a
 * connect to an address off loopback: what a program in a box without
 * network tried to reach. buf gets "ADDR:PORT" ("[ADDR]:PORT" for IPv6).
 */
bool net_unreached(int box_dirfd, off_t from, char *buf, size_t len);

/*
 * Bind a read-only /etc/resolv.conf naming NET_DNS_ADDR over the one in
 * the current root (the box's, after pivot_root), through a detached tmpfs
 * that no path in the box reaches.
 */
int net_resolv_conf_mount(struct error *err);

#endif
