/*
 * The box's network: the network namespace its programs live in, and
 * what is set up in it.
 *
 * --net none (the default): loopback only, in a namespace PID 1 makes in
 * the box's user namespace (netns_create); nothing in it needs guarding.
 *
 * A box with an allow-list (--allow) gets two user namespaces instead of
 * one: an outer one, U1, made by a hutch process outside the box's pid
 * namespace (the keeper), which owns the box's network namespace and
 * loads the rules into it; and the box's own, U2, nested in U1, in which
 * PID 1 and every program live. A --root program has every capability in
 * U2 and none in U1, so it cannot change the network namespace at all:
 * no nft, no ip link/addr/route, no raw or packet socket, no SO_MARK, no
 * setns into U1 (docs/architecture.md, DESIGN-NOTES section 5).
 */
#ifndef HUTCH_NET_NET_H
#define HUTCH_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "net/allow.h"

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

struct pasta_config;

/* What netns_clone_box() needs of the box it starts. */
struct netns_box {
	uint64_t clone_flags; /* the box's namespaces, CLONE_NEWUSER among them, no NEWNET */
	int cgroup_fd;        /* clone PID 1 into this cgroup, or -1 */
	bool as_root;         /* --root: programs may bind ports below 1024 */
	const struct pasta_config *pasta; /* connect the namespace through pasta, or NULL */
	const struct allow_rule *rules;
	size_t nrules;
	/*
	 * Write the id maps of pid's user namespace: U1's (outer, called by
	 * the caller of netns_clone_box) or U2's (called in U1 by the keeper).
	 */
	int (*write_maps)(pid_t pid, bool outer, void *arg, struct error *err);
	void (*child)(void *arg); /* PID 1's body: never returns */
	/* An event for the box's log: the denials the kernel made. */
	void (*log)(void *arg, const char *event, const char *args_json, const char *verdict,
		    const char *why);
	void *arg;
	const int *keep_fds; /* fds of the caller's the keeper keeps (the log's) */
	size_t nkeep;
};

/*
 * Start the box's PID 1 as a child of the caller (CLONE_PARENT), in the
 * structure above: a keeper process is forked, makes U1, gets its maps
 * from the caller, makes the network namespace, loads the rules and
 * clones PID 1 with nb->clone_flags; PID 1's maps are written when this
 * returns, and *sock is for netns_rules_wait(). The keeper, another child of the caller (*keeper), then logs
 * the kernel's denials until PID 1 ends. Returns PID 1's pid, or -1.
 */
pid_t netns_clone_box(const struct netns_box *nb, pid_t *keeper, int *sock, struct error *err);

/*
 * The rules are loaded while PID 1 builds the box: wait until they are in
 * force (no program may start before), on the *sock netns_clone_box()
 * gave, which this closes. -1 with the reason if they could not be loaded.
 */
int netns_rules_wait(int *sock, struct error *err);
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
 * Start the keeper for pasta cfg (copied); with log_fd (the box's event
 * log, not -1), it also serves the DNS of each namespace it attaches,
 * forwarding every query to the host's resolver and logging it and its
 * answer (net/usernet_dns.h). Call from a single-threaded
 * process in the host's network namespace, in the user namespace that
 * owns the box's network namespaces, with all capabilities there.
 */
int usernet_start(struct usernet *u, const struct pasta_config *cfg, int log_fd,
		  struct error *err);

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
 * Bind a read-only /etc/resolv.conf naming nameserver, under the line
 * "# hutch comment", over the one in the current root (the box's, after
 * pivot_root), through a detached tmpfs that no path in the box reaches.
 */
int net_resolv_conf_mount(const char *comment, const char *nameserver, struct error *err);

#endif
